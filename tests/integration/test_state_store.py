"""The control plane's state in a real etcd: consistent snapshots and guarded plan commits."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from shoal.controlplane.v1 import apps_pb2
from shoal.state.v1 import records_pb2 as rpb

from controlplane.etcd import Election, EtcdClient, EtcdConfig, LeaseKeeper, fence
from controlplane.etcd.embedded import EmbeddedEtcd
from controlplane.scheduling.model import NodeState, Placement, Resources
from controlplane.state import keys
from controlplane.state.applier import CHUNK, PlanApplier
from controlplane.state.store import load_snapshot

if shutil.which("etcd") is None:
    pytest.skip("etcd is not installed (apt-get install etcd-server)", allow_module_level=True)


async def register(client: EtcdClient, node_id: str, lease: int, **labels: str) -> None:
    record = rpb.NodeRecord(id=node_id, name=node_id, cpu_millis=4000, memory_bytes=8 << 30, labels=labels,
                            schedulable=True)
    await client.put(keys.node(node_id), record.SerializeToString())
    if lease:
        await client.put(keys.alive(node_id), b"", lease=lease)


def replica(index: int, node_id: str) -> Placement:
    return Placement(app="web", index=index, node_id=node_id, resources=Resources(100, 1 << 20), version="v1")


def test_snapshot_and_guarded_commits(etcd: EmbeddedEtcd) -> None:
    async def scenario() -> None:
        client = EtcdClient(EtcdConfig(endpoints=(etcd.endpoint,)))
        try:
            keeper = await LeaseKeeper.grant(client, 10)
            await register(client, "n1", keeper.lease, zone="a")
            await register(client, "n2", keeper.lease, zone="b")
            await register(client, "n3", 0)  # registered, but not heartbeating
            app = rpb.AppRecord(spec=apps_pb2.AppSpec(name="web", image="busybox:local", replicas=3), version="v1")
            await client.put(keys.app("web"), app.SerializeToString())
            snapshot = await load_snapshot(client)
            states = {n.id: n.state for n in snapshot.nodes}
            assert states == {"n1": NodeState.READY, "n2": NodeState.READY, "n3": NodeState.DOWN}
            assert snapshot.apps["web"].spec.replicas == 3 and snapshot.nodes[0].labels == {"zone": "a"}

            applier = PlanApplier(client)
            first = await applier.apply(snapshot, place=[replica(0, "n1"), replica(1, "n2")])
            assert (first.committed, first.conflicts) == (2, 0)
            kvs, _ = await client.get_prefix(keys.node_placements("n1"))
            assert [rpb.PlacementRecord.FromString(kv.value).index for kv in kvs] == [0]
            # The same plan from the same (now stale) snapshot must not land twice.
            again = await applier.apply(snapshot, place=[replica(0, "n1")])
            assert (again.committed, again.conflicts) == (0, 1)
            # A node changed since the snapshot (cordoned): plans made before that are refused.
            fresh = await load_snapshot(client)
            cordoned = rpb.NodeRecord(id="n2", name="n2", cpu_millis=4000, memory_bytes=8 << 30, schedulable=False)
            await client.put(keys.node("n2"), cordoned.SerializeToString())
            refused = await applier.apply(fresh, place=[replica(2, "n2")])
            assert refused.conflicts == 1 and await client.get(keys.placement("n2", "web", 2)) is None
            # Stops are guarded by the placement's revision too.
            stopped = await applier.apply(fresh, stop=[replica(1, "n2")])
            assert stopped.committed == 1 and await client.get(keys.placement("n2", "web", 1)) is None
            await keeper.stop()
        finally:
            await client.close()
    asyncio.run(scenario())


def test_large_plans_are_chunked_and_fenced_by_leadership(etcd: EmbeddedEtcd) -> None:
    async def scenario() -> None:
        client = EtcdClient(EtcdConfig(endpoints=(etcd.endpoint,)))
        try:
            keeper = await LeaseKeeper.grant(client, 10)
            for index in range(5):
                await register(client, f"n{index}", keeper.lease)
            election = Election(client, keys.LEADER)
            leader = await election.campaign(keeper.lease, "cp-1", timeout=5)
            applier = PlanApplier(client, fence=fence(leader))
            snapshot = await load_snapshot(client)
            many = [replica(i, f"n{i % 5}") for i in range(3 * CHUNK + 7)]
            result = await applier.apply(snapshot, place=many)
            assert (result.committed, result.conflicts) == (len(many), 0)
            assert len((await client.get_prefix(keys.PLACEMENTS))[0]) == len(many)
            await election.resign(leader)
            late = await applier.apply(await load_snapshot(client), place=[replica(999, "n0")])
            assert late.conflicts == 1  # a former leader's plan never lands
            await keeper.stop()
        finally:
            await client.close()
    asyncio.run(scenario())
