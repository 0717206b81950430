"""Watching a key range so that nothing is ever missed.

The watch resumes from the last revision seen + 1 after any disconnect (a "from now" watch pins
"now" as the created response's revision + 1, or a reconnect could skip events). When etcd answers
that the resume revision was compacted, it re-reads the range and yields a WatchReset with the
current state, then continues from that read's revision + 1. Consumers therefore see either every
change in order or a full resync, never a silent gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from shoal.etcd.v3 import messages_pb2 as pb
from shoal.etcd.v3 import mvcc_pb2

from controlplane.etcd import txn as t
from controlplane.etcd.client import EtcdClient
from controlplane.etcd.errors import EtcdError

log = logging.getLogger(__name__)
BACKOFF = (0.1, 1.0)


@dataclass(frozen=True, slots=True)
class WatchEvents:
    """Changes in revision order; `revision` is the last one's."""

    events: list[mvcc_pb2.Event]
    revision: int


@dataclass(frozen=True, slots=True)
class WatchReset:
    """History was compacted past our position: here is the whole current state instead."""

    kvs: list[mvcc_pb2.KeyValue]
    revision: int


async def watch_prefix(client: EtcdClient, prefix: t.Key,
                       start_revision: int = 0) -> AsyncIterator[WatchEvents | WatchReset]:
    """Every change under prefix from start_revision (0: from now), across disconnects, forever."""
    key, end = t.key_bytes(prefix), t.prefix_end(prefix)
    next_revision = start_revision
    delay = BACKOFF[0]
    while True:
        stream = client.watches.Watch()
        try:
            create = pb.WatchCreateRequest(key=key, range_end=end, start_revision=next_revision,
                                           progress_notify=True)
            await stream.write(pb.WatchRequest(create_request=create))
            async for response in stream:
                delay = BACKOFF[0]
                if response.compact_revision:
                    kvs, revision = await client.get_prefix(prefix)
                    next_revision = revision + 1
                    yield WatchReset(kvs, revision)
                    break  # re-create the watch from the fresh read
                if response.canceled:
                    raise EtcdError(f"watch of {key!r} canceled by etcd: {response.cancel_reason or 'no reason'}")
                if response.created:
                    if next_revision == 0:
                        next_revision = response.header.revision + 1
                    continue
                if response.events:
                    next_revision = response.events[-1].kv.mod_revision + 1
                    yield WatchEvents(list(response.events), response.events[-1].kv.mod_revision)
                else:  # a progress notification: nothing happened up to header.revision
                    next_revision = max(next_revision, response.header.revision + 1)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as e:
            reason = e.code().name if isinstance(e, grpc.aio.AioRpcError) else "stream finished"
            log.warning("watch of %r interrupted (%s); resuming from revision %d in %.1fs",
                        key, reason, next_revision, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF[1])
        finally:
            stream.cancel()
