"""The etcd client: one gRPC channel to the cluster, deadlines on every call, errors mapped once."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from shoal.etcd.v3 import kv_pb2_grpc, lease_pb2_grpc, maintenance_pb2_grpc, mvcc_pb2, watch_pb2_grpc
from shoal.etcd.v3 import messages_pb2 as pb

from controlplane.etcd import txn as t
from controlplane.etcd.errors import EtcdError, translate

Response = TypeVar("Response")

# research/etcd-client.md: keepalive 10 s/5 s finds dead peers; gRPC's default reconnect backoff
# (1 s x 1.6, up to 120 s) lost a 3 s lease across a 5 s etcd restart, so cap it at 1 s.
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
    ("grpc.max_receive_message_length", 64 << 20),
]


@dataclass(frozen=True, slots=True, kw_only=True)
class EtcdConfig:
    """Where etcd is and how to reach it. Endpoints are host:port (https:// or http:// allowed)."""

    endpoints: tuple[str, ...]
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    timeout: float = 5.0

    @property
    def tls(self) -> bool:
        return bool(self.ca_file) or any(e.startswith("https://") for e in self.endpoints)


def _target(endpoints: Sequence[str]) -> tuple[str, str]:
    """A gRPC target over every endpoint (round-robin with failover), and the TLS name to verify.

    gRPC's ipv4:/ipv6: targets list several addresses; names are resolved here, once.
    """
    addresses, first_host = [], ""
    for endpoint in endpoints:
        host, _, port = endpoint.split("://")[-1].rstrip("/").rpartition(":")
        host = host.strip("[]")
        first_host = first_host or host
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = ipaddress.ip_address(socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][4][0])
        addresses.append((ip, port))
    family = "ipv6" if all(ip.version == 6 for ip, _ in addresses) else "ipv4"
    listed = ",".join(f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}" for ip, port in addresses)
    return f"{family}:{listed}", first_host


def _read(path: str) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


class EtcdClient:
    def __init__(self, config: EtcdConfig) -> None:
        if not config.endpoints:
            raise ValueError("etcd endpoints: at least one host:port is required")
        self.config = config
        self.observe: Callable[[str, float], None] = lambda _what, _seconds: None  # request latency hook
        target, host = _target(config.endpoints)
        options = [*CHANNEL_OPTIONS, ("grpc.lb_policy_name", "round_robin")]
        if config.tls:
            credentials = grpc.ssl_channel_credentials(_read(config.ca_file), _read(config.key_file),
                                                       _read(config.cert_file))
            self.channel = grpc.aio.secure_channel(target, credentials, [*options,
                                                                         ("grpc.ssl_target_name_override", host)])
        else:
            self.channel = grpc.aio.insecure_channel(target, options)
        self.kv = kv_pb2_grpc.KVStub(self.channel)
        self.leases = lease_pb2_grpc.LeaseStub(self.channel)
        self.watches = watch_pb2_grpc.WatchStub(self.channel)
        self.maintenance = maintenance_pb2_grpc.MaintenanceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close(grace=None)

    async def call(self, what: str, method: Callable[..., Awaitable[Response]], request: object,
                   timeout: float | None = None) -> Response:
        """Every unary call goes through here: a deadline always, errors translated once, no retry."""
        began = time.perf_counter()
        try:
            return await method(request, timeout=timeout or self.config.timeout)
        except grpc.aio.AioRpcError as e:
            raise translate(e, what) from None
        finally:
            self.observe(what, time.perf_counter() - began)

    # ---- KV -------------------------------------------------------------------------------------
    async def get(self, key: t.Key) -> mvcc_pb2.KeyValue | None:
        response = await self.call("get", self.kv.Range, pb.RangeRequest(key=t.key_bytes(key)))
        return response.kvs[0] if response.kvs else None

    async def get_prefix(self, prefix: t.Key, revision: int = 0) -> tuple[list[mvcc_pb2.KeyValue], int]:
        """Every key under prefix, and the store revision the read saw (to watch from revision + 1)."""
        request = pb.RangeRequest(key=t.key_bytes(prefix), range_end=t.prefix_end(prefix), revision=revision)
        response = await self.call("get prefix", self.kv.Range, request)
        return list(response.kvs), int(response.header.revision)

    async def put(self, key: t.Key, value: t.Key, lease: int = 0) -> int:
        """Returns the revision of the write."""
        request = pb.PutRequest(key=t.key_bytes(key), value=t.key_bytes(value), lease=lease)
        response = await self.call("put", self.kv.Put, request)
        return int(response.header.revision)

    async def delete(self, key: t.Key, prefix: bool = False) -> int:
        """Returns how many keys were deleted."""
        end = t.prefix_end(key) if prefix else b""
        response = await self.call("delete", self.kv.DeleteRange, pb.DeleteRangeRequest(key=t.key_bytes(key),
                                                                                       range_end=end))
        return int(response.deleted)

    async def txn(self, compare: Sequence[pb.Compare], success: Sequence[pb.RequestOp],
                  failure: Sequence[pb.RequestOp] = ()) -> pb.TxnResponse:
        """Atomic compare-and-apply. On EtcdTimeout it may have been applied: re-read and decide."""
        request = pb.TxnRequest(compare=compare, success=success, failure=failure)
        return await self.call("txn", self.kv.Txn, request)

    async def compact(self, revision: int) -> None:
        await self.call("compact", self.kv.Compact, pb.CompactionRequest(revision=revision, physical=True))

    async def status(self) -> pb.StatusResponse:
        return await self.call("status", self.maintenance.Status, pb.StatusRequest())

    # ---- leases ---------------------------------------------------------------------------------
    async def grant(self, ttl: int) -> int:
        """Creates a lease; returns its id."""
        response = await self.call("lease grant", self.leases.LeaseGrant, pb.LeaseGrantRequest(TTL=ttl))
        if response.error:
            raise EtcdError(f"lease grant: {response.error}")
        return int(response.ID)

    async def revoke(self, lease: int) -> None:
        await self.call("lease revoke", self.leases.LeaseRevoke, pb.LeaseRevokeRequest(ID=lease))

    async def time_to_live(self, lease: int) -> int:
        """Seconds the lease has left; -1 when it does not exist."""
        response = await self.call("lease ttl", self.leases.LeaseTimeToLive, pb.LeaseTimeToLiveRequest(ID=lease))
        return int(response.TTL)
