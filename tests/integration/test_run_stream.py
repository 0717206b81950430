"""RunContainer: `docker run` in one stream (started, output, exited), its auto-removal and its errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import grpc
import pytest
from shoal.agent.v1 import agent_pb2 as apb
from shoal.agent.v1 import containers_pb2 as cpb

from tests.integration.harness import ENV, AgentProcess
from tests.integration.test_lifecycle import wait_for


@pytest.fixture(params=["grpc", "lean"])
def stub(request: pytest.FixtureRequest, agent: AgentProcess) -> Any:
    """Each run through gRPC and through the lean local socket (agent/api/lean.py), which clusterctl uses."""
    return agent.stub() if request.param == "grpc" else agent.lean_stub()


def spec(name: str, *command: str, auto_remove: bool = True) -> cpb.ContainerSpec:
    return cpb.ContainerSpec(name=name, image="busybox:test", command=list(command), auto_remove=auto_remove)


def names(agent: AgentProcess) -> list[str]:
    listed = agent.stub().ListContainers(apb.ListContainersRequest(all=True)).containers
    return [c.name for c in listed]


def trash(agent: AgentProcess) -> list[str]:
    return os.listdir(os.path.join(agent.state_dir, "trash"))


def test_attached_run_streams_every_line_then_the_exit_and_removes(agent: AgentProcess, stub: Any) -> None:
    responses = list(stub.RunContainer(apb.RunContainerRequest(
        spec=spec("counted", "sh", "-c", "seq 1 2000; echo done >&2; exit 7"), attach=True)))
    events = [r.WhichOneof("event") for r in responses]
    assert events[0] == "started" and events[-1] == "exited" and set(events[1:-1]) == {"output"}
    started, exited = responses[0].started, responses[-1].exited
    assert started.state == cpb.CONTAINER_STATE_RUNNING and started.name == "counted"
    assert (exited.id, exited.exit_code, exited.state) == (started.id, 7, cpb.CONTAINER_STATE_EXITED)
    entries = [e for r in responses[1:-1] for e in r.output.entries]
    stdout = [e.data for e in entries if e.stream == cpb.LogEntry.STREAM_STDOUT]
    assert stdout == [f"{n}\n".encode() for n in range(1, 2001)]  # the removal waited for the last line
    assert [e.data for e in entries if e.stream == cpb.LogEntry.STREAM_STDERR] == [b"done\n"]
    assert "counted" not in names(agent)  # gone when the stream ends, as `docker run --rm`
    wait_for(lambda: started.id not in trash(agent))


def test_run_without_attach_answers_after_the_exit_and_the_removal(agent: AgentProcess, stub: Any) -> None:
    responses = list(stub.RunContainer(apb.RunContainerRequest(spec=spec("quiet", "sh", "-c", "echo x"))))
    assert [r.WhichOneof("event") for r in responses] == ["started", "exited"]
    assert responses[-1].exited.exit_code == 0 and "quiet" not in names(agent)


def test_detached_run_ends_once_started_and_the_agent_removes_at_exit(agent: AgentProcess, stub: Any) -> None:
    responses = list(stub.RunContainer(apb.RunContainerRequest(
        spec=spec("brief", "sleep", "1"), detach=True)))
    assert [r.WhichOneof("event") for r in responses] == ["started"]
    assert "brief" in names(agent)
    wait_for(lambda: "brief" not in names(agent))


def test_a_client_that_leaves_early_leaves_the_container_running_then_removed(agent: AgentProcess, stub: Any) -> None:
    call = stub.RunContainer(apb.RunContainerRequest(spec=spec("left", "sleep", "1"), attach=True))
    assert next(call).WhichOneof("event") == "started"
    call.cancel()
    time.sleep(0.3)
    [left] = stub.ListContainers(apb.ListContainersRequest(all=True)).containers
    assert left.name == "left" and left.state == cpb.CONTAINER_STATE_RUNNING
    wait_for(lambda: "left" not in names(agent))  # the hold went back to the agent's own auto-removal


def test_a_failed_start_is_the_streams_error_and_auto_remove_leaves_nothing(agent: AgentProcess, stub: Any) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        list(stub.RunContainer(apb.RunContainerRequest(spec=spec("absent", "/no/such/program"), attach=True)))
    assert failed.value.code() is grpc.StatusCode.UNKNOWN and "/no/such/program" in (failed.value.details() or "")
    assert "absent" not in names(agent)
    with pytest.raises(grpc.RpcError):
        list(stub.RunContainer(apb.RunContainerRequest(
            spec=spec("kept", "/no/such/program", auto_remove=False), attach=True)))
    [kept] = stub.ListContainers(apb.ListContainersRequest(all=True)).containers
    assert kept.name == "kept" and "/no/such/program" in kept.error  # as StartContainer leaves it
    stub.RemoveContainer(apb.RemoveContainerRequest(container="kept"))


def test_a_start_whose_caller_leaves_still_completes(agent: AgentProcess, stub: Any) -> None:
    """The client's deadline passes while the supervisor (stopped here) has the start: the agent
    still records the container as running when the supervisor answers, and sees its exit."""
    created = stub.CreateContainer(apb.CreateContainerRequest(spec=spec("deadline", "sleep", "1",
                                                                        auto_remove=False))).container
    with open(os.path.join(agent.state_dir, "supervisor.pid")) as f:
        supervisor = int(f.read())
    os.kill(supervisor, signal.SIGSTOP)
    try:
        with pytest.raises(grpc.RpcError) as gone:
            stub.StartContainer(apb.StartContainerRequest(container=created.id), timeout=0.5)
        assert gone.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        os.kill(supervisor, signal.SIGCONT)

    def state() -> cpb.Container:
        return stub.InspectContainer(apb.InspectContainerRequest(container=created.id)).container

    wait_for(lambda: state().state == cpb.CONTAINER_STATE_RUNNING)
    wait_for(lambda: state().state == cpb.CONTAINER_STATE_EXITED)
    assert state().exit_code == 0
    stub.RemoveContainer(apb.RemoveContainerRequest(container=created.id))


def test_a_forced_removal_whose_caller_leaves_still_completes(agent: AgentProcess, stub: Any) -> None:
    """The client's deadline passes while the supervisor (stopped here) has the kill: the agent still
    removes the container once it has ended, instead of keeping it, exited, under its name."""
    created = stub.CreateContainer(apb.CreateContainerRequest(spec=spec("doomed", "sleep", "300",
                                                                        auto_remove=False))).container
    stub.StartContainer(apb.StartContainerRequest(container=created.id))
    supervisor = agent.supervisor_pid()
    os.kill(supervisor, signal.SIGSTOP)
    try:
        with pytest.raises(grpc.RpcError) as gone:
            stub.RemoveContainer(apb.RemoveContainerRequest(container=created.id, force=True), timeout=0.5)
        assert gone.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        os.kill(supervisor, signal.SIGCONT)
    wait_for(lambda: "doomed" not in names(agent))


@pytest.mark.parametrize(("request_fields", "code", "words"), [
    ({"spec": spec("both", "true"), "attach": True, "detach": True}, grpc.StatusCode.INVALID_ARGUMENT, "detach"),
    ({"spec": cpb.ContainerSpec(name="nothing", image="nosuch:image")}, grpc.StatusCode.NOT_FOUND, "nosuch"),
    ({"spec": cpb.ContainerSpec(name="no image")}, grpc.StatusCode.INVALID_ARGUMENT, "image"),
])
def test_bad_runs_are_refused_before_anything_is_made(agent: AgentProcess, stub: Any,
                                                     request_fields: dict,  # type: ignore[type-arg]
                                                     code: grpc.StatusCode, words: str) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        list(stub.RunContainer(apb.RunContainerRequest(**request_fields)))
    assert refused.value.code() is code and words in (refused.value.details() or "")
    assert names(agent) == []


def test_cli_run_rm_is_one_stream_with_docker_exit_codes(agent: AgentProcess) -> None:
    result = agent.cli("run", "--rm", "busybox:test", "sh", "-c", "seq 1 500 | tail -n 1; exit 4")
    assert (result.code, result.out) == (4, "500\n")
    assert agent.cli("run", "--rm", "busybox:test", "/no/such/program").code == 127
    assert agent.cli("run", "--rm", "busybox:test", "/etc").code == 126
    assert agent.cli("run", "--rm", "--name", "bad name!", "busybox:test", "true").code == 125
    assert names(agent) == []


def test_ctrl_c_during_an_attached_run_reaches_the_container(agent: AgentProcess) -> None:
    """Docker's sig-proxy: the first Ctrl-C is the container's SIGINT; its exit code is the run's."""
    run = subprocess.Popen([sys.executable, "-m", "cli.main", "--agent", agent.address, "run", "--rm", "busybox:test",
                            "sh", "-c", "trap 'echo interrupted; exit 5' INT; echo ready; while :; do sleep 0.1; done"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        assert run.stdout is not None and run.stdout.readline() == b"ready\n"
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert (run.returncode, out) == (5, b"interrupted\n"), err
    assert names(agent) == []
