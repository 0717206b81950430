"""Reaching the nodes' agents, for what the control plane proxies: logs, exec and image import.

Each agent registers the address of its own gRPC API; the control plane keeps one channel per
address (opened on first use, kept for the next call) instead of dialling for every request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import grpc
from shoal.agent.v1 import agent_pb2_grpc
from shoal.state.v1 import records_pb2 as rpb

from controlplane.errors import AgentCallFailed, NotFound, NotReady
from controlplane.etcd import EtcdClient
from controlplane.state import keys

T = TypeVar("T")
MAX_MESSAGE = 64 << 20  # one log batch or image chunk is far smaller; the agent's own limit


class AgentDirectory:
    def __init__(self, client: EtcdClient) -> None:
        self.client = client
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def nodes(self) -> list[tuple[rpb.NodeRecord, bool]]:
        """Every registered node, and whether it is ready (heartbeating), read at one revision."""
        nodes_kvs, _ = await self.client.get_prefix(keys.NODES)
        alive_kvs, _ = await self.client.get_prefix(keys.ALIVE)
        alive = {kv.key.decode().removeprefix(keys.ALIVE) for kv in alive_kvs}
        records = [rpb.NodeRecord.FromString(kv.value) for kv in nodes_kvs]
        return [(record, record.id in alive) for record in sorted(records, key=lambda r: r.name)]

    async def node(self, node_id: str) -> rpb.NodeRecord:
        found = await self.client.get(keys.node(node_id))
        if found is None:
            raise NotFound(f"node {node_id} is not registered")
        return rpb.NodeRecord.FromString(found.value)

    def stub(self, node: rpb.NodeRecord) -> agent_pb2_grpc.AgentStub:
        if not node.address or node.address.startswith("unix://"):
            raise NotReady(f"node {node.name} registered no address the control plane can reach: start its "
                           "agent with --listen HOST:PORT (or --advertise-address)")
        channel = self._channels.get(node.address)
        if channel is None:
            channel = grpc.aio.insecure_channel(node.address, options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.keepalive_time_ms", 10_000)])
            self._channels[node.address] = channel
        return agent_pb2_grpc.AgentStub(channel)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(grace=None)
        self._channels.clear()


def agent_failure(node: rpb.NodeRecord, error: grpc.aio.AioRpcError) -> AgentCallFailed:
    details = error.details() or error.code().name
    if error.code() is grpc.StatusCode.UNAVAILABLE:
        details = f"its agent at {node.address} cannot be reached ({details})"
    return AgentCallFailed(node.name, error.code().name, details)


async def call(node: rpb.NodeRecord, work: Awaitable[T]) -> T:
    """A unary call to an agent, its failure named after the node."""
    try:
        return await work
    except grpc.aio.AioRpcError as e:
        raise agent_failure(node, e) from None


async def stream(node: rpb.NodeRecord, responses: AsyncIterator[T] | Any) -> AsyncIterator[T]:
    """A streaming call to an agent, its failure named after the node."""
    try:
        async for response in responses:
            yield response
    except grpc.aio.AioRpcError as e:
        raise agent_failure(node, e) from None
