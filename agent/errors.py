"""The agent's domain errors. The gRPC edge maps each class to one status code (api/errors.py)."""

from __future__ import annotations


class ShoalError(Exception):
    """Base of every error the agent reports to its callers; the message is one line for humans."""


class NotFound(ShoalError):
    pass


class AlreadyExists(ShoalError):
    pass


class Conflict(ShoalError):
    """The object is in a state that does not allow the operation (running, in use, ...)."""


class InvalidSpec(ShoalError):
    """A bad input; names the field path and what is expected."""

    def __init__(self, field: str, expected: str) -> None:
        super().__init__(f"{field}: {expected}")
        self.field = field
        self.expected = expected


class Exhausted(ShoalError):
    """A finite pool (addresses, ports) has nothing left."""


class Unavailable(ShoalError):
    """A dependency (the runtime supervisor) cannot be reached right now; retrying may help."""


class Failed(ShoalError):
    """The operation was valid but the kernel or the image made it fail (e.g. the command does not exist)."""


class AccessDenied(ShoalError):
    """Someone else (a registry) refused the credentials, or access without them."""


class BadInput(ShoalError):
    """A bad input whose message already says where and what (a Dockerfile's line)."""
