"""The lean local transport (agent/api/lean.py ⇄ cli/lean.py) on a unix socket, without root: the
server runs in a thread of its own with its own event loop, in front of a servicer whose methods
record what happened to them. The agent's real servicer over it is tested in
tests/integration/test_lean_socket.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from shoal.agent.v1 import agent_pb2 as apb
from shoal.agent.v1 import agent_pb2_grpc
from shoal.agent.v1 import containers_pb2 as cpb

from agent.api.lean import LeanServer
from agent.errors import NotFound
from cli.lean import LeanAgentStub, LeanRpcError


class Recording(agent_pb2_grpc.AgentServicer):
    """Answers as the agent would, and records the calls that were cancelled."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []
        self.streamed = 0

    async def InspectContainer(self, request: Any, context: Any) -> Any:
        if request.container == "missing":
            raise NotFound("no such container: missing")
        if request.container == "broken":
            raise RuntimeError("a bug")
        return apb.InspectContainerResponse(container=cpb.Container(id=request.container, name="web"))

    async def WaitContainer(self, request: Any, context: Any) -> Any:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.append("WaitContainer")
            raise
        return apb.WaitContainerResponse()

    async def ContainerLogs(self, request: Any, context: Any) -> AsyncIterator[Any]:
        try:
            for number in range(request.tail):
                self.streamed += 1
                yield apb.ContainerLogsResponse(entries=[cpb.LogEntry(data=f"line {number}".encode())])
            if request.follow:
                await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.append("ContainerLogs")
            raise


@contextlib.contextmanager
def serving(path: str) -> Iterator[tuple[Recording, asyncio.AbstractEventLoop]]:
    """A LeanServer on `path` in a thread with its own event loop, closed at the end."""
    loop = asyncio.new_event_loop()
    servicer = Recording()
    server = LeanServer(servicer)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.listen(path), loop).result(5)
    try:
        yield servicer, loop
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    assert not os.path.exists(path)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Recording, asyncio.AbstractEventLoop]]:
    path = str(tmp_path / "agent.sock.lean")
    with serving(path) as (servicer, loop):
        yield path, servicer, loop


def stub_for(path: str) -> LeanAgentStub:
    return LeanAgentStub(grpc.insecure_channel("unix:///nonexistent/agent.sock"), path)


