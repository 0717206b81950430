"""What must change for the running placements to match the desired apps (pure, level-triggered).

Each placement lands in exactly one bucket (Nomad's reconciler does the same):
- ignore: healthy, current version, index within the replica count;
- stop: beyond the replica count (highest indexes first), of a deleted app, or a duplicate of an
  index that is already kept (a node that came back after its replicas were replaced);
- replace_lost: on a node that is down or gone — stopped, and its index placed again;
- update: running an older version of the app — stopped, and its index placed again.
`place` lists the replica requests for every index without a kept placement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from controlplane.scheduling.model import Constraint, Node, NodeState, Placement, ReplicaRequest, Resources


@dataclass(frozen=True, slots=True, kw_only=True)
class AppSpec:
    """The scheduling-relevant part of a desired app."""

    name: str
    replicas: int
    resources: Resources
    version: str
    constraints: tuple[Constraint, ...] = ()
    spread_by: str = "node"
    host_ports: tuple[str, ...] = ()


@dataclass
class Reconciliation:
    place: list[ReplicaRequest] = field(default_factory=list)
    stop: list[Placement] = field(default_factory=list)
    replace_lost: list[Placement] = field(default_factory=list)
    update: list[Placement] = field(default_factory=list)
    ignore: list[Placement] = field(default_factory=list)


def _healthy(placement: Placement, nodes: Mapping[str, Node]) -> bool:
    node = nodes.get(placement.node_id)
    return node is not None and node.state is NodeState.READY


def reconcile(apps: Sequence[AppSpec], placements: Sequence[Placement], nodes: Mapping[str, Node]) -> Reconciliation:
    result = Reconciliation()
    desired = {app.name: app for app in apps}
    by_app: dict[str, list[Placement]] = {}
    for placement in placements:
        by_app.setdefault(placement.app, []).append(placement)
    for name, existing in sorted(by_app.items()):
        if name not in desired:
            result.stop.extend(sorted(existing, key=lambda p: -p.index))
    for app in apps:
        kept: dict[int, Placement] = {}
        # Healthy current-version placements first, so that a duplicate index keeps the best one.
        ranked = sorted(by_app.get(app.name, []), key=lambda p: (not _healthy(p, nodes), p.version != app.version,
                                                                 p.node_id))
        for placement in ranked:
            if placement.index >= app.replicas or placement.index in kept:
                result.stop.append(placement)
            elif not _healthy(placement, nodes):
                result.replace_lost.append(placement)
                kept[placement.index] = placement
            elif placement.version != app.version:
                result.update.append(placement)
                kept[placement.index] = placement
            else:
                result.ignore.append(placement)
                kept[placement.index] = placement
        replaced = {p.index for p in result.replace_lost + result.update if p.app == app.name}
        for index in range(app.replicas):
            if index not in kept or index in replaced:
                result.place.append(ReplicaRequest(app=app.name, index=index, resources=app.resources,
                                                   constraints=app.constraints, spread_by=app.spread_by,
                                                   version=app.version, host_ports=app.host_ports))
    result.stop.sort(key=lambda p: (p.app, -p.index))
    return result
