#!/usr/bin/env python3
"""Placement throughput of the scheduling core: 5,000 nodes, 100,000 replicas in apps of 1,000.

Prints placements/s per tenth of the run, to show it stays flat as the cluster fills. Target
(issue #3): >= 3,750 placements/s including the plan applier's etcd transactions; the applier
does not exist yet, so this measures the scheduler alone (filters, scores, spread, candidate
limit) and the figure must leave room for it.

    .venv/bin/python bench/scheduler.py [--nodes 5000] [--replicas 100000] [--app-size 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]

from controlplane.scheduling.model import Node, ReplicaRequest, Resources  # noqa: E402
from controlplane.scheduling.scheduler import Scheduler  # noqa: E402
from controlplane.scheduling.stack import ClusterSnapshot  # noqa: E402

GIB = 1 << 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--replicas", type=int, default=100_000)
    parser.add_argument("--app-size", type=int, default=1000)
    args = parser.parse_args()
    nodes = [Node(id=f"node-{i:06d}", name=f"node-{i}", capacity=Resources(64_000, 256 * GIB),
                  labels={"zone": f"z{i % 3}"}) for i in range(args.nodes)]
    snapshot = ClusterSnapshot(nodes, [])
    scheduler = Scheduler()
    apps = args.replicas // args.app_size
    tenth = max(apps // 10, 1)
    placed, failed, began, window_began, window_placed = 0, 0, time.perf_counter(), time.perf_counter(), 0
    print(f"scheduling core: {args.nodes} nodes, {apps} apps of {args.app_size} replicas (spread by node)")
    for app in range(apps):
        spread = "node.labels.zone" if app % 2 else "node"
        requests = [ReplicaRequest(app=f"app-{app}", index=i, resources=Resources(250, 512 << 20), spread_by=spread)
                    for i in range(args.app_size)]
        plan = scheduler.place(requests, snapshot, seed=f"evaluation-{app}")
        placed += len(plan.placements)
        failed += len(plan.failures)
        window_placed += len(plan.placements)
        if (app + 1) % tenth == 0:
            now = time.perf_counter()
            print(f"  {placed:7d} placed   {window_placed / (now - window_began):8.0f} placements/s")
            window_began, window_placed = now, 0
    elapsed = time.perf_counter() - began
    print(f"  total {placed} placed, {failed} pending, {placed / elapsed:.0f} placements/s overall "
          f"(target >= 3750/s with the etcd applier, not yet built)")


if __name__ == "__main__":
    main()