def eventually(condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("the condition did not come true")


def test_unary_calls_answer_and_reuse_their_connection(served: Any) -> None:
    path, _, _ = served
    stub = stub_for(path)
    first = stub.InspectContainer(apb.InspectContainerRequest(container="abc"))
    second = stub.InspectContainer(apb.InspectContainerRequest(container="def"))
    assert (first.container.id, second.container.id) == ("abc", "def")
    assert len(stub._idle) == 1  # one connection carried both


def test_domain_errors_keep_their_status_code_and_message(served: Any) -> None:
    path, _, _ = served
    stub = stub_for(path)
    with pytest.raises(grpc.RpcError) as raised:
        stub.InspectContainer(apb.InspectContainerRequest(container="missing"))
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "no such container: missing"
    with pytest.raises(grpc.RpcError) as raised:
        stub.InspectContainer(apb.InspectContainerRequest(container="broken"))
    assert raised.value.code() is grpc.StatusCode.UNKNOWN and "a bug" in raised.value.details()
    assert stub.InspectContainer(apb.InspectContainerRequest(container="after")).container.name == "web"
    assert len(stub._idle) == 1  # an error ends the call, not the connection


def test_a_stream_yields_each_message_then_ends(served: Any) -> None:
    path, _, _ = served
    stub = stub_for(path)
    lines = [r.entries[0].data for r in stub.ContainerLogs(apb.ContainerLogsRequest(container="c", tail=3))]
    assert lines == [b"line 0", b"line 1", b"line 2"]
    assert len(stub._idle) == 1


def test_a_stream_dropped_early_cancels_its_call(served: Any) -> None:
    path, servicer, _ = served
    stub = stub_for(path)
    responses = stub.ContainerLogs(apb.ContainerLogsRequest(container="c", tail=1, follow=True))
    assert next(responses).entries[0].data == b"line 0"
    del responses  # as clusterctl leaves `run` at the container's exit: the connection closes
    eventually(lambda: servicer.cancelled == ["ContainerLogs"])


def test_a_deadline_ends_the_call_on_both_sides(served: Any) -> None:
    path, servicer, _ = served
    stub = stub_for(path)
    with pytest.raises(grpc.RpcError) as raised:
        stub.WaitContainer(apb.WaitContainerRequest(container="c"), timeout=0.2)
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    eventually(lambda: servicer.cancelled == ["WaitContainer"])
    assert stub.InspectContainer(apb.InspectContainerRequest(container="next")).container.id == "next"


def test_methods_taking_a_stream_of_requests_go_through_grpc(served: Any) -> None:
    path, _, _ = served
    stub = stub_for(path)
    with pytest.raises(grpc.RpcError) as raised:  # gRPC's answer: nothing listens on the gRPC socket
        stub.ImportImage(iter([apb.ImportImageRequest()]), timeout=1)
    assert not isinstance(raised.value, LeanRpcError)
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE


def test_an_unreachable_lean_socket_falls_back_to_grpc(tmp_path: Path) -> None:
    stub = stub_for(str(tmp_path / "gone.lean"))
    with pytest.raises(grpc.RpcError) as raised:
        stub.InspectContainer(apb.InspectContainerRequest(container="c"), timeout=1)
    assert not isinstance(raised.value, LeanRpcError) and raised.value.code() is grpc.StatusCode.UNAVAILABLE


def raw_exchange(path: str, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(5)
        conn.connect(path)
        conn.sendall(data)
        received = b""
        while chunk := conn.recv(4096):  # until the server closes, or one whole frame
            received += chunk
            if len(received) >= 4 and len(received) >= 4 + struct.unpack(">I", received[:4])[0]:
                break
        return received


def test_an_unknown_method_is_unimplemented(served: Any) -> None:
    path, _, _ = served
    name = b"Teleport"
    body = bytes([len(name)]) + name
    answer = raw_exchange(path, b"SHOAL-LEAN/1\n" + struct.pack(">IB", len(body) + 1, 1) + body)
    assert answer[4] == 3 and answer[5] == grpc.StatusCode.UNIMPLEMENTED.value[0]
    assert b"Teleport is not served on the lean socket" in answer


def test_a_peer_without_the_preface_is_disconnected(served: Any) -> None:
    path, _, _ = served
    assert raw_exchange(path, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == b""  # a gRPC client at the wrong socket


def test_a_request_larger_than_grpcs_limit_is_refused_and_the_connection_kept(served: Any) -> None:
    path, _, _ = served
    stub = stub_for(path)
    huge = apb.InspectContainerRequest(container="x" * (5 << 20))
    with pytest.raises(grpc.RpcError) as raised:
        stub.InspectContainer(huge)
    assert raised.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and "4 MiB" in raised.value.details()
    assert stub.InspectContainer(apb.InspectContainerRequest(container="small")).container.id == "small"
    assert len(stub._idle) == 1


def test_a_connection_the_agent_closed_since_is_replaced(tmp_path: Path) -> None:
    """An agent that restarted between two calls of one client: the idle connection is dead."""
    path = str(tmp_path / "agent.sock.lean")
    stub = stub_for(path)
    with serving(path):
        assert stub.InspectContainer(apb.InspectContainerRequest(container="before")).container.id == "before"
    with serving(path):
        assert stub.InspectContainer(apb.InspectContainerRequest(container="after")).container.id == "after"


def test_both_sides_speak_the_same_wire_format() -> None:
    """cli/ and agent/ share only the protos, so each states the format's constants itself."""
    from agent.api import lean as server
    from cli import lean as client

    for constant in ("PREFACE", "REQUEST", "MESSAGE", "STATUS", "MAX_FRAME", "SUFFIX"):
        assert getattr(server, constant) == getattr(client, constant), constant
    assert server.HEADER.format == client.HEADER.format
