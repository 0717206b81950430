"""The agent's gRPC surface beyond the Agent service: TCP listening, health checking, reflection."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.integration.conftest import make_agent
from tests.integration.harness import AgentProcess, free_port


@pytest.fixture
def tcp_agent(test_root: str) -> Iterator[tuple[AgentProcess, str]]:
    address = f"127.0.0.1:{free_port()}"
    agent = make_agent(test_root)
    agent.listen = address
    agent.start()
    try:
        yield agent, address
    finally:
        agent.destroy()


def test_tcp_listen_health_and_reflection(tcp_agent: tuple[AgentProcess, str]) -> None:
    agent, address = tcp_agent
    assert agent.address == address
    assert agent.cli("ps").code == 0
    channel = grpc.insecure_channel(address)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "shoal.agent.v1.Agent"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    [answer] = list(reflection.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in answer.list_services_response.service}
    assert {"shoal.agent.v1.Agent", "grpc.health.v1.Health"} <= names
