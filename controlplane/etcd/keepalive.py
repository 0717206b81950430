"""Keeping a lease alive: one KeepAlive stream, renewed every TTL/3, with a local validity deadline.

The holder of a lease (a node's registration, the leader's election key) must stop acting once
`valid` turns false, even while disconnected: etcd may already have expired the lease, and another
control plane may lead. Renewal keeps trying through outages (etcd extends leases across its own
restarts and leader changes, but only a renewal refreshes them); a renewal answered with TTL <= 0
means the lease is gone for good and sets `lost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import grpc
from shoal.etcd.v3 import messages_pb2 as pb

from controlplane.etcd.client import EtcdClient
from controlplane.etcd.errors import EtcdUnavailable

log = logging.getLogger(__name__)
BACKOFF = (0.1, 1.0)


class LeaseKeeper:
    def __init__(self, client: EtcdClient, lease: int, ttl: int) -> None:
        self.client = client
        self.lease = lease
        self.ttl = ttl
        self.deadline = time.monotonic() + ttl  # conservative: counted from before the grant returned
        self.lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def grant(cls, client: EtcdClient, ttl: int) -> LeaseKeeper:
        began = time.monotonic()
        keeper = cls(client, await client.grant(ttl), ttl)
        keeper.deadline = began + ttl
        keeper.start()
        return keeper

    @property
    def valid(self) -> bool:
        return not self.lost.is_set() and time.monotonic() < self.deadline

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, revoke: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if revoke:
            with contextlib.suppress(Exception):
                await self.client.revoke(self.lease)

    async def _run(self) -> None:
        delay = BACKOFF[0]
        while not self.lost.is_set():
            stream = self.client.leases.LeaseKeepAlive()
            try:
                while True:
                    sent = time.monotonic()
                    await stream.write(pb.LeaseKeepAliveRequest(ID=self.lease))
                    response = await asyncio.wait_for(stream.read(), timeout=max(self.ttl / 3, 1.0))
                    if response is grpc.aio.EOF:  # type: ignore[attr-defined]  # missing from grpc-stubs
                        raise ConnectionError("keepalive stream closed")
                    if response.TTL <= 0:
                        log.error("lease %x expired on the server", self.lease)
                        self.lost.set()
                        return
                    self.deadline = sent + response.TTL
                    delay = BACKOFF[0]
                    await asyncio.sleep(self.ttl / 3)
            except (grpc.aio.AioRpcError, ConnectionError, TimeoutError, asyncio.InvalidStateError) as e:
                # InvalidStateError: the server ended the stream between our read and write
                log.warning("renewing lease %x failed (%s); retrying in %.1fs", self.lease, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF[1])
            finally:
                stream.cancel()


class LeaseRenewer:
    """Renews many leases over one KeepAlive stream (etcd matches responses to requests by lease id):
    the control plane renews every node's liveness lease when that node heartbeats."""

    def __init__(self, client: EtcdClient) -> None:
        self.client = client
        self._stream: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[int]] = {}

    async def renew(self, lease: int, timeout: float = 2.0) -> int:
        """The lease's new TTL in seconds; 0 or less when it no longer exists."""
        if self._stream is None:
            self._stream = self.client.leases.LeaseKeepAlive()
            self._reader = asyncio.get_running_loop().create_task(self._read(self._stream))
        future = self._waiting.get(lease)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._waiting[lease] = future
            await self._stream.write(pb.LeaseKeepAliveRequest(ID=lease))
        return await asyncio.wait_for(asyncio.shield(future), timeout)

    async def _read(self, stream: Any) -> None:
        try:
            async for response in stream:
                future = self._waiting.pop(response.ID, None)
                if future is not None and not future.done():
                    future.set_result(int(response.TTL))
        except grpc.aio.AioRpcError as e:
            log.warning("lease renewal stream ended: %s", e.code().name)
        finally:
            if self._stream is stream:
                self._stream = None
            waiting, self._waiting = self._waiting, {}
            for future in waiting.values():
                if not future.done():
                    future.set_exception(EtcdUnavailable("the lease renewal stream to etcd broke"))

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
