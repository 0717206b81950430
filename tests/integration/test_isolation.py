"""What a process sees from inside a Shoal container."""

from __future__ import annotations

import os

from tests.integration.harness import AgentProcess


def run(agent: AgentProcess, *args: str) -> str:
    result = agent.cli("run", "--rm", *args)
    assert result.code == 0, result.err
    return result.out


def test_pid_1_and_no_host_processes(agent: AgentProcess) -> None:
    out = run(agent, "busybox:test", "sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'")
    pid, count = out.split()
    assert pid == "1"
    assert int(count) <= 3  # sh, ls, grep: nothing of the host


def test_hostname_defaults_to_short_id_and_can_be_set(agent: AgentProcess) -> None:
    assert run(agent, "--hostname", "web-1", "busybox:test", "hostname").strip() == "web-1"
    assert "127.0.1.1\tweb-1" in run(agent, "--hostname", "web-1", "--network", "none", "busybox:test", "cat",
                                     "/etc/hosts")
    assert len(run(agent, "busybox:test", "hostname").strip()) == 12


def test_capabilities_are_dockers_default_set(agent: AgentProcess) -> None:
    status = run(agent, "busybox:test", "cat", "/proc/self/status")
    caps = {line.split(":")[0]: int(line.split()[1], 16) for line in status.splitlines() if line.startswith("Cap")}
    assert caps["CapEff"] == caps["CapBnd"] == 0xA80425FB
    assert caps["CapAmb"] == 0
    assert "NoNewPrivs:\t1" in status


def test_non_root_user_has_no_capabilities(agent: AgentProcess) -> None:
    out = run(agent, "--user", "nobody", "busybox:test", "sh", "-c", "id -u; id -g; grep CapEff /proc/self/status")
    uid, gid, caps = out.splitlines()
    assert (uid, gid) == ("65534", "65534")
    assert caps.split()[1] == "0000000000000000"


def test_mount_is_refused_and_proc_paths_are_masked(agent: AgentProcess) -> None:
    result = agent.cli("run", "--rm", "busybox:test", "sh", "-c",
                       "mount -t tmpfs none /mnt 2>&1; echo mount=$?; cat /proc/keys | wc -c; "
                       "ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/panic 2>&1; echo sys=$?")
    assert "mount=1" in result.out or "mount=255" in result.out
    lines = result.out.split()
    assert "0" in lines  # /proc/keys reads as empty
    assert "sys=1" in result.out  # /proc/sys is read-only


def test_own_network_namespace_has_only_loopback_up(agent: AgentProcess) -> None:
    out = run(agent, "--network", "none", "busybox:test", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]
    assert "UP" in out or "LOOPBACK,UP" in out
    host = run(agent, "--network", "host", "busybox:test", "ip", "-o", "link")
    assert len(host.splitlines()) >= len(open("/proc/net/dev").read().splitlines()) - 2


def test_cgroup_namespace_hides_the_host_hierarchy(agent: AgentProcess) -> None:
    out = run(agent, "busybox:test", "cat", "/proc/self/cgroup")
    assert all(line.endswith(":/") for line in out.splitlines())


def test_dev_is_minimal(agent: AgentProcess) -> None:
    out = run(agent, "busybox:test", "ls", "/dev")
    assert set(out.split()) >= {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm"}
    assert "sda" not in out and "vda" not in out


def test_device_cgroup_allows_only_the_basic_devices(agent: AgentProcess) -> None:
    """Docker's rules: any device node may be made (CAP_MKNOD), but only the basic ones opened. The
    rules sit on the agent's parent cgroup, and each container's cgroup starts with a copy."""
    out = run(agent, "busybox:test", "sh", "-c",
              "mknod /tmp/loop b 7 0 && mknod /tmp/null c 1 3 && head -c1 /tmp/null && echo null-ok; "
              "head -c1 /tmp/loop 2>&1; echo loop=$?")
    assert "null-ok" in out and "Operation not permitted" in out and "loop=1" in out


def test_env_workdir_and_user_from_image_passwd(agent: AgentProcess) -> None:
    out = run(agent, "-e", "GREETING=hi", "-w", "/srv/app", "-u", "nobody:root", "busybox:test", "sh", "-c",
              "echo $GREETING; pwd; id -u; id -g; echo $HOME")
    assert out.split() == ["hi", "/srv/app", "65534", "0", "/nonexistent"]


def test_volumes_read_write_and_read_only(agent: AgentProcess, tmp_path: object) -> None:
    host = os.path.join(str(tmp_path), "data")
    os.makedirs(host)
    with open(os.path.join(host, "in.txt"), "w") as f:
        f.write("from host\n")
    out = run(agent, "-v", f"{host}:/data", "busybox:test", "sh", "-c", "cat /data/in.txt; echo out > /data/out.txt")
    assert out == "from host\n"
    assert open(os.path.join(host, "out.txt")).read() == "out\n"
    result = agent.cli("run", "--rm", "-v", f"{host}:/data:ro", "busybox:test", "sh", "-c", "echo x > /data/x")
    assert result.code != 0 and "Read-only" in result.err


def test_writes_stay_in_the_container_layer(agent: AgentProcess) -> None:
    run(agent, "busybox:test", "sh", "-c", "echo changed > /etc/passwd")
    assert "root:x:0:0" in run(agent, "busybox:test", "cat", "/etc/passwd")
