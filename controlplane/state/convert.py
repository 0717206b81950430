"""Records (protobuf) ⇄ the scheduler's model, in one module."""

from __future__ import annotations

from shoal.state.v1 import records_pb2 as rpb

from controlplane.scheduling.model import Node, NodeState, Placement, Resources


def node_from_record(record: rpb.NodeRecord, alive: bool) -> Node:
    return Node(id=record.id, name=record.name, capacity=Resources(record.cpu_millis, record.memory_bytes),
                state=NodeState.READY if alive else NodeState.DOWN, schedulable=record.schedulable,
                labels=dict(record.labels))


def placement_from_record(record: rpb.PlacementRecord) -> Placement:
    return Placement(app=record.app, index=record.index, node_id=record.node_id,
                     resources=Resources(record.cpu_millis, record.memory_bytes), version=record.version,
                     host_ports=tuple(record.host_ports))


def placement_to_record(placement: Placement, created_at: int) -> rpb.PlacementRecord:
    return rpb.PlacementRecord(app=placement.app, index=placement.index, node_id=placement.node_id,
                               cpu_millis=placement.resources.cpu_millis,
                               memory_bytes=placement.resources.memory_bytes, version=placement.version,
                               created_at=created_at, host_ports=placement.host_ports)
