"""Reading the whole scheduling state at one revision (a transaction of range reads is atomic)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.state.v1 import records_pb2 as rpb

from controlplane.etcd import EtcdClient
from controlplane.etcd import txn as t
from controlplane.scheduling.model import Node, Placement
from controlplane.state import keys
from controlplane.state.convert import node_from_record, placement_from_record


@dataclass
class StateSnapshot:
    """What the scheduler plans against, with the mod revisions the applier's compares guard."""

    revision: int
    nodes: list[Node] = field(default_factory=list)
    node_revisions: dict[str, int] = field(default_factory=dict)
    node_records: dict[str, rpb.NodeRecord] = field(default_factory=dict)  # address, registration time
    apps: dict[str, rpb.AppRecord] = field(default_factory=dict)
    placements: list[Placement] = field(default_factory=list)
    placement_revisions: dict[str, int] = field(default_factory=dict)  # by placement key
    placed_at: dict[tuple[str, int], int] = field(default_factory=dict)  # (app, index) -> unix ns, for operators


async def load_snapshot(client: EtcdClient) -> StateSnapshot:
    prefixes = (keys.NODES, keys.ALIVE, keys.APPS, keys.PLACEMENTS)
    response = await client.txn([], [t.get(prefix, prefix=True) for prefix in prefixes])
    nodes_kvs, alive_kvs, apps_kvs, placement_kvs = (r.response_range.kvs for r in response.responses)
    alive = {kv.key.decode().removeprefix(keys.ALIVE) for kv in alive_kvs}
    snapshot = StateSnapshot(revision=response.header.revision)
    for kv in nodes_kvs:
        record = rpb.NodeRecord.FromString(kv.value)
        snapshot.nodes.append(node_from_record(record, alive=record.id in alive))
        snapshot.node_revisions[record.id] = kv.mod_revision
        snapshot.node_records[record.id] = record
    for kv in apps_kvs:
        app = rpb.AppRecord.FromString(kv.value)
        snapshot.apps[app.spec.name] = app
    for kv in placement_kvs:
        placed = rpb.PlacementRecord.FromString(kv.value)
        snapshot.placements.append(placement_from_record(placed))
        snapshot.placed_at[(placed.app, placed.index)] = placed.created_at
        snapshot.placement_revisions[kv.key.decode()] = kv.mod_revision
    return snapshot
