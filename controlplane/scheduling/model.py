"""What the scheduler reasons about."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class NodeState(enum.StrEnum):
    READY = "ready"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Resources:
    cpu_millis: int = 0
    memory_bytes: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu_millis + other.cpu_millis, self.memory_bytes + other.memory_bytes)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu_millis - other.cpu_millis, self.memory_bytes - other.memory_bytes)

    def fits_in(self, available: Resources) -> bool:
        return self.cpu_millis <= available.cpu_millis and self.memory_bytes <= available.memory_bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    id: str
    name: str
    capacity: Resources
    state: NodeState = NodeState.READY
    schedulable: bool = True
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """One replica of an app on one node."""

    app: str
    index: int
    node_id: str
    resources: Resources
    version: str = ""  # the app spec version it runs
    host_ports: tuple[str, ...] = ()  # `8080/tcp`: held on its node


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaRequest:
    """One replica that needs a node."""

    app: str
    index: int
    resources: Resources
    constraints: tuple[Constraint, ...] = ()
    spread_by: str = ""  # "" (none), "node", or "node.labels.<key>"
    version: str = ""
    host_ports: tuple[str, ...] = ()  # published ports (`8080/tcp`): a node has each once


@dataclass(frozen=True, slots=True)
class Constraint:
    """`attribute op value`, e.g. node.labels.zone == a (see constraints.py for the grammar)."""

    attribute: str
    op: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementFailure:
    """Why a replica is pending: how many nodes each filter rejected, by reason."""

    app: str
    index: int
    filtered: dict[str, int]

    def explain(self) -> str:
        if not self.filtered:
            return "no nodes in the cluster"
        ordered = sorted(self.filtered.items(), key=lambda item: (-item[1], item[0]))  # most common first
        reasons = ", ".join(f"{count} {reason}" for reason, count in ordered)
        return f"no node fits: {reasons}"
