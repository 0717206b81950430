#!/usr/bin/env python3
"""Placement throughput: the real scheduler + plan applier against a real etcd, 5,000 simulated
nodes, 100,000 replicas in apps of 1,000 (issue #3). Target: >= 3,750 placements/s, flat as the
cluster fills. Prints the rate for every tenth of the run.

    .venv/bin/python bench/scheduler.py [--nodes 5000] [--replicas 100000] [--app-size 1000] [--core-only]

The nodes are registered in a throw-away embedded etcd (records + liveness keys on one lease);
each app is one evaluation: schedule against the in-memory snapshot (what the control plane keeps
up to date from its watch), then commit through the fenced, revision-guarded applier.
--core-only measures the scheduler without etcd.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "protos")]

from shoal.state.v1 import records_pb2 as rpb  # noqa: E402

from controlplane.etcd import Election, EtcdClient, EtcdConfig, LeaseKeeper, fence  # noqa: E402
from controlplane.etcd import txn as t  # noqa: E402
from controlplane.etcd.embedded import EmbeddedEtcd  # noqa: E402
from controlplane.scheduling.model import Node, ReplicaRequest, Resources  # noqa: E402
from controlplane.scheduling.scheduler import Scheduler  # noqa: E402
from controlplane.scheduling.stack import ClusterSnapshot  # noqa: E402
from controlplane.state import keys  # noqa: E402
from controlplane.state.applier import PlanApplier  # noqa: E402
from controlplane.state.store import load_snapshot  # noqa: E402
from tests.integration.harness import free_port  # noqa: E402

GIB = 1 << 30


def simulated_nodes(count: int) -> list[Node]:
    return [Node(id=f"node-{i:06d}", name=f"node-{i}", capacity=Resources(64_000, 256 * GIB),
                 labels={"zone": f"z{i % 3}"}) for i in range(count)]


async def register(client: EtcdClient, nodes: list[Node], lease: int) -> None:
    for start in range(0, len(nodes), 50):
        operations = []
        for node in nodes[start:start + 50]:
            record = rpb.NodeRecord(id=node.id, name=node.name, cpu_millis=node.capacity.cpu_millis,
                                    memory_bytes=node.capacity.memory_bytes, labels=node.labels, schedulable=True)
            operations += [t.put(keys.node(node.id), record.SerializeToString()),
                           t.put(keys.alive(node.id), b"", lease)]
        await client.txn([], operations)


async def run(args: argparse.Namespace) -> None:
    nodes = simulated_nodes(args.nodes)
    snapshot = ClusterSnapshot(nodes, [])
    scheduler = Scheduler()
    applier = state = client = keeper = etcd = None
    workdir = tempfile.mkdtemp(prefix="shoal-bench-etcd-")
    try:
        if not args.core_only:
            etcd = EmbeddedEtcd(data_dir=os.path.join(workdir, "data"), client_port=free_port(), peer_port=free_port())
            etcd.start()
            etcd.wait_ready()
            client = EtcdClient(EtcdConfig(endpoints=(etcd.endpoint,), timeout=30))
            keeper = await LeaseKeeper.grant(client, 60)
            await register(client, nodes, keeper.lease)
            leader = await Election(client, keys.LEADER).campaign(keeper.lease, "bench", timeout=10)
            applier = PlanApplier(client, fence=fence(leader))
            state = await load_snapshot(client)
        apps = args.replicas // args.app_size
        tenth = max(apps // 10, 1)
        what = "scheduling core only" if args.core_only else "scheduler + plan applier on a real etcd"
        print(f"{what}: {args.nodes} nodes, {apps} apps of {args.app_size} replicas")
        placed = conflicts = pending = window_placed = 0
        began = window_began = time.perf_counter()
        for app in range(apps):
            spread = "node.labels.zone" if app % 2 else "node"
            requests = [ReplicaRequest(app=f"app-{app}", index=i, resources=Resources(250, 512 << 20),
                                       spread_by=spread) for i in range(args.app_size)]
            plan = scheduler.place(requests, snapshot, seed=f"evaluation-{app}")
            pending += len(plan.failures)
            if applier is not None and state is not None:
                result = await applier.apply(state, place=plan.placements)
                conflicts += result.conflicts
                done = result.committed
            else:
                done = len(plan.placements)
            placed += done
            window_placed += done
            if (app + 1) % tenth == 0:
                now = time.perf_counter()
                print(f"  {placed:7d} placed   {window_placed / (now - window_began):8.0f} placements/s")
                window_began, window_placed = now, 0
        elapsed = time.perf_counter() - began
        print(f"  total {placed} placed, {pending} pending, {conflicts} conflicts: {placed / elapsed:.0f} placements/s "
              f"(target >= 3750/s)")
    finally:
        if keeper is not None:
            await keeper.stop()
        if client is not None:
            await client.close()
        if etcd is not None:
            etcd.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--replicas", type=int, default=100_000)
    parser.add_argument("--app-size", type=int, default=1000)
    parser.add_argument("--core-only", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
