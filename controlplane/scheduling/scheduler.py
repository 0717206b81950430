"""Placing replicas: for each request, walk a seeded shuffle of the nodes, filter, score the first
`limit` feasible ones, take the best.

- The shuffle is seeded from the evaluation id, so a plan is reproducible and ties do not always
  land on the same node.
- Successive requests start where the previous walk stopped, so one evaluation spreads its walk
  over the whole cluster.
- The candidate limit keeps a placement's cost flat in large clusters (Nomad limits candidates
  the same way); small clusters (<= EXHAUSTIVE nodes) are searched exhaustively.
- A request shape (resources, constraints, host ports) that found no node fails at once for the rest of the
  evaluation: the plan only ever fills nodes up.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from controlplane.scheduling.model import Placement, PlacementFailure, ReplicaRequest
from controlplane.scheduling.stack import ClusterSnapshot, Stack, build_stack

EXHAUSTIVE = 64
LARGE_CLUSTER_LIMIT = 16


@dataclass
class PlacementPlan:
    placements: list[Placement] = field(default_factory=list)
    failures: list[PlacementFailure] = field(default_factory=list)


class Scheduler:
    def __init__(self, strategy: str = "spread", candidate_limit: int | None = None) -> None:
        self.stack: Stack = build_stack(strategy)
        self.candidate_limit = candidate_limit

    def place(self, requests: Sequence[ReplicaRequest], snapshot: ClusterSnapshot, seed: str) -> PlacementPlan:
        plan = PlacementPlan()
        order = sorted(snapshot.nodes.values(), key=lambda n: n.id)
        random.Random(seed).shuffle(order)
        total = len(order)
        limit = self.candidate_limit or (total if total <= EXHAUSTIVE else LARGE_CLUSTER_LIMIT)
        cursor = 0
        failed_shapes: dict[tuple[object, ...], dict[str, int]] = {}
        for request in requests:
            shape = (request.resources, request.constraints, request.host_ports)
            if shape in failed_shapes:
                plan.failures.append(PlacementFailure(app=request.app, index=request.index,
                                                      filtered=failed_shapes[shape]))
                continue
            best, best_score, feasible, filtered = None, -1.0, 0, Counter[str]()
            walked = 0
            for walked in range(1, total + 1):
                node = order[(cursor + walked - 1) % total]
                reason = self.stack.check(node, request, snapshot)
                if reason is not None:
                    filtered[reason] += 1
                    continue
                score = self.stack.score(node, request, snapshot)
                if score > best_score:
                    best, best_score = node, score
                feasible += 1
                if feasible >= limit:
                    break
            cursor = (cursor + walked) % total if total else 0
            if best is None:
                failed_shapes[shape] = dict(filtered)
                plan.failures.append(PlacementFailure(app=request.app, index=request.index, filtered=dict(filtered)))
                continue
            placement = Placement(app=request.app, index=request.index, node_id=best.id,
                                  resources=request.resources, version=request.version,
                                  host_ports=request.host_ports)
            snapshot.add(placement)
            plan.placements.append(placement)
        return plan
