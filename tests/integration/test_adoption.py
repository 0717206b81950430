"""The agent can die: containers keep running, a new agent re-adopts them and still learns exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.integration.harness import ENV, AgentProcess, children, container_inits, namespace, pooled_inits


def test_kill_9_agent_keeps_containers_and_readopts(fresh_agent: AgentProcess) -> None:
    agent = fresh_agent
    assert agent.cli("run", "-d", "--name", "survivor", "busybox:test", "sleep", "300").code == 0
    assert agent.cli("run", "-d", "--name", "finisher", "busybox:test", "sh", "-c", "sleep 1; exit 42").code == 0
    [survivor] = agent.cli_json("inspect", "survivor")  # type: ignore[misc]
    supervisor = agent.supervisor_pid()
    agent.kill_agent(signal.SIGKILL)
    assert os.path.exists(f"/proc/{survivor['pid']}") and os.path.exists(f"/proc/{supervisor}")
    time.sleep(1.5)  # `finisher` exits while no agent runs
    leftover = os.path.join(agent.state_dir, "trash", "0" * 64)  # as if the agent died mid-cleanup
    os.makedirs(os.path.join(leftover, "upper", "deep"))
    agent.start()
    [again] = agent.cli_json("inspect", "survivor")  # type: ignore[misc]
    assert again["state"] == "CONTAINER_STATE_RUNNING" and again["pid"] == survivor["pid"]
    [finished] = agent.cli_json("inspect", "finisher")  # type: ignore[misc]
    assert finished["state"] == "CONTAINER_STATE_EXITED" and finished["exit_code"] == 42
    deadline = time.monotonic() + 10
    while os.path.exists(leftover) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(leftover)
    # The re-adopted container is fully manageable.
    assert agent.cli("exec", "survivor", "true").code == 0
    assert agent.cli("stop", "-t", "0", "survivor").code == 0
    [stopped] = agent.cli_json("inspect", "survivor")  # type: ignore[misc]
    assert stopped["exit_code"] == 137


def test_no_helper_process_per_container(fresh_agent: AgentProcess) -> None:
    agent = fresh_agent
    for index in range(3):
        assert agent.cli("run", "-d", "--name", f"c{index}", "busybox:test", "sleep", "300").code == 0
    supervisor = agent.supervisor_pid()
    for index in range(3):
        [container] = agent.cli_json("inspect", f"c{index}")  # type: ignore[misc]
        with open(f"/proc/{container['pid']}/stat") as f:
            parent = int(f.read().rsplit(")", 1)[1].split()[1])
        assert parent == supervisor


def test_two_agents_coexist(fresh_agent: AgentProcess, test_root: str, busybox_tar: str) -> None:
    from tests.integration.conftest import make_agent

    second = make_agent(test_root)
    second.start()
    try:
        assert second.cli("image", "import", busybox_tar).code == 0
        assert fresh_agent.cli("run", "-d", "--name", "same", "busybox:test", "sleep", "60").code == 0
        assert second.cli("run", "-d", "--name", "same", "busybox:test", "sleep", "60").code == 0
        assert "same" in fresh_agent.cli("ps").out and "same" in second.cli("ps").out
        assert second.cli("rm", "-f", "same").code == 0
        assert "same" in fresh_agent.cli("ps").out
    finally:
        second.destroy()


def test_supervisor_death_containers_survive_and_are_readopted(fresh_agent: AgentProcess) -> None:
    """DESIGN.md §2: if the supervisor dies its containers keep running; a new one adopts them by PID
    and start time. Exit statuses it could not collect are reported as unknown (255, as Docker does)."""
    agent = fresh_agent
    assert agent.cli("run", "-d", "--name", "steady", "busybox:test", "sleep", "300").code == 0
    assert agent.cli("run", "-d", "--name", "brief", "busybox:test", "sh", "-c", "sleep 1; exit 3").code == 0
    [steady] = agent.cli_json("inspect", "steady")  # type: ignore[misc]
    old_supervisor = agent.supervisor_pid()
    os.kill(old_supervisor, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if agent.supervisor_pid() != old_supervisor and agent.cli("exec", "steady", "true").code == 0:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    assert agent.supervisor_pid() != old_supervisor, "the agent did not start a new supervisor"
    [again] = agent.cli_json("inspect", "steady")  # type: ignore[misc]
    assert again["state"] == "CONTAINER_STATE_RUNNING" and again["pid"] == steady["pid"]
    time.sleep(1.0)
    [brief] = agent.cli_json("inspect", "brief")  # type: ignore[misc]
    assert brief["state"] == "CONTAINER_STATE_EXITED" and brief["exit_code"] == 255
    assert "exit status unknown" in brief["error"]
    assert agent.cli("stop", "-t", "1", "steady").code == 0
    [stopped] = agent.cli_json("inspect", "steady")  # type: ignore[misc]
    assert stopped["state"] == "CONTAINER_STATE_EXITED" and not alive(steady["pid"])


def alive(pid: int) -> bool:
    """False once the process is gone or a zombie (an adopted container is reaped by init, not by us)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_a_created_container_is_spawned_early_and_survives_an_agent_restart_or_removal(
        fresh_agent: AgentProcess) -> None:
    """The supervisor spawns a container's init at create (it sets itself up while the start is
    on its way): removed unstarted, the init goes; after an agent restart, start still works."""
    from shoal.agent.v1 import agent_pb2 as apb
    from shoal.agent.v1 import containers_pb2 as cpb

    agent = fresh_agent
    stub = agent.stub()
    supervisor = agent.supervisor_pid()
    spec = cpb.ContainerSpec(name="early", image="busybox:test", command=["echo", "started"])
    created = stub.CreateContainer(apb.CreateContainerRequest(spec=spec)).container
    assert len(container_inits(supervisor)) == 1  # waiting, set up, not yet exec'd
    stub.RemoveContainer(apb.RemoveContainerRequest(container=created.id))
    assert _wait_for(lambda: container_inits(supervisor) == [])
    stub.CreateContainer(apb.CreateContainerRequest(spec=spec))
    agent.kill_agent(signal.SIGKILL)
    agent.start()
    assert agent.cli("start", "early").code == 0
    deadline = time.monotonic() + 10
    while "started" not in agent.cli("logs", "early").out and time.monotonic() < deadline:
        time.sleep(0.05)
    assert agent.cli("logs", "early").out.strip() == "started"
    [finished] = agent.cli_json("inspect", "early")  # type: ignore[misc]
    assert finished["state"] == "CONTAINER_STATE_EXITED" and finished.get("exit_code", 0) == 0


