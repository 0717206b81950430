"""Leader election through etcd's server-side v3election service (what `etcdctl elect` uses).

The campaign happens on the server, so it is linearizable; the candidate's lease bounds the term.
A leader must fence every leader-only write with `fence(leader)`: the transaction then fails once
the leadership key is gone, even if this process was paused past its lease (lease expiry alone
does not stop a paused leader).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
from shoal.etcd.v3 import election_pb2 as epb
from shoal.etcd.v3 import election_pb2_grpc, mvcc_pb2
from shoal.etcd.v3 import messages_pb2 as pb

from controlplane.etcd import txn as t
from controlplane.etcd.client import EtcdClient
from controlplane.etcd.errors import NoLeader, translate

log = logging.getLogger(__name__)
BACKOFF = (0.1, 1.0)


def fence(leader: epb.LeaderKey) -> pb.Compare:
    """Holds only while this exact leadership key exists: put it in every leader-only txn."""
    return t.create_revision(leader.key, "==", leader.rev)


class Election:
    def __init__(self, client: EtcdClient, name: t.Key) -> None:
        self.client = client
        self.name = t.key_bytes(name)
        self.stub = election_pb2_grpc.ElectionStub(client.channel)

    async def campaign(self, lease: int, value: t.Key, timeout: float | None = None) -> epb.LeaderKey:
        """Waits until this candidate leads (or the timeout passes: EtcdTimeout). Re-campaigning
        with the same lease after a disconnect is idempotent on the server."""
        request = epb.CampaignRequest(name=self.name, lease=lease, value=t.key_bytes(value))
        try:
            response = await self.stub.Campaign(request, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            raise translate(e, "campaign") from None
        leader: epb.LeaderKey = response.leader
        return leader

    async def proclaim(self, leader: epb.LeaderKey, value: t.Key) -> None:
        await self.client.call("proclaim", self.stub.Proclaim, epb.ProclaimRequest(leader=leader,
                                                                                   value=t.key_bytes(value)))

    async def resign(self, leader: epb.LeaderKey) -> None:
        await self.client.call("resign", self.stub.Resign, epb.ResignRequest(leader=leader))

    async def leader(self) -> mvcc_pb2.KeyValue | None:
        """The current leader's key and value, or None."""
        try:
            response = await self.client.call("leader", self.stub.Leader, epb.LeaderRequest(name=self.name))
        except NoLeader:
            return None
        current: mvcc_pb2.KeyValue = response.kv
        return current

    async def observe(self) -> AsyncIterator[mvcc_pb2.KeyValue]:
        """Each leader in turn, across disconnects (the current one first after a reconnect)."""
        delay = BACKOFF[0]
        while True:
            try:
                async for response in self.stub.Observe(epb.LeaderRequest(name=self.name)):
                    delay = BACKOFF[0]
                    yield response.kv
            except grpc.aio.AioRpcError as e:
                log.warning("observing election %r interrupted (%s); retrying", self.name, e.code().name)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF[1])
