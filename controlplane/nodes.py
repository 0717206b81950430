"""Nodes: registration, liveness on etcd leases, listing, cordoning.

Liveness: each registration grants a lease of `grace` seconds and writes the node's alive key on
it; every heartbeat renews the lease. When heartbeats stop, etcd deletes the alive key after the
grace and the controller sees the node down. The agent holds no etcd credentials.
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any

from shoal.controlplane.v1 import node_service_pb2 as npb
from shoal.state.v1 import records_pb2 as rpb

from controlplane import events as app_events
from controlplane.errors import Conflict, InvalidSpec, NotFound, NotReady
from controlplane.etcd import EtcdClient, LeaseRenewer
from controlplane.etcd import txn as t
from controlplane.state import keys
from controlplane.state.store import load_snapshot
from controlplane.subnets import SubnetPlan, allocate

NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class NodeRegistry:
    def __init__(self, client: EtcdClient, grace_seconds: int, subnets: SubnetPlan) -> None:
        self.client = client
        self.grace = grace_seconds
        self.subnets = subnets
        self.renewer = LeaseRenewer(client)

    async def register(self, request: npb.RegisterNodeRequest) -> npb.RegisterNodeResponse:
        if not NODE_ID.match(request.node_id):
            raise InvalidSpec("node_id", "[A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 characters")
        if request.cpu_millis <= 0 or request.memory_bytes <= 0:
            raise InvalidSpec("capacity", "cpu_millis and memory_bytes must be positive")
        if request.node_ip:
            try:
                ipaddress.IPv4Address(request.node_ip)
            except ValueError:
                raise InvalidSpec("node_ip", f"{request.node_ip!r}: an IPv4 address") from None
        existing = await self.client.get(keys.node(request.node_id))
        previous = rpb.NodeRecord.FromString(existing.value) if existing else None
        _, subnet = await allocate(self.client, self.subnets, request.node_id)
        record = rpb.NodeRecord(id=request.node_id, name=request.name or request.node_id, address=request.address,
                                cpu_millis=request.cpu_millis, memory_bytes=request.memory_bytes,
                                labels=request.labels, schedulable=previous.schedulable if previous else True,
                                registered_at=previous.registered_at if previous else time.time_ns(), subnet=subnet,
                                node_ip=request.node_ip)
        lease = await self.client.grant(self.grace)
        await self.client.txn([], [t.put(keys.node(request.node_id), record.SerializeToString()),
                                   t.put(keys.alive(request.node_id), b"", lease)])
        return npb.RegisterNodeResponse(lease=lease, heartbeat_interval_ms=self.grace * 1000 // 3, subnet=subnet,
                                        cluster_cidr=str(self.subnets.cidr), routing=self.subnets.routing)

    async def heartbeat(self, node_id: str, lease: int) -> None:
        if await self.renewer.renew(lease) <= 0:
            raise NotFound(f"node {node_id}: its lease expired; register again")

    async def list_nodes(self) -> list[npb.NodeStatus]:
        snapshot = await load_snapshot(self.client)
        records = snapshot.node_records
        statuses = []
        for node in snapshot.nodes:
            mine = [p for p in snapshot.placements if p.node_id == node.id]
            statuses.append(npb.NodeStatus(
                id=node.id, name=node.name, address=records[node.id].address, state=node.state.value,
                schedulable=node.schedulable, cpu_millis=node.capacity.cpu_millis,
                memory_bytes=node.capacity.memory_bytes, labels=node.labels, replicas=len(mine),
                allocated_cpu_millis=sum(p.resources.cpu_millis for p in mine),
                allocated_memory_bytes=sum(p.resources.memory_bytes for p in mine), subnet=records[node.id].subnet,
                node_ip=records[node.id].node_ip))
        return sorted(statuses, key=lambda s: s.name)

    async def _find(self, ref: str) -> tuple[Any, rpb.NodeRecord]:
        kvs, _ = await self.client.get_prefix(keys.NODES)
        found = [(kv, rpb.NodeRecord.FromString(kv.value)) for kv in kvs]
        matches = [(kv, record) for kv, record in found if ref in (record.id, record.name)]
        if not matches:
            raise NotFound(f"no such node: {ref}")
        return matches[0]

    async def remove(self, ref: str, force: bool) -> None:
        """Forgets a node in one transaction: its record, liveness, placements (the leader places
        them again), reports and subnet. A ready node would register again: refused unless forced."""
        kv, record = await self._find(ref)
        if not force and await self.client.get(keys.alive(record.id)) is not None:
            raise NotReady(f"node {record.name} is ready: stop its agent first (or drain it), or use --force")
        subnets, _ = await self.client.get_prefix(keys.SUBNETS)
        held = [s.key for s in subnets if s.value.decode() == record.id]
        removed = await self.client.txn([t.mod_revision(kv.key, "==", kv.mod_revision)], [
            t.delete(kv.key), t.delete(keys.alive(record.id)), t.delete(keys.node_placements(record.id), prefix=True),
            t.delete(keys.node_replicas(record.id), prefix=True), *(t.delete(key) for key in held)])
        if not removed.succeeded:
            raise Conflict(f"node {ref} changed meanwhile; try again")

    async def set_schedulable(self, ref: str, schedulable: bool) -> npb.NodeStatus:
        kv, record = await self._find(ref)
        record.schedulable = schedulable
        written = await self.client.txn([t.mod_revision(kv.key, "==", kv.mod_revision)],
                                        [t.put(kv.key, record.SerializeToString())])
        if not written.succeeded:
            raise Conflict(f"node {ref} changed meanwhile; try again")
        return next(s for s in await self.list_nodes() if s.id == record.id)

    async def drain(self, ref: str) -> tuple[npb.NodeStatus, int]:
        """Cordons the node, then removes its placements; the controller places them elsewhere and
        the node's agent stops the containers."""
        status = await self.set_schedulable(ref, False)
        kvs, _ = await self.client.get_prefix(keys.node_placements(status.id))
        moved = await self.client.delete(keys.node_placements(status.id), prefix=True)
        by_app: dict[str, list[str]] = {}
        for kv in kvs:
            placement = rpb.PlacementRecord.FromString(kv.value)
            by_app.setdefault(placement.app, []).append(
                f"stopped {placement.app}.{placement.index} on {status.name}: node drained, placing it again")
        for app, messages in by_app.items():
            await app_events.record(self.client, app, messages)
        return status, moved

    async def close(self) -> None:
        await self.renewer.close()
