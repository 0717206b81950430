"""clusterctl's side of the agent's lean local transport (`agent/api/lean.py` says why it exists
and defines the wire format; the two packages share only the protos, so its few constants are
repeated here). `LeanAgentStub` has the AgentStub's methods: those whose requests are single
messages go over the lean socket, the others (exec, image import, build) through gRPC, as does
any call when the lean socket cannot be reached. Errors are `grpc.RpcError`s with the agent's
status codes, so callers cannot tell the transports apart."""

from __future__ import annotations

import functools
import os
import socket
import stat
import struct
import time
from collections.abc import Generator, Iterator
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from shoal.agent.v1 import agent_pb2, agent_pb2_grpc

PREFACE = b"SHOAL-LEAN/1\n"
REQUEST, MESSAGE, STATUS = 1, 2, 3
HEADER = struct.Struct(">IB")
MAX_FRAME = 64 << 20
SUFFIX = ".lean"

CODES = {code.value[0]: code for code in grpc.StatusCode}


def lean_socket_of(address: str) -> str:
    """The lean socket beside the agent's gRPC unix socket, if the agent serves one; else ""."""
    if not address.startswith("unix://") or os.environ.get("SHOAL_LEAN", "1") == "0":
        return ""
    path = address.removeprefix("unix://") + SUFFIX
    try:
        return path if stat.S_ISSOCK(os.stat(path).st_mode) else ""
    except OSError:
        return ""


class LeanRpcError(grpc.RpcError):
    """A call's error status, as gRPC's own errors present it (code() and details())."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class _Connection:
    """One connection, one call at a time; frames are read through a buffer (a unary call's
    message and status usually arrive in one read)."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
            self.sock.sendall(PREFACE)
        except OSError:
            self.sock.close()
            raise
        self.buffer = bytearray()
        self.deadline: float | None = None

    def send(self, name: str, request: Message) -> None:
        body = bytes([len(name)]) + name.encode() + request.SerializeToString()
        self._io(self.sock.sendall, HEADER.pack(len(body) + 1, REQUEST) + body)

    def read_frame(self) -> tuple[int, bytes]:
        self._fill(HEADER.size)
        length, kind = HEADER.unpack_from(self.buffer)
        if not 1 <= length <= MAX_FRAME + 1:
            raise LeanRpcError(grpc.StatusCode.INTERNAL, f"the agent sent a frame of {length} bytes")
        self._fill(HEADER.size + length - 1)
        body = bytes(self.buffer[HEADER.size:HEADER.size + length - 1])
        del self.buffer[:HEADER.size + length - 1]
        return kind, body

    def _fill(self, size: int) -> None:
        while len(self.buffer) < size:
            chunk = self._io(self.sock.recv, 65536)
            if not chunk:
                raise LeanRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed (the agent ended the connection)")
            self.buffer += chunk

    def _io(self, operation: Any, argument: Any) -> Any:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise LeanRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            self.sock.settimeout(left)
        try:
            return operation(argument)
        except TimeoutError:
            raise LeanRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except OSError as e:
            raise LeanRpcError(grpc.StatusCode.UNAVAILABLE, f"Socket closed ({e})") from None

    def close(self) -> None:
        self.sock.close()


class LeanAgentStub(agent_pb2_grpc.AgentStub):
    """The Agent service's methods, called as AgentStub's are: `stub.Method(request, timeout=None)`."""

    def __init__(self, channel: grpc.Channel, path: str) -> None:
        super().__init__(channel)
        self._path = path
        self._idle: list[_Connection] = []
        self._grpc: dict[str, Any] = {}  # each method through gRPC: the fallback
        for method in agent_pb2.DESCRIPTOR.services_by_name["Agent"].methods:
            self._grpc[method.name] = getattr(self, method.name)
            if not method.client_streaming:
                call = self._stream if method.server_streaming else self._unary
                setattr(self, method.name, functools.partial(call, method.name, GetMessageClass(method.output_type)))

    def _unary(self, name: str, response_type: type[Message], request: Message,
               timeout: float | None = None) -> Message:
        connection = self._begin(name, request, timeout)
        if connection is None:
            return self._grpc[name](request, timeout=timeout)  # type: ignore[no-any-return]
        responses = list(self._responses(connection, response_type))
        if len(responses) != 1:
            raise LeanRpcError(grpc.StatusCode.INTERNAL, f"the agent answered {name} with {len(responses)} messages")
        return responses[0]

    def _stream(self, name: str, response_type: type[Message], request: Message,
                timeout: float | None = None) -> Iterator[Message]:
        """The request is sent at once, as gRPC's stub sends it; the responses come as iterated.
        An iterator dropped before its end closes its connection, which cancels the call."""
        connection = self._begin(name, request, timeout)
        if connection is None:
            return self._grpc[name](request, timeout=timeout)  # type: ignore[no-any-return]
        return LeanStream(self._responses(connection, response_type))

    def _responses(self, connection: _Connection, response_type: type[Message]) -> Generator[Message, None, None]:
        try:
            while (frame := connection.read_frame())[0] == MESSAGE:
                yield response_type.FromString(frame[1])
        except BaseException:
            connection.close()
            raise
        kind, body = frame
        if kind != STATUS:
            connection.close()
        else:  # the call has ended, with or without an error: the connection serves the next one
            self._end(connection)
        if kind != STATUS or body[:1] != b"\0":
            _raise_status(kind, body)

    def _begin(self, name: str, request: Message, timeout: float | None) -> _Connection | None:
        """A connection with the request sent, or None when the lean socket cannot be reached
        (the call then goes through gRPC, which reports an agent that is down its own way)."""
        while self._idle:
            try:
                return self._send(self._idle.pop(), name, request, timeout)
            except LeanRpcError as e:  # the agent closed it since (it restarted): the next one, or a new one
                if e.code() is not grpc.StatusCode.UNAVAILABLE:
                    raise
        try:
            connection = _Connection(self._path)
        except OSError:
            return None
        return self._send(connection, name, request, timeout)

    @staticmethod
    def _send(connection: _Connection, name: str, request: Message, timeout: float | None) -> _Connection:
        connection.deadline = None if timeout is None else time.monotonic() + timeout
        try:
            connection.send(name, request)
        except LeanRpcError:
            connection.close()
            raise
        return connection

    def _end(self, connection: _Connection) -> None:
        connection.deadline = None
        connection.sock.settimeout(None)
        self._idle.append(connection)


class LeanStream(Iterator[Message]):
    """A streaming call's responses; `cancel()` ends the call, as on gRPC's call objects."""

    def __init__(self, responses: Generator[Message, None, None]) -> None:
        self._responses = responses

    def __next__(self) -> Message:
        return next(self._responses)

    def cancel(self) -> None:
        self._responses.close()


def _raise_status(kind: int, body: bytes) -> NoReturn:
    if kind != STATUS or body[:1] in (b"", b"\0"):
        raise LeanRpcError(grpc.StatusCode.INTERNAL, f"the agent sent a frame of kind {kind} out of turn")
    raise LeanRpcError(CODES.get(body[0], grpc.StatusCode.UNKNOWN), body[1:].decode(errors="replace"))
