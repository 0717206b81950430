"""The cluster's network view for the agents: every node's subnet and address (for routes) and every
app's running replicas' addresses (for the nodes' DNS servers).

One watch of etcd per control plane, whatever the number of agents: a change to nodes, liveness,
apps or replica reports marks the view stale; it is rebuilt at most every REBUILD_EVERY seconds
(changes close together make one rebuild) and every agent's stream gets the new view if it differs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from shoal.controlplane.v1 import assignment_service_pb2 as spb
from shoal.controlplane.v1 import network_service_pb2 as pb
from shoal.state.v1 import records_pb2 as rpb

from controlplane.errors import NotFound
from controlplane.etcd import EtcdClient, EtcdError, WatchReset
from controlplane.etcd import txn as t
from controlplane.etcd.watch import watch_prefix
from controlplane.state import keys

REBUILD_EVERY = 0.05
RETRY = 1.0
WATCHED = (keys.NODES, keys.ALIVE, keys.APPS, keys.REPLICAS)

log = logging.getLogger(__name__)


def build_view(nodes: list[rpb.NodeRecord], alive: set[str], apps: list[str],
               replicas: list[tuple[str, spb.ReplicaStatus]]) -> pb.NetworkView:
    """Pure: the view from the records. A name lists only running replicas on nodes that are up
    (a down node's replicas are being replaced; their addresses may not answer)."""
    peers = [pb.NetworkPeer(node_id=n.id, name=n.name, node_ip=n.node_ip, subnet=n.subnet)
             for n in sorted(nodes, key=lambda n: n.subnet) if n.subnet and n.node_ip]
    addresses: dict[str, list[tuple[int, str]]] = {app: [] for app in apps}
    for node_id, status in replicas:
        if node_id in alive and status.state == "running" and status.address and status.app in addresses:
            addresses[status.app].append((status.index, status.address))
    names = [pb.ServiceName(name=app, addresses=[a for _, a in sorted(found)])
             for app, found in sorted(addresses.items())]
    return pb.NetworkView(peers=peers, names=names)


class NetworkViews:
    def __init__(self, client: EtcdClient) -> None:
        self.client = client
        self.view: pb.NetworkView | None = None
        self._changed = asyncio.Condition()
        self._stale = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def watch(self, node_id: str) -> AsyncIterator[pb.NetworkView]:
        if await self.client.get(keys.node(node_id)) is None:
            raise NotFound(f"node {node_id} is not registered")
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._watch()), loop.create_task(self._rebuild())]
        sent: pb.NetworkView | None = None
        while True:
            async with self._changed:
                while self.view is None or self.view is sent:
                    await self._changed.wait()
                sent = self.view
            yield sent

    async def _watch(self) -> None:
        while True:
            try:
                self._stale.set()
                async for change in watch_prefix(self.client, keys.ROOT):
                    if isinstance(change, WatchReset) or any(e.kv.key.decode().startswith(WATCHED)
                                                             for e in change.events):
                        self._stale.set()
            except EtcdError as e:
                log.warning("network view: watch failed (%s); again in %.0fs", e, RETRY)
                await asyncio.sleep(RETRY)

    async def _rebuild(self) -> None:
        while True:
            await self._stale.wait()
            await asyncio.sleep(REBUILD_EVERY)
            self._stale.clear()
            try:
                view = await self._read()
            except EtcdError as e:
                log.warning("network view: reading the state failed (%s); again in %.0fs", e, RETRY)
                self._stale.set()
                await asyncio.sleep(RETRY)
                continue
            if view != self.view:
                async with self._changed:
                    self.view = view
                    self._changed.notify_all()

    async def _read(self) -> pb.NetworkView:
        response = await self.client.txn([], [t.get(prefix, prefix=True) for prefix in WATCHED])
        nodes_kvs, alive_kvs, apps_kvs, replica_kvs = (r.response_range.kvs for r in response.responses)
        replicas = [(keys.parse_replica(kv.key.decode())[0], spb.ReplicaStatus.FromString(kv.value))
                    for kv in replica_kvs]
        return build_view([rpb.NodeRecord.FromString(kv.value) for kv in nodes_kvs],
                          {kv.key.decode().removeprefix(keys.ALIVE) for kv in alive_kvs},
                          [kv.key.decode().removeprefix(keys.APPS) for kv in apps_kvs], replicas)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
