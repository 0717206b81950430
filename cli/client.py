"""Connecting to an agent, and turning gRPC errors into one-line messages and exit codes."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import grpc
from shoal.agent.v1 import agent_pb2_grpc

from cli.lean import LeanAgentStub, lean_socket_of

DEFAULT_AGENT = "unix:///var/lib/shoal/agent/agent.sock"


class CliError(Exception):
    """Printed as `Error: <message>`; exits with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def agent_address(flag: str | None) -> str:
    return flag or os.environ.get("SHOAL_AGENT") or DEFAULT_AGENT


def agent_stub(address: str) -> agent_pb2_grpc.AgentStub:
    """The agent's API: through its lean local socket when it serves one beside its unix socket
    (cli/lean.py; SHOAL_LEAN=0 turns that off), else through gRPC."""
    channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)])
    lean_socket = lean_socket_of(address)
    return LeanAgentStub(channel, lean_socket) if lean_socket else agent_pb2_grpc.AgentStub(channel)


def explain(error: grpc.RpcError, address: str) -> str:
    code = error.code()
    details = error.details() or code.name
    if code is grpc.StatusCode.UNAVAILABLE and details.startswith(("failed to connect", "Connection refused",
                                                                   "Socket closed")):
        what = "the agent" if address.startswith("unix://") else "the server"
        return f"cannot reach {what} at {address}: is it running? ({details})"
    return str(details)


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(code)
