"""cgroup limits take effect: memory (OOM kill reported), pids (fork bomb contained), CPU quota."""

from __future__ import annotations

import glob

from tests.integration.harness import AgentProcess


def test_memory_limit_oom_kill_is_reported(agent: AgentProcess) -> None:
    # busybox's `tail` buffers its whole input: /dev/zero has no newline, so it grows until killed.
    result = agent.cli("run", "--name", "oom", "--memory", "16Mi", "busybox:test", "sh", "-c",
                       "tail /dev/zero")
    assert result.code == 137
    [container] = agent.cli_json("inspect", "oom")  # type: ignore[misc]
    assert container["oom_killed"] is True
    assert "OOM killed" in agent.cli("ps", "-a").out
    assert agent.cli("rm", "oom").code == 0


def test_pids_limit_contains_a_fork_bomb(agent: AgentProcess) -> None:
    assert agent.cli("run", "-d", "--name", "bomb", "--pids", "20", "busybox:test", "sleep", "300").code == 0
    loop = "i=0; while [ $i -lt 100 ]; do sleep 60 >/dev/null 2>&1 & i=$((i+1)); done"
    bomb = agent.cli("exec", "bomb", "sh", "-c", loop)
    assert "fork" in bomb.err  # the kernel refused forks past the limit
    [stats] = agent.cli_json("stats", "bomb")  # type: ignore[misc]
    assert 15 <= int(stats["pids_current"]) <= 20 and int(stats["pids_limit"]) == 20
    assert agent.cli("rm", "-f", "bomb").code == 0


def test_cpu_quota_and_shares_are_applied(agent: AgentProcess) -> None:
    result = agent.cli("run", "-d", "--name", "cpu", "--cpus", "0.25", "--cpu-shares", "512", "busybox:test",
                       "sleep", "60")
    assert result.code == 0, result.err
    container_id = result.out.strip()
    quota = glob.glob(f"/sys/fs/cgroup/cpu*/{agent.cgroup_parent}/{container_id}/cpu.cfs_quota_us") + \
        glob.glob(f"/sys/fs/cgroup/{agent.cgroup_parent}/{container_id}/cpu.max")
    assert quota, "no cpu cgroup for the container"
    text = open(quota[0]).read()
    assert text.split()[0] == "25000"
    stats = agent.cli_json("stats", "cpu")
    assert stats[0]["name"] == "cpu" and int(stats[0]["pids_current"]) == 1  # type: ignore[index]
    assert agent.cli("rm", "-f", "cpu").code == 0


def test_memory_limit_is_visible_in_stats(agent: AgentProcess) -> None:
    assert agent.cli("run", "-d", "--name", "mem", "--memory", "32m", "busybox:test", "sleep", "60").code == 0
    [stats] = agent.cli_json("stats", "mem")  # type: ignore[misc]
    assert int(stats["memory_limit_bytes"]) == 32 << 20
    table = agent.cli("stats", "mem").out
    assert "32.0MiB" in table
    assert agent.cli("rm", "-f", "mem").code == 0