def test_inits_are_cloned_ahead_and_copy_the_mounts_of_their_start(fresh_agent: AgentProcess, test_root: str) -> None:
    """Pooled inits wait with their namespaces made but the host's mounts: a volume on a filesystem
    mounted after they were cloned is still seen by the container that takes one."""
    agent = fresh_agent
    supervisor = agent.supervisor_pid()
    assert _wait_for(lambda: len(pooled_inits(supervisor)) == 2), children(supervisor)
    ready = set(pooled_inits(supervisor))
    volume = os.path.join(test_root, "late-volume")
    os.makedirs(volume)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "late", volume], check=True)
    try:
        with open(os.path.join(volume, "marker"), "w") as f:
            f.write("on the late tmpfs\n")
        result = agent.cli("run", "-d", "--name", "late", "-v", f"{volume}:/data:ro", "busybox:test",
                           "sh", "-c", "cat /data/marker; exec sleep 300")
        assert result.code == 0, result.err
        [late] = agent.cli_json("inspect", "late")  # type: ignore[misc]
        assert late["pid"] in ready, "the container did not take a pooled init"
        assert _wait_for(lambda: agent.cli("logs", "late").out == "on the late tmpfs\n")
        assert agent.cli("rm", "-f", "late").code == 0
    finally:
        subprocess.run(["umount", volume], check=True)
        os.rmdir(volume)
    assert _wait_for(lambda: len(pooled_inits(supervisor)) == 2), "the pool was not refilled"


def test_a_killed_pooled_init_or_supervisor_leaves_nothing(fresh_agent: AgentProcess) -> None:
    agent = fresh_agent
    supervisor = agent.supervisor_pid()
    assert _wait_for(lambda: len(pooled_inits(supervisor)) == 2)
    os.kill(pooled_inits(supervisor)[0], signal.SIGKILL)  # the supervisor reaps it; starts go on
    assert agent.cli("run", "--name", "after", "busybox:test", "true").code == 0
    assert agent.cli("run", "--name", "host", "--network", "host", "busybox:test", "true").code == 0
    zygote = [pid for pid in children(supervisor) if namespace(pid, "net") == namespace(supervisor, "net")]
    waiting = pooled_inits(supervisor)
    assert len(zygote) == 1 and waiting
    os.kill(supervisor, signal.SIGKILL)
    assert _wait_for(lambda: not any(alive(pid) for pid in zygote + waiting)), "they outlived the supervisor"
    assert _wait_for(lambda: agent.supervisor_pid() != supervisor
                     and agent.cli("run", "busybox:test", "true").code == 0)


