"""The agent's lean local socket (agent/api/lean.py) beside its gRPC socket, and clusterctl on it.
The runs themselves are tested over both transports in test_run_stream.py."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator

import grpc
import pytest
from shoal.agent.v1 import agent_pb2 as apb

from tests.integration.conftest import make_agent
from tests.integration.harness import AgentProcess


def test_the_lean_socket_sits_beside_the_grpc_socket_for_root_only(agent: AgentProcess) -> None:
    mode = os.stat(agent.lean_path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_both_transports_answer_alike(agent: AgentProcess) -> None:
    grpc_stub, lean_stub = agent.stub(), agent.lean_stub()
    assert lean_stub.ListImages(apb.ListImagesRequest()) == grpc_stub.ListImages(apb.ListImagesRequest())
    for stub in (grpc_stub, lean_stub):
        with pytest.raises(grpc.RpcError) as missing:
            stub.InspectContainer(apb.InspectContainerRequest(container="no-such-one"))
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        assert missing.value.details() == "no such container: no-such-one"


def test_clusterctl_runs_containers_over_the_lean_socket_alone(agent: AgentProcess) -> None:
    """With the gRPC socket's name moved away, what clusterctl needs for run, ps and rm still answers."""
    grpc_path = agent.address.removeprefix("unix://")
    os.rename(grpc_path, grpc_path + ".away")
    try:
        run = agent.cli("run", "--name", "lean-run", "busybox:test", "echo", "over the lean socket")
        assert (run.code, run.out) == (0, "over the lean socket\n"), run.err
        assert "lean-run" in agent.cli("ps", "-a").out
        assert agent.cli("rm", "lean-run").code == 0
    finally:
        os.rename(grpc_path + ".away", grpc_path)


def test_the_lean_socket_ends_with_the_agent_and_a_stale_one_is_seen_through(fresh_agent: AgentProcess) -> None:
    """Nothing answers on the socket an agent killed by force left: clusterctl says the agent is not
    running, as over gRPC, and the agent's next start replaces the socket; a stop removes it."""
    lean = fresh_agent.lean_path
    fresh_agent.kill_agent()
    assert os.path.exists(lean)
    down = fresh_agent.cli("ps")
    assert down.code != 0 and "cannot reach the agent" in down.err
    fresh_agent.start()
    assert fresh_agent.cli("ps").code == 0
    fresh_agent.kill_agent(signal.SIGTERM)
    assert not os.path.exists(lean)


@pytest.fixture
def grpc_only_agent(test_root: str) -> Iterator[AgentProcess]:
    """Started once with the lean socket and killed by force, then without it."""
    process = make_agent(test_root)
    process.start()
    process.kill_agent()
    process.flags = ("--no-lean-socket",)
    process.start()
    try:
        yield process
    finally:
        process.destroy()


def test_without_the_lean_socket_clusterctl_uses_grpc(grpc_only_agent: AgentProcess, busybox_tar: str) -> None:
    assert not os.path.exists(grpc_only_agent.lean_path)
    assert grpc_only_agent.cli("image", "import", busybox_tar).code == 0
    run = grpc_only_agent.cli("run", "--rm", "busybox:test", "echo", "over gRPC")
    assert (run.code, run.out) == (0, "over gRPC\n"), run.err
