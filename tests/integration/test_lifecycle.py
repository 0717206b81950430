"""create/start/stop/kill/rm, exit codes, logs, exec, restart policies, metrics."""

from __future__ import annotations

import json
import time
import urllib.request

from tests.integration.harness import AgentProcess


def wait_for(predicate: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def state(agent: AgentProcess, name: str) -> dict:  # type: ignore[type-arg]
    [container] = agent.cli_json("inspect", name)  # type: ignore[misc]
    return container  # type: ignore[no-any-return]


def test_attached_run_streams_output_and_returns_exit_code(agent: AgentProcess) -> None:
    result = agent.cli("run", "--rm", "busybox:test", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.code, result.out, result.err) == (3, "out\n", "err\n")
    assert agent.cli("ps", "-a", "-o", "json").out.strip() == "[]"


def test_detached_lifecycle_and_names(agent: AgentProcess) -> None:
    result = agent.cli("run", "-d", "--name", "web", "busybox:test", "sleep", "300")
    assert result.code == 0 and len(result.out.strip()) == 64
    assert "web" in agent.cli("ps").out
    assert agent.cli("kill", "-s", "TERM", "web").code == 0  # PID 1 ignores TERM it has no handler for
    time.sleep(0.2)
    assert state(agent, "web")["state"] == "CONTAINER_STATE_RUNNING"
    begun = time.monotonic()
    assert agent.cli("stop", "-t", "1", "web").code == 0
    assert 0.9 < time.monotonic() - begun < 10
    stopped = state(agent, "web")
    assert stopped["state"] == "CONTAINER_STATE_EXITED" and stopped["exit_code"] == 137
    assert "web" not in agent.cli("ps").out and "web" in agent.cli("ps", "-a").out
    assert agent.cli("start", "web").code == 0
    assert state(agent, "web")["state"] == "CONTAINER_STATE_RUNNING"
    assert agent.cli("kill", "web").code == 0
    wait_for(lambda: state(agent, "web")["state"] == "CONTAINER_STATE_EXITED")
    assert agent.cli("rm", "web").code == 0
    assert agent.cli("inspect", "web").code == 1


def test_stop_sends_term_first(agent: AgentProcess) -> None:
    assert agent.cli("run", "-d", "--name", "polite", "busybox:test", "sh", "-c",
                     "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done").code == 0
    time.sleep(0.3)
    assert agent.cli("stop", "polite").code == 0
    assert state(agent, "polite")["exit_code"] == 0
    assert agent.cli("logs", "polite").out == "bye\n"
    agent.cli("rm", "polite")


def test_logs_tail_timestamps_follow(agent: AgentProcess) -> None:
    assert agent.cli("run", "--name", "talker", "busybox:test", "sh", "-c",
                     "for i in 1 2 3 4 5; do echo line$i; done").code == 0
    assert agent.cli("logs", "talker").out.split() == [f"line{i}" for i in range(1, 6)]
    assert agent.cli("logs", "--tail", "2", "talker").out.split() == ["line4", "line5"]
    stamped = agent.cli("logs", "-t", "--tail", "1", "talker").out
    assert stamped.startswith("20") and stamped.rstrip().endswith("Z line5")
    agent.cli("rm", "talker")
    assert agent.cli("run", "-d", "--name", "ticker", "busybox:test", "sh", "-c",
                     "for i in 1 2 3; do echo tick$i; sleep 0.3; done").code == 0
    followed = agent.cli("logs", "-f", "ticker")
    assert followed.out.split() == ["tick1", "tick2", "tick3"]
    agent.cli("rm", "ticker")


def test_logs_rotate_by_size(agent: AgentProcess) -> None:
    # The test agent rotates at 64 KiB and keeps 2 files: 4,000 lines of 100 bytes overflow both.
    assert agent.cli("run", "--name", "chatty", "busybox:test", "sh", "-c",
                     "i=0; while [ $i -lt 4000 ]; do printf '%099d\\n' $i; i=$((i+1)); done").code == 0
    lines = agent.cli("logs", "chatty").out.split()
    assert 200 < len(lines) < 4000
    assert int(lines[-1]) == 3999
    assert [int(x) for x in lines] == list(range(int(lines[0]), 4000))
    agent.cli("rm", "chatty")


def test_exec_without_and_with_tty(agent: AgentProcess) -> None:
    assert agent.cli("run", "-d", "--name", "box", "-e", "FROM_SPEC=1", "busybox:test", "sleep", "300").code == 0
    result = agent.cli("exec", "box", "sh", "-c", "echo $FROM_SPEC; cat /proc/1/cmdline | tr '\\0' ' '; exit 5")
    assert result.code == 5
    assert result.out.split() == ["1", "sleep", "300"]
    piped = agent.cli("exec", "-i", "box", "sh", "-c", "tr a-z A-Z", stdin=b"shout\n")
    assert piped.out == "SHOUT\n"
    tty = agent.cli("exec", "-t", "box", "sh", "-c", "tty; echo $TERM")
    assert tty.code == 0 and tty.out.replace("\r", "").split() == ["/dev/pts/0", "xterm"]
    missing = agent.cli("exec", "box", "no-such-command")
    assert missing.code == 127 and "not found" in missing.err
    agent.cli("rm", "-f", "box")


def test_restart_on_failure_with_max_retries(agent: AgentProcess) -> None:
    assert agent.cli("run", "-d", "--name", "flaky", "--restart", "on-failure:3", "busybox:test", "sh", "-c",
                     "echo attempt; exit 2").code == 0
    wait_for(lambda: state(agent, "flaky")["state"] == "CONTAINER_STATE_EXITED" and
             state(agent, "flaky").get("restart_count") == 3)
    assert agent.cli("logs", "flaky").out.split() == ["attempt"] * 4
    agent.cli("rm", "flaky")


def test_restart_always_until_stopped(agent: AgentProcess) -> None:
    assert agent.cli("run", "-d", "--name", "phoenix", "--restart", "always", "busybox:test", "sh", "-c",
                     "sleep 0.1").code == 0
    wait_for(lambda: state(agent, "phoenix").get("restart_count", 0) >= 2)
    assert agent.cli("stop", "-t", "1", "phoenix").code == 0
    stopped = state(agent, "phoenix")["restart_count"]
    time.sleep(0.8)
    after = state(agent, "phoenix")
    assert after["state"] == "CONTAINER_STATE_EXITED" and after["restart_count"] == stopped
    agent.cli("rm", "phoenix")


def test_restart_on_failure_does_not_restart_success(agent: AgentProcess) -> None:
    assert agent.cli("run", "-d", "--name", "done", "--restart", "on-failure", "busybox:test", "true").code == 0
    wait_for(lambda: state(agent, "done")["state"] == "CONTAINER_STATE_EXITED")
    time.sleep(0.3)
    assert state(agent, "done").get("restart_count", 0) == 0
    agent.cli("rm", "done")


def test_metrics_endpoint(agent: AgentProcess) -> None:
    assert agent.cli("run", "-d", "--name", "measured", "busybox:test", "sleep", "60").code == 0
    body = urllib.request.urlopen(f"http://127.0.0.1:{agent.metrics_port}/metrics", timeout=5).read().decode()
    assert 'shoal_container_cpu_seconds_total{id="' in body
    assert 'name="measured"' in body
    assert "shoal_container_start_duration_seconds_bucket" in body
    assert 'shoal_containers{state="running"}' in body
    agent.cli("rm", "-f", "measured")


def test_json_and_yaml_output(agent: AgentProcess) -> None:
    assert agent.cli("run", "-d", "--name", "fmt", "busybox:test", "sleep", "60").code == 0
    listed = json.loads(agent.cli("-o", "json", "ps").out)
    assert listed[0]["name"] == "fmt"
    assert "name: fmt" in agent.cli("ps", "-o", "yaml").out
    agent.cli("rm", "-f", "fmt")
