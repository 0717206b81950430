"""What each node must run, streamed to its agent, and the replica status agents report back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from shoal.controlplane.v1 import assignment_service_pb2 as pb
from shoal.etcd.v3 import mvcc_pb2
from shoal.state.v1 import records_pb2 as rpb

from controlplane.errors import InvalidSpec, NotFound
from controlplane.etcd import EtcdClient, WatchReset
from controlplane.etcd import txn as t
from controlplane.etcd.watch import watch_prefix
from controlplane.state import keys

REPORT_CHUNK = 100


class AssignmentService:
    def __init__(self, client: EtcdClient) -> None:
        self.client = client

    async def watch(self, node_id: str) -> AsyncIterator[pb.AssignmentsUpdate]:
        if await self.client.get(keys.node(node_id)) is None:
            raise NotFound(f"node {node_id} is not registered")
        prefix = keys.node_placements(node_id)
        kvs, revision = await self.client.get_prefix(prefix)
        yield await self._full(kvs, revision)
        async for change in watch_prefix(self.client, prefix, start_revision=revision + 1):
            if isinstance(change, WatchReset):
                yield await self._full(change.kvs, change.revision)
                continue
            update = pb.AssignmentsUpdate(revision=change.revision)
            for event in change.events:
                if event.type == mvcc_pb2.Event.DELETE:
                    app, index = event.kv.key.decode().removeprefix(prefix).split("/")
                    update.removed.append(f"{app}/{index}")
                else:
                    update.assigned.extend(await self._assignments([event.kv]))
            yield update

    async def _full(self, kvs: Sequence[mvcc_pb2.KeyValue], revision: int) -> pb.AssignmentsUpdate:
        return pb.AssignmentsUpdate(full=True, assigned=await self._assignments(kvs), revision=revision)

    async def _assignments(self, kvs: Sequence[mvcc_pb2.KeyValue]) -> list[pb.Assignment]:
        """Placements joined with their app's spec (an app deleted meanwhile is skipped: its
        placements are being stopped)."""
        found = []
        specs: dict[str, rpb.AppRecord | None] = {}
        for kv in kvs:
            placement = rpb.PlacementRecord.FromString(kv.value)
            if placement.app not in specs:
                app_kv = await self.client.get(keys.app(placement.app))
                specs[placement.app] = rpb.AppRecord.FromString(app_kv.value) if app_kv else None
            record = specs[placement.app]
            if record is not None:
                found.append(pb.Assignment(app=placement.app, index=placement.index, version=placement.version,
                                           spec=record.spec))
        return found

    async def report(self, node_id: str, replicas: Sequence[pb.ReplicaStatus]) -> None:
        """A report replaces everything the node reported before (replicas it no longer runs vanish).
        Only what changed is written: agents report often, and every write wakes every watcher."""
        if not node_id:
            raise InvalidSpec("node_id", "required")
        current = {keys.replica(node_id, r.app, r.index): r.SerializeToString() for r in replicas}
        existing, _ = await self.client.get_prefix(keys.node_replicas(node_id))
        stored = {kv.key.decode(): kv.value for kv in existing}
        # etcd refuses a transaction that deletes a range and puts keys inside it, so stale keys are
        # deleted one by one next to the puts.
        operations = [t.delete(key) for key in stored if key not in current]
        operations += [t.put(key, value) for key, value in current.items() if stored.get(key) != value]
        for start in range(0, len(operations), REPORT_CHUNK):
            await self.client.txn([], operations[start:start + REPORT_CHUNK])
