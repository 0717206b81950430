"""The control plane's domain errors; the gRPC edge maps each to one status code (api/errors.py)."""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Base of every error reported to callers; the message is one line for humans."""


class NotFound(ControlPlaneError):
    pass


class Conflict(ControlPlaneError):
    """Changed concurrently, or not allowed in the current state; re-read and retry."""


class InvalidSpec(ControlPlaneError):
    def __init__(self, field: str, expected: str) -> None:
        super().__init__(f"{field}: {expected}")
        self.field = field


class Unavailable(ControlPlaneError):
    """etcd cannot be reached right now."""


class NotReady(ControlPlaneError):
    """The object exists but cannot do this yet (a pending replica has no container to exec into)."""


class AgentCallFailed(ControlPlaneError):
    """A call proxied to a node's agent failed; carries the agent's status code name so the caller
    sees the same code the agent gave (NOT_FOUND stays NOT_FOUND), and the node in the message."""

    def __init__(self, node: str, code_name: str, details: str) -> None:
        super().__init__(f"node {node}: {details}")
        self.code_name = code_name
        self.details = details


class Exhausted(ControlPlaneError):
    """A pool (node subnets) has nothing left to give."""