def cgroups_of(pid: int) -> dict[str, str]:
    """Hierarchy (controllers, or "" for cgroup2) -> the process's cgroup path."""
    with open(f"/proc/{pid}/cgroup") as f:
        return {line.split(":", 2)[1]: line.split(":", 2)[2] for line in f.read().splitlines()}


def test_pooled_inits_wait_in_spare_cgroups_that_become_their_containers(fresh_agent: AgentProcess) -> None:
    """A pooled init waits in a cgroup of its own, which the create renames (no move at create,
    zygote.py says why); on a hybrid host its cgroup2 directory keeps the spare's name. A new
    supervisor finds that directory again, so an exec still joins every cgroup of the container."""
    agent = fresh_agent
    supervisor = agent.supervisor_pid()
    assert _wait_for(lambda: len(pooled_inits(supervisor)) == 2)
    waiting = {pid: cgroups_of(pid) for pid in pooled_inits(supervisor)}
    for paths in waiting.values():
        assert {os.path.basename(p) for p in paths.values() if p.startswith(f"/{agent.cgroup_parent}/")} \
            and all(os.path.basename(p).startswith("spare-") for p in paths.values()
                    if p.startswith(f"/{agent.cgroup_parent}/")), paths
    assert agent.cli("run", "-d", "--name", "placed", "--memory", "48Mi", "busybox:test", "sleep", "300").code == 0
    [placed] = agent.cli_json("inspect", "placed")  # type: ignore[misc]
    assert placed["pid"] in waiting, "the container did not take a pooled init"
    now = cgroups_of(placed["pid"])
    memory = next(path for hierarchy, path in now.items() if "memory" in hierarchy.split(","))
    assert memory == f"/{agent.cgroup_parent}/{placed['id']}"
    with open(f"/sys/fs/cgroup/memory{memory}/memory.limit_in_bytes") as f:
        assert int(f.read()) == 48 << 20
    if "" in now and os.path.isdir("/sys/fs/cgroup/unified"):  # hybrid: cgroup2 cannot rename
        assert now[""] == waiting[placed["pid"]][""]
    os.kill(supervisor, signal.SIGKILL)
    assert _wait_for(lambda: agent.supervisor_pid() != supervisor
                     and agent.cli("exec", "placed", "true").code == 0), "no exec after a supervisor restart"
    execing = subprocess.Popen([sys.executable, "-m", "cli.main", "--agent", agent.address, "exec", "placed",
                                "sleep", "31"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: bool(_processes_running("sleep 31")))
        [sleeper] = _processes_running("sleep 31")
        assert cgroups_of(sleeper) == now, "the exec'd process is not in every cgroup of the container"
    finally:
        assert agent.cli("rm", "-f", "placed").code == 0
        execing.wait(timeout=10)


def _processes_running(command: str) -> list[int]:
    """This exact command line, among all processes (the container's are in the host's view too)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline") as f:
                if entry.isdigit() and f.read().split("\0")[:-1] == command.split():
                    found.append(int(entry))
        except OSError:
            pass
    return found


def test_a_container_created_under_a_supervisor_that_died_still_starts(fresh_agent: AgentProcess) -> None:
    """A start sends only the container's id when its init was spawned at create; a new supervisor
    has no such init (it died with the old one), answers `unprepared`, and the agent sends the
    launch spec after all: the container starts, from a new init."""
    from shoal.agent.v1 import agent_pb2 as apb
    from shoal.agent.v1 import containers_pb2 as cpb

    agent = fresh_agent
    spec = cpb.ContainerSpec(name="orphaned", image="busybox:test", command=["echo", "started"])
    agent.stub().CreateContainer(apb.CreateContainerRequest(spec=spec))
    supervisor = agent.supervisor_pid()
    [waiting] = container_inits(supervisor)
    os.kill(supervisor, signal.SIGKILL)
    assert _wait_for(lambda: not alive(waiting)), "the spawned init outlived its supervisor"
    assert _wait_for(lambda: agent.supervisor_pid() != supervisor and agent.cli("ps").code == 0)
    started = agent.cli("start", "orphaned")
    assert started.code == 0, started.err
    assert _wait_for(lambda: agent.cli("logs", "orphaned").out == "started\n")
    [finished] = agent.cli_json("inspect", "orphaned")  # type: ignore[misc]
    assert finished["state"] == "CONTAINER_STATE_EXITED" and finished.get("exit_code", 0) == 0


def test_an_init_spawned_for_a_container_without_a_record_is_released_by_the_next_agent(
        fresh_agent: AgentProcess) -> None:
    """The create asks the supervisor for the init before it writes the container's record; if the
    agent dies between the two, the next agent releases the init and its cgroups at recovery, and
    removes the directory the create had made."""
    from shoal.agent.v1 import agent_pb2 as apb
    from shoal.agent.v1 import containers_pb2 as cpb

    agent = fresh_agent
    spec = cpb.ContainerSpec(name="unrecorded", image="busybox:test", command=["true"])
    created = agent.stub().CreateContainer(apb.CreateContainerRequest(spec=spec)).container
    supervisor = agent.supervisor_pid()
    [waiting] = container_inits(supervisor)
    agent.kill_agent(signal.SIGKILL)
    os.unlink(os.path.join(agent.state_dir, "containers", created.id, "container.json"))  # as if never written
    agent.start()
    assert _wait_for(lambda: not alive(waiting)), "the init of a container without a record was kept"
    assert agent.supervisor_pid() == supervisor
    assert _wait_for(lambda: not os.path.exists(f"/sys/fs/cgroup/memory/{agent.cgroup_parent}/{created.id}"))
    assert _wait_for(lambda: not os.path.exists(os.path.join(agent.state_dir, "containers", created.id)))
    assert _wait_for(lambda: not os.path.exists(os.path.join(agent.state_dir, "trash", created.id)))
    assert agent.cli("run", "--name", "unrecorded", "busybox:test", "true").code == 0


KERNEL_MOUNT_POINTS = ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys")


def kernel_mounts(agent: AgentProcess, *flags: str) -> dict[str, tuple[str, ...]]:
    """Mount point -> (mount options, filesystem type, source, superblock options), from inside a container."""
    result = agent.cli("run", "--rm", *flags, "busybox:test", "cat", "/proc/self/mountinfo")
    assert result.code == 0, result.err
    found = {}
    for line in result.out.splitlines():
        fields = line.split()
        if fields[4] in KERNEL_MOUNT_POINTS:
            tail = fields[fields.index("-") + 1:]
            found[fields[4]] = (fields[5], *tail)
    return found


def test_pooled_inits_mount_the_kernel_filesystems_ahead_exactly_as_a_cloned_init_mounts_them(
        fresh_agent: AgentProcess) -> None:
    """A pooled init makes /proc, /dev (with its nodes), /dev/pts, /dev/shm, /dev/mqueue and /sys
    while it waits, with the new mount API, and moves them into place after the pivot; a child
    cloned on the spot (host network) mounts them there. Both must give the same mounts."""
    agent = fresh_agent
    supervisor = agent.supervisor_pid()
    assert _wait_for(lambda: len(pooled_inits(supervisor)) == 2)
    pooled = set(pooled_inits(supervisor))
    assert agent.cli("run", "-d", "--name", "took", "busybox:test", "sleep", "300").code == 0
    [took] = agent.cli_json("inspect", "took")  # type: ignore[misc]
    assert took["pid"] in pooled
    devices = agent.cli("exec", "took", "ls", "-l", "/dev")
    assert devices.code == 0 and "1,   3" in devices.out and "ptmx -> pts/ptmx" in devices.out, devices.out
    assert agent.cli("rm", "-f", "took").code == 0
    assert _wait_for(lambda: len(pooled_inits(supervisor)) == 2)
    from_pool = kernel_mounts(agent)
    assert set(from_pool) == set(KERNEL_MOUNT_POINTS)
    assert from_pool == kernel_mounts(agent, "--network", "host")


def test_a_pooled_init_that_died_before_it_was_reaped_is_replaced_at_create(fresh_agent: AgentProcess) -> None:
    """A pooled init that dies while the supervisor is busy is still in its pool when the next create
    takes it: handing it the container fails, and the supervisor clones a child instead. The
    supervisor is stopped so that the inits' deaths and the create reach it in one turn of its loop
    (it reaps at the end of each turn)."""
    from shoal.agent.v1 import agent_pb2 as apb
    from shoal.agent.v1 import containers_pb2 as cpb

    from agent.supervisor import protocol

    agent = fresh_agent
    supervisor = agent.supervisor_pid()
    assert _wait_for(lambda: len(pooled_inits(supervisor)) == 2)
    pooled = pooled_inits(supervisor)
    spec = cpb.ContainerSpec(name="replaced", image="busybox:test", command=["echo", "ran"])
    with ThreadPoolExecutor(1) as background:
        # A request just before the stop: its loop then waits up to a second before it would
        # wake up by itself (and reap), longer than the stop lasts.
        protocol.call_blocking(os.path.join(agent.state_dir, "supervisor.sock"), {"op": "hello"})
        time.sleep(0.05)  # and the end of that connection
        os.kill(supervisor, signal.SIGSTOP)
        try:
            for pid in pooled:
                os.kill(pid, signal.SIGKILL)
            created = background.submit(agent.stub().CreateContainer, apb.CreateContainerRequest(spec=spec))
            time.sleep(0.2)
        finally:
            os.kill(supervisor, signal.SIGCONT)
        container = created.result(timeout=30).container
    assert container.pid == 0
    started = agent.cli("start", "replaced")
    assert started.code == 0, started.err
    assert _wait_for(lambda: agent.cli("logs", "replaced").out == "ran\n")


def test_a_start_the_agent_did_not_live_to_record_is_adopted_with_its_exit(fresh_agent: AgentProcess) -> None:
    """The supervisor starts a container and the agent dies before it records the start (here the
    start is sent to the supervisor while the agent is down): the next agent adopts the run, and
    learns its exit code, whether it ended before the agent came back or after."""
    from shoal.agent.v1 import agent_pb2 as apb
    from shoal.agent.v1 import containers_pb2 as cpb

    from agent.supervisor import protocol

    agent = fresh_agent
    stub = agent.stub()
    ids = {}
    for name, script in (("ended-unseen", "exit 4"), ("ends-later", "sleep 2; exit 5")):
        spec = cpb.ContainerSpec(name=name, image="busybox:test", command=["sh", "-c", script])
        ids[name] = stub.CreateContainer(apb.CreateContainerRequest(spec=spec)).container.id
    agent.kill_agent(signal.SIGKILL)
    supervisor = os.path.join(agent.state_dir, "supervisor.sock")
    for container_id in ids.values():
        reply, _ = protocol.call_blocking(supervisor, {"op": "start", "id": container_id})
        assert reply["ok"], reply
    exit_record = os.path.join(agent.state_dir, "containers", ids["ended-unseen"], "exit.json")
    assert _wait_for(lambda: os.path.exists(exit_record))
    agent.start()

    def inspected(name: str) -> dict:  # type: ignore[type-arg]
        [found] = agent.cli_json("inspect", name)  # type: ignore[misc]
        return found  # type: ignore[no-any-return]

    assert (inspected("ended-unseen")["state"], inspected("ended-unseen")["exit_code"]) == ("CONTAINER_STATE_EXITED", 4)
    assert inspected("ends-later")["state"] == "CONTAINER_STATE_RUNNING"
    assert _wait_for(lambda: inspected("ends-later")["state"] == "CONTAINER_STATE_EXITED")
    assert inspected("ends-later")["exit_code"] == 5


def test_requests_made_while_a_dead_supervisor_is_replaced_wait_for_the_new_one(fresh_agent: AgentProcess) -> None:
    """Until the agent has a new supervisor connected, a create waits for it instead of failing with
    UNAVAILABLE. A directory where the socket goes keeps each new supervisor from listening (it
    exits, and the agent tries again with backoff) until the test removes it."""
    from shoal.agent.v1 import agent_pb2 as apb
    from shoal.agent.v1 import containers_pb2 as cpb

    agent = fresh_agent
    supervisor = agent.supervisor_pid()
    socket_path = os.path.join(agent.state_dir, "supervisor.sock")
    os.unlink(socket_path)  # the running supervisor keeps its connection to the agent
    os.mkdir(socket_path)
    try:
        os.kill(supervisor, signal.SIGKILL)
        with ThreadPoolExecutor(1) as pool:
            spec = cpb.ContainerSpec(name="meanwhile", image="busybox:test", command=["true"])
            creating = pool.submit(agent.stub().CreateContainer, apb.CreateContainerRequest(spec=spec), timeout=20)
            time.sleep(1)
            assert not creating.done(), creating.exception()
            os.rmdir(socket_path)
            created = creating.result(timeout=20).container
    finally:
        if os.path.isdir(socket_path):
            os.rmdir(socket_path)
    agent.stub().StartContainer(apb.StartContainerRequest(container=created.id), timeout=20)
    assert agent.supervisor_pid() != supervisor
