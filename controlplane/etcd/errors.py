"""What can go wrong talking to etcd, mapped once from gRPC status codes and etcd's messages."""

from __future__ import annotations

import grpc


class EtcdError(Exception):
    """Base of every etcd client error."""


class EtcdUnavailable(EtcdError):
    """No endpoint answered. Nothing was applied; retrying later is safe."""


class EtcdTimeout(EtcdError):
    """The deadline passed. A write may or may not have been applied: re-read, never retry blindly."""


class Compacted(EtcdError):
    """The requested revision was compacted away; history starts at `compact_revision`."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"revision compacted; the oldest available is {compact_revision}")
        self.compact_revision = compact_revision


class LeaseNotFound(EtcdError):
    """The lease does not exist (any more)."""


class NoLeader(EtcdError):
    """The election has no leader right now."""


def translate(error: grpc.aio.AioRpcError, what: str) -> EtcdError:
    code = error.code()
    details = error.details() or code.name
    if code is grpc.StatusCode.UNAVAILABLE:
        return EtcdUnavailable(f"{what}: etcd unavailable: {details}")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return EtcdTimeout(f"{what}: no answer before the deadline (it may still have been applied)")
    if "required revision has been compacted" in details:
        return Compacted(0)
    if "requested lease not found" in details:
        return LeaseNotFound(f"{what}: {details}")
    if "election: no leader" in details:
        return NoLeader(details)
    return EtcdError(f"{what}: {details}")
