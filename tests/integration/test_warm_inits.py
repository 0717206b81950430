"""Pooled inits waiting inside the last image's root (agent/supervisor/warm.py): served, passed over, discarded."""

from __future__ import annotations

import os
import signal

from shoal.agent.v1 import agent_pb2 as apb
from shoal.agent.v1 import containers_pb2 as cpb

from cli.busybox_image import Entry, busybox_entries, layer_tar, write_oci_layout
from tests.integration.harness import AgentProcess, container_inits, pooled_inits, warm_inits
from tests.integration.test_lifecycle import wait_for


def run(agent: AgentProcess, name: str, image: str, *command: str,
        mounts: tuple[cpb.Mount, ...] = ()) -> tuple[cpb.Container, int, bytes]:
    """Create, start, wait for the exit; returns the exited container (kept), its init's pid and its output."""
    stub = agent.stub()
    spec = cpb.ContainerSpec(name=name, image=image, command=list(command), mounts=list(mounts))
    created = stub.CreateContainer(apb.CreateContainerRequest(spec=spec)).container
    pid = stub.StartContainer(apb.StartContainerRequest(container=created.id)).container.pid
    exited = stub.WaitContainer(apb.WaitContainerRequest(container=created.id)).container
    output = b"".join(e.data for r in stub.ContainerLogs(apb.ContainerLogsRequest(container=created.id, tail=-1))
                      for e in r.entries)
    return exited, pid, output


def warmed(agent: AgentProcess) -> set[int]:
    """Waits until both pooled inits wait in an image's root; returns their pids."""
    supervisor = agent.supervisor_pid()
    wait_for(lambda: len(warm_inits(supervisor)) == 2 and set(pooled_inits(supervisor)) == warm_inits(supervisor))
    return warm_inits(supervisor)


def test_a_create_of_the_last_image_gets_an_init_waiting_in_its_root(fresh_agent: AgentProcess) -> None:
    agent = fresh_agent
    run(agent, "first", "busybox:test", "true")  # the pool now warms for busybox:test
    waiting = warmed(agent)
    exited, pid, output = run(agent, "served", "busybox:test", "sh", "-c",
                              "echo kept > /kept; cat /etc/hostname; cat /proc/timer_list | wc -c; "
                              "grep -c shoal-oldroot /proc/self/mountinfo; touch /etc/hostname && echo bound")
    assert exited.exit_code == 0 and pid in waiting  # one of the warm inits became the container
    # its hostname, /proc/timer_list masked, no old root left, its /etc files bound
    assert output.decode().split("\n")[:4] == [exited.id[:12], "0", "0", "bound"]
    upper = os.path.join(agent.state_dir, "containers", exited.id, "upper")
    with open(os.path.join(upper, "kept")) as f:
        assert f.read() == "kept\n"  # its writable layer is the container's own
    assert not os.path.exists(os.path.join(agent.state_dir, "warm", str(pid)))
    for name in ("first", "served"):
        agent.stub().RemoveContainer(apb.RemoveContainerRequest(container=name))


def test_another_image_discards_the_warm_inits_and_a_volume_passes_them_over(fresh_agent: AgentProcess,
                                                                               tmp_path: os.PathLike[str]) -> None:
    agent = fresh_agent
    archive = os.path.join(tmp_path, "other.tar")
    write_oci_layout(archive, [layer_tar(busybox_entries()), layer_tar([Entry("other", b"yes\n")])], name="other:v1")
    assert agent.cli("image", "import", archive).code == 0
    run(agent, "first", "busybox:test", "true")
    waiting = warmed(agent)
    volume = os.path.join(tmp_path, "volume")
    os.mkdir(volume)
    with open(os.path.join(volume, "data"), "w") as f:
        f.write("from the host\n")
    _, pid, output = run(agent, "with-volume", "busybox:test", "cat", "/v/data",
                         mounts=(cpb.Mount(source=volume, destination="/v", read_only=True),))
    assert output == b"from the host\n" and pid not in waiting
    assert warm_inits(agent.supervisor_pid()) == waiting  # a container with a volume is not theirs
    _, pid, output = run(agent, "other", "other:v1", "cat", "/other")
    assert output == b"yes\n" and pid not in waiting
    assert not waiting & warm_inits(agent.supervisor_pid())  # discarded: the pool warms for other:v1 now
    assert not waiting & set(container_inits(agent.supervisor_pid()))
    for pid in waiting:
        assert not os.path.exists(os.path.join(agent.state_dir, "warm", str(pid)))
    for name in ("first", "with-volume", "other"):
        agent.stub().RemoveContainer(apb.RemoveContainerRequest(container=name))


def test_an_image_imported_again_is_not_served_from_the_old_root(fresh_agent: AgentProcess,
                                                                 busybox_tar: str) -> None:
    """Its layers are unpacked anew (new inodes): the init waiting in the removed ones is passed over."""
    agent = fresh_agent
    run(agent, "first", "busybox:test", "true")
    agent.stub().RemoveContainer(apb.RemoveContainerRequest(container="first"))
    waiting = warmed(agent)
    assert agent.cli("image", "rm", "busybox:test").code == 0
    assert agent.cli("image", "import", busybox_tar).code == 0
    exited, pid, output = run(agent, "again", "busybox:test", "sh", "-c", "echo fine")
    assert (exited.exit_code, output) == (0, b"fine\n") and pid not in waiting
    wait_for(lambda: not waiting & set(pooled_inits(agent.supervisor_pid())))  # discarded, not kept forever
    agent.stub().RemoveContainer(apb.RemoveContainerRequest(container="again"))


def test_a_killed_supervisor_leaves_spare_layers_that_the_next_one_sweeps(fresh_agent: AgentProcess) -> None:
    agent = fresh_agent
    run(agent, "first", "busybox:test", "true")
    warmed(agent)
    spares = os.path.join(agent.state_dir, "warm")
    left = set(os.listdir(spares))
    assert len(left) == 2
    supervisor = agent.supervisor_pid()
    os.kill(supervisor, signal.SIGKILL)  # its pooled inits die with it; their spare layers stay
    wait_for(lambda: agent.supervisor_pid() != supervisor)
    _, _, output = run(agent, "after", "busybox:test", "echo", "ok")
    assert output == b"ok\n"
    assert not left & set(os.listdir(spares))  # swept by the new supervisor
    for name in ("first", "after"):
        agent.stub().RemoveContainer(apb.RemoveContainerRequest(container=name))
