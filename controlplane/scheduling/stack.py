"""The filter → score stack, and the cluster snapshot it reads.

Filters return None (feasible) or a short reason; scorers return a score in [0, 1] or None (not
applicable). `build_stack` puts the filters cheapest and most selective first, so a node is
rejected as early as possible: node health, cordoned, constraints (string compares), host ports
(set lookups), then resources (the arithmetic). Scores of the applicable scorers are averaged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from controlplane.scheduling.constraints import attribute_of, holds
from controlplane.scheduling.model import Node, NodeState, Placement, ReplicaRequest, Resources

Filter = Callable[[Node, ReplicaRequest, "ClusterSnapshot"], str | None]
Scorer = Callable[[Node, ReplicaRequest, "ClusterSnapshot"], float | None]


class ClusterSnapshot:
    """A read-only view of nodes and placements, plus what the plan being built has added."""

    def __init__(self, nodes: Iterable[Node], placements: Iterable[Placement]) -> None:
        self.nodes = {node.id: node for node in nodes}
        self.allocated: dict[str, Resources] = {}
        self.ports: dict[str, dict[str, str]] = {}  # node id -> host port -> the replica holding it
        self._spread: dict[tuple[str, str], Counter[str | None]] = {}
        self.placements: list[Placement] = []
        for placement in placements:
            self.add(placement)

    def free(self, node: Node) -> Resources:
        return node.capacity - self.allocated.get(node.id, Resources())

    def add(self, placement: Placement) -> None:
        self.placements.append(placement)
        self.allocated[placement.node_id] = self.allocated.get(placement.node_id, Resources()) + placement.resources
        held = self.ports.setdefault(placement.node_id, {})
        for port in placement.host_ports:
            held[port] = f"{placement.app}.{placement.index}"
        for (app, attribute), counts in self._spread.items():
            if app == placement.app and placement.node_id in self.nodes:
                counts[attribute_of(self.nodes[placement.node_id], attribute)] += 1

    def spread_count(self, app: str, attribute: str, node: Node) -> int:
        """How many replicas of app sit on nodes sharing node's value of attribute."""
        counts = self._spread.get((app, attribute))
        if counts is None:
            counts = Counter(attribute_of(self.nodes[p.node_id], attribute) for p in self.placements
                             if p.app == app and p.node_id in self.nodes)
            self._spread[(app, attribute)] = counts
        return counts[attribute_of(node, attribute)]


def ready_filter(node: Node, request: ReplicaRequest, snapshot: ClusterSnapshot) -> str | None:
    return None if node.state is NodeState.READY else f"node {node.state.value}"


def schedulable_filter(node: Node, request: ReplicaRequest, snapshot: ClusterSnapshot) -> str | None:
    return None if node.schedulable else "node cordoned"


def constraint_filter(node: Node, request: ReplicaRequest, snapshot: ClusterSnapshot) -> str | None:
    for constraint in request.constraints:
        if not holds(constraint, node):
            return f"constraint {constraint.attribute} {constraint.op} {constraint.value}"
    return None


def resource_filter(node: Node, request: ReplicaRequest, snapshot: ClusterSnapshot) -> str | None:
    free = snapshot.free(node)
    if request.resources.cpu_millis > free.cpu_millis:
        return "insufficient cpu"
    if request.resources.memory_bytes > free.memory_bytes:
        return "insufficient memory"
    return None


def port_filter(node: Node, request: ReplicaRequest, snapshot: ClusterSnapshot) -> str | None:
    """Host ports are a resource of the node: each can be published by one replica only."""
    held = snapshot.ports.get(node.id, {})
    for port in request.host_ports:
        if port in held:
            return f"host port {port} in use"
    return None


def _fullness(node: Node, request: ReplicaRequest, snapshot: ClusterSnapshot) -> float:
    used = snapshot.allocated.get(node.id, Resources()) + request.resources
    shares = [used.cpu_millis / node.capacity.cpu_millis if node.capacity.cpu_millis else 1.0,
              used.memory_bytes / node.capacity.memory_bytes if node.capacity.memory_bytes else 1.0]
    return min(sum(shares) / 2, 1.0)


def binpack_scorer(node: Node, request: ReplicaRequest, snapshot: ClusterSnapshot) -> float | None:
    """Fuller is better: keeps whole nodes free for large replicas (Nomad's default)."""
    return _fullness(node, request, snapshot)


def least_allocated_scorer(node: Node, request: ReplicaRequest, snapshot: ClusterSnapshot) -> float | None:
    """Emptier is better: spreads load (Swarm's default)."""
    return 1.0 - _fullness(node, request, snapshot)


def spread_scorer(node: Node, request: ReplicaRequest, snapshot: ClusterSnapshot) -> float | None:
    """Fewer replicas of the same app in the node's spread domain is better."""
    if not request.spread_by:
        return None
    return 1.0 / (1 + snapshot.spread_count(request.app, request.spread_by, node))


@dataclass(frozen=True, slots=True)
class Stack:
    filters: tuple[Filter, ...]
    scorers: tuple[Scorer, ...]

    def check(self, node: Node, request: ReplicaRequest, snapshot: ClusterSnapshot) -> str | None:
        for feasible in self.filters:
            reason = feasible(node, request, snapshot)
            if reason is not None:
                return reason
        return None

    def score(self, node: Node, request: ReplicaRequest, snapshot: ClusterSnapshot) -> float:
        scores = [s for s in (scorer(node, request, snapshot) for scorer in self.scorers) if s is not None]
        return sum(scores) / len(scores) if scores else 0.0


STRATEGIES = ("spread", "binpack")


def build_stack(strategy: str) -> Stack:
    """spread: least-allocated nodes first; binpack: fullest nodes first. Either way, an app's own
    spread rule (by node or by a label) weighs in equally."""
    if strategy not in STRATEGIES:
        raise ValueError(f"scheduling strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    fit = least_allocated_scorer if strategy == "spread" else binpack_scorer
    return Stack(filters=(ready_filter, schedulable_filter, constraint_filter, port_filter, resource_filter),
                 scorers=(fit, spread_scorer))
