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
