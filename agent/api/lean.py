"""The lean local transport: the Agent service on a unix socket, without HTTP/2 and gRPC's threads.

Why it exists: through grpc.aio a round trip costs 0.4-1.1 ms on this project's VM, most of it
handing each call between gRPC's poller thread and the event loop (several wake-ups on each
side), and a container's lifecycle takes four of them; the same messages over an asyncio unix
socket cost a quarter to a third of that (README, "Performance"). containerd made the same call
for its shims (ttrpc). gRPC stays the agent's API of record, and the only one for other hosts, the
control plane, grpcurl, health checks and reflection: this socket carries the same methods with
the same messages, handled by the same servicer, and reports errors with the same status codes
and messages. `clusterctl` uses it when it finds it beside the agent's gRPC socket.

Wire format (integers big-endian), one call at a time per connection:
- the client first sends the preface `SHOAL-LEAN/1\\n`;
- a frame is a u32 length (of what follows), a u8 kind and a body: REQUEST (a u8 length, the
  method's name, then the serialized request), MESSAGE (a serialized response), STATUS (a u8 gRPC
  status code, then the details in UTF-8; 0 is OK);
- the client sends a REQUEST; the server answers with its MESSAGE frames (one for a unary method)
  and one STATUS frame, which ends the call; then the next REQUEST may come;
- a client cancels a call by closing the connection: the handler is cancelled, as gRPC cancels a
  call whose client went away. Concurrent calls use connections of their own.
Methods that take a stream of requests (Exec, ImportImage, Build) are gRPC's only: UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from shoal.agent.v1 import agent_pb2

from agent import errors
from agent.api.errors import status_for

log = logging.getLogger(__name__)

PREFACE = b"SHOAL-LEAN/1\n"
REQUEST, MESSAGE, STATUS = 1, 2, 3
HEADER = struct.Struct(">IB")
MAX_FRAME = 64 << 20  # as the gRPC clients' receive limit; larger frames end the connection
MAX_REQUEST = 4 << 20  # as the gRPC server's receive limit: a larger request is answered RESOURCE_EXHAUSTED
SUFFIX = ".lean"  # the socket's path: the gRPC socket's, with this added


def frame(kind: int, body: bytes) -> bytes:
    return HEADER.pack(len(body) + 1, kind) + body


def status_frame(code: grpc.StatusCode, details: str = "") -> bytes:
    return frame(STATUS, bytes([code.value[0]]) + details.encode())


class ProtocolError(Exception):
    """The peer does not speak the lean protocol (or broke it): its connection is closed."""


@dataclass(frozen=True)
class _Method:
    handler: Callable[..., Any]
    request_type: type[Message]
    streams: bool


class LeanServer:
    """Serves an Agent servicer's methods on unix sockets (`listen`), until `close`."""

    def __init__(self, servicer: Any) -> None:
        service = agent_pb2.DESCRIPTOR.services_by_name["Agent"]
        self.methods = {m.name: _Method(getattr(servicer, m.name), GetMessageClass(m.input_type), m.server_streaming)
                        for m in service.methods if not m.client_streaming}
        self.paths: list[str] = []
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()

    async def listen(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # a socket an agent killed by force left
            os.unlink(path)
        self._servers.append(await asyncio.start_unix_server(self._connection, path))
        self.paths.append(path)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for path in self.paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Reads the requests, and the end of the connection: a client that leaves during a call
        has its call cancelled."""
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        call: asyncio.Task[None] | None = None
        try:
            if await reader.readexactly(len(PREFACE)) != PREFACE:
                raise ProtocolError("no lean preface")
            while True:
                length, kind = HEADER.unpack(await reader.readexactly(HEADER.size))
                if kind != REQUEST or not 2 <= length <= MAX_FRAME:
                    raise ProtocolError(f"a frame of kind {kind} and length {length} where a request was due")
                body = await reader.readexactly(length - 1)
                if call is not None and not call.done():
                    raise ProtocolError("a request before the previous call's status")
                if len(body) > MAX_REQUEST:
                    writer.write(status_frame(grpc.StatusCode.RESOURCE_EXHAUSTED, f"a request of {len(body)} bytes "
                                              f"is larger than the {MAX_REQUEST >> 20} MiB the agent takes"))
                    continue
                call = asyncio.ensure_future(self._call(body, writer))
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError):
            pass  # the client left, or is no lean client: nothing to answer
        finally:
            if call is not None and not call.done():
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)
            self._connections.discard(task)
            writer.close()

    async def _call(self, body: bytes, writer: asyncio.StreamWriter) -> None:
        name = body[1:1 + body[0]].decode(errors="replace")
        method = self.methods.get(name)
        if method is None:
            last = status_frame(grpc.StatusCode.UNIMPLEMENTED,
                                f"method {name} is not served on the lean socket: call it through gRPC")
        else:
            try:
                request = method.request_type.FromString(body[1 + body[0]:])
            except DecodeError as e:
                last = status_frame(grpc.StatusCode.INTERNAL, f"cannot parse the {name} request: {e}")
            else:
                last = await self._handle(name, method, request, writer)
        writer.write(last)
        with contextlib.suppress(ConnectionError):  # the client left: the connection's reader sees it
            await writer.drain()

    async def _handle(self, name: str, method: _Method, request: Message, writer: asyncio.StreamWriter) -> bytes:
        """Runs the handler; writes a stream's messages as they come, and returns the call's last
        frames: a unary call's message, and the status."""
        try:
            if not method.streams:
                response = await method.handler(request, None)  # no servicer method uses its gRPC context
                return frame(MESSAGE, response.SerializeToString()) + status_frame(grpc.StatusCode.OK)
            async for response in method.handler(request, None):
                writer.write(frame(MESSAGE, response.SerializeToString()))
                await writer.drain()  # a slow reader (a container's logs) holds the handler back
            return status_frame(grpc.StatusCode.OK)
        except errors.ShoalError as e:
            return status_frame(status_for(e), str(e))
        except ConnectionError:  # the client left mid-stream: nothing more to send, and its reader ends the call
            return b""
        except Exception as e:  # as gRPC answers a handler's unexpected exception
            log.exception("lean call %s failed", name)
            return status_frame(grpc.StatusCode.UNKNOWN, f"Unexpected {type(e).__name__}: {e}")
