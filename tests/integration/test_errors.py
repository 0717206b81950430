"""Every bad input: a one-line error naming what is wrong, a non-zero exit, nothing left behind."""

from __future__ import annotations

import os

from tests.integration.harness import AgentProcess, container_inits, free_port


def containers_on_disk(agent: AgentProcess) -> list[str]:
    return sorted(os.listdir(os.path.join(agent.state_dir, "containers")))


def test_bad_inputs(agent: AgentProcess) -> None:
    before = containers_on_disk(agent)
    cases = [
        (["run", "--memory", "lots", "busybox:test", "true"], 125, "--memory: 'lots' is not a memory size"),
        (["run", "--memory", "1m", "busybox:test", "true"], 125, "resources.memory_bytes: at least 6 MiB"),
        (["run", "--cpus", "abc", "busybox:test", "true"], 125, "--cpus"),
        (["run", "--restart", "sometimes", "busybox:test", "true"], 125, "--restart"),
        (["run", "-v", "/no/such/dir:/data", "busybox:test", "true"], 125, "host path /no/such/dir does not exist"),
        (["run", "-e", "NOEQUALS", "busybox:test", "true"], 125, "env[0]"),
        (["run", "--name", "bad name", "busybox:test", "true"], 125, "not a valid name"),
        (["run", "--rm", "busybox:test", "no-such-binary"], 127, "executable file not found"),
        (["image", "import", "/no/such/file.tar"], 1, "no such file"),
        (["logs", "ghost"], 1, "no such container: ghost"),
        (["exec", "ghost", "true"], 1, "no such container"),
        (["kill", "-s", "NOPE", "ghost"], 1, "signal: 'NOPE' is not a signal name"),
    ]
    for args, code, message in cases:
        result = agent.cli(*args)
        assert result.code == code, (args, result.code, result.err)
        assert message in result.err, (args, result.err)
        assert result.err.startswith("Error: ") and result.err.count("\n") == 1, result.err
    missing = f"127.0.0.1:{free_port()}/no-such-image:1"  # as Docker: not here, so pulled, from nowhere
    result = agent.cli("run", missing, "true")
    assert result.code == 125 and result.err.startswith(f"Unable to find image '{missing}' locally\nError: ")
    assert f"cannot reach registry {missing.split('/')[0]}" in result.err
    assert containers_on_disk(agent) == before


def test_failed_start_leaves_a_created_container_as_docker_does(agent: AgentProcess) -> None:
    result = agent.cli("run", "--name", "broken", "busybox:test", "/no/such")
    assert result.code == 127
    [container] = agent.cli_json("inspect", "broken")  # type: ignore[misc]
    assert container["state"] == "CONTAINER_STATE_CREATED" and "not found" in container["error"]
    assert "start failed" in agent.cli("ps", "-a").out
    assert agent.cli("rm", "broken").code == 0


def test_name_clash_and_not_running(agent: AgentProcess) -> None:
    assert agent.cli("run", "--name", "twin", "busybox:test", "true").code == 0
    clash = agent.cli("run", "--name", "twin", "busybox:test", "true")
    assert clash.code == 125 and "already in use" in clash.err
    for args in (["exec", "twin", "true"], ["kill", "twin"]):
        result = agent.cli(*args)
        assert result.code == 1 and "is not running" in result.err
    assert agent.cli("rm", "twin").code == 0


def test_rm_of_running_container_needs_force(agent: AgentProcess) -> None:
    assert agent.cli("run", "-d", "--name", "busy", "busybox:test", "sleep", "60").code == 0
    refused = agent.cli("rm", "busy")
    assert refused.code == 1 and "stop it first" in refused.err
    assert agent.cli("rm", "-f", "busy").code == 0


def test_not_an_archive(agent: AgentProcess, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "junk.tar")
    with open(path, "wb") as f:
        f.write(b"not a tar at all" * 100)
    result = agent.cli("image", "import", path)
    assert result.code == 1 and "junk.tar" in result.err


def test_unreachable_agent() -> None:
    from tests.integration.harness import AgentProcess as Agent

    ghost = Agent(state_dir="/nonexistent/shoal", cgroup_parent="unused")
    result = ghost.cli("ps")
    assert result.code == 1 and "cannot reach the agent" in result.err


def test_a_setup_failure_inside_the_child_is_reported_and_the_runtime_carries_on(
        agent: AgentProcess, tmp_path: object) -> None:
    """An image that breaks the container's setup (its /.shoal-oldroot is a file) fails that start
    only: the supervisor reports the step and keeps serving."""
    import tarfile

    from make_busybox_image import Entry, busybox_entries, layer_tar, write_oci_layout

    path = os.path.join(str(tmp_path), "broken.tar")
    write_oci_layout(path, [layer_tar([*busybox_entries(), Entry(".shoal-oldroot", b"in the way", 0o644,
                                                                 tarfile.REGTYPE)])], name="broken:1")
    assert agent.cli("image", "import", path).code == 0
    result = agent.cli("run", "--rm", "broken:1", "true")
    assert result.code == 126 and "mounting the root filesystem" in result.err and ".shoal-oldroot" in result.err
    supervisor = agent.supervisor_pid()
    assert container_inits(supervisor) == []  # no stray copy of the supervisor survived the failed child
    assert agent.cli("run", "--rm", "busybox:test", "echo", "still fine").out == "still fine\n"
    assert agent.cli("image", "rm", "broken:1").code == 0



def test_what_the_start_checks_and_what_the_exec_reports(agent: AgentProcess, tmp_path: object) -> None:
    """The init finds its command before it is started, so a file that cannot be executed fails the
    start, as `docker start` does. A file execve refuses for its content fails only at the exec,
    after the start answered: the container then exits 127 with the exec's error."""
    import tarfile

    from make_busybox_image import Entry, busybox_entries, layer_tar, write_oci_layout

    path = os.path.join(str(tmp_path), "odd.tar")
    write_oci_layout(path, [layer_tar([*busybox_entries(),
                                       Entry("plain", b"#!/bin/sh\necho hi\n", 0o644, tarfile.REGTYPE),
                                       Entry("garbage", b"\x01\x02 not a program", 0o755, tarfile.REGTYPE)])],
                     name="odd:1")
    assert agent.cli("image", "import", path).code == 0
    refused = agent.cli("run", "--rm", "odd:1", "/plain")
    assert refused.code == 126 and "Permission denied: '/plain'" in refused.err, refused.err
    ran = agent.cli("run", "--name", "garbage", "odd:1", "/garbage")
    assert ran.code == 127 and "Exec format error" in ran.err, (ran.code, ran.err)
    [container] = agent.cli_json("inspect", "garbage")  # type: ignore[misc]
    assert container["exit_code"] == 127 and "Exec format error" in container["error"], container
    assert agent.cli("rm", "garbage").code == 0
    assert agent.cli("image", "rm", "odd:1").code == 0
