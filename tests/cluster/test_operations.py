"""Day-to-day operations on a three-host cluster, all through the control plane: ps, logs and exec
proxied to the replicas' agents, run, image import into the nodes, and etcd dying under it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from cli.busybox_image import busybox_entries, layer_tar, write_oci_layout
from tests.cluster.conftest import Cluster
from tests.integration.harness import eventually

if os.geteuid() != 0:
    pytest.skip("the cluster level needs root", allow_module_level=True)

CHATTY = ("name: chatty\nimage: busybox:local\nreplicas: 3\n"
          "args: [sh, -c, 'echo hello from $(hostname); echo oops >&2; exec sleep 600']\n")


def test_ps_logs_and_exec_reach_replicas_on_every_host(cluster: Cluster) -> None:
    assert cluster.deploy(CHATTY).returncode == 0
    listed = cluster.json("ps")
    assert {r["node"] for r in listed if r["app"] == "chatty"} == {"h1", "h2", "h3"}
    table = cluster.ctl("ps").stdout
    assert table.startswith("REPLICA") and "AGE" in table and "chatty.2" in table

    def logs_complete() -> bool:
        return len(cluster.ctl("logs", "chatty").stdout.splitlines()) == 3

    eventually(logs_complete)
    logs = cluster.ctl("logs", "chatty")
    assert sorted(logs.stdout.splitlines()) == [f"chatty.{i} | hello from chatty-{i}" for i in range(3)]
    assert sorted(logs.stderr.splitlines()) == [f"chatty.{i} | oops" for i in range(3)]
    one = cluster.ctl("logs", "chatty.2", "--tail", "1")  # the last line of both streams: stderr's
    assert (one.returncode, one.stdout, one.stderr) == (0, "", "oops\n")

    ran = cluster.ctl("exec", "chatty.1", "sh", "-c", "hostname; echo to-stderr >&2; exit 7")
    assert (ran.returncode, ran.stdout, ran.stderr) == (7, "chatty-1\n", "to-stderr\n")
    piped = cluster.ctl("exec", "-i", "chatty", "cat", stdin="through the control plane\n")
    assert (piped.returncode, piped.stdout) == (0, "through the control plane\n")
    missing = cluster.ctl("exec", "chatty.5", "true")
    assert missing.returncode == 1 and "no such replica: chatty.5 (chatty has 3)" in missing.stderr
    not_found = cluster.ctl("exec", "chatty.0", "no-such-program")
    assert not_found.returncode == 127 and "no-such-program" in not_found.stderr

    follow = subprocess.Popen([sys.executable, "-m", "cli.main", "logs", "-f", "--tail", "0", "chatty"],
                              stdout=subprocess.PIPE, text=True, env=cluster.env)
    try:
        time.sleep(1)  # the follow streams are open on every agent
        assert cluster.ctl("exec", "chatty.0", "sh", "-c", "echo later > /proc/1/fd/1").returncode == 0
        assert follow.stdout is not None
        assert follow.stdout.readline() == "chatty.0 | later\n"
    finally:
        follow.terminate()
        follow.wait(timeout=10)
    assert cluster.ctl("delete", "chatty").returncode == 0


def test_run_attached_detached_and_removed(cluster: Cluster) -> None:
    once = cluster.ctl("run", "--rm", "--name", "once", "busybox:local", "sh", "-c", "echo hi; exit 3")
    assert (once.returncode, once.stdout) == (3, "hi\n"), once.stderr
    assert "once" not in [a["spec"]["name"] for a in cluster.json("get", "apps")]

    detached = cluster.ctl("run", "-d", "--name", "bg", "-e", "GREETING=hey", "busybox:local", "sleep", "600")
    assert (detached.returncode, detached.stdout) == (0, "bg.0\n")
    eventually(lambda: [r["state"] for r in cluster.json("ps") if r["app"] == "bg"] == ["running"])
    assert cluster.ctl("exec", "bg.0", "sh", "-c", "echo $GREETING").stdout == "hey\n"
    clash = cluster.ctl("run", "-d", "--name", "bg", "busybox:local", "true")
    assert clash.returncode == 2 and "bg already exists" in clash.stderr
    host_only = cluster.ctl("run", "-v", "/srv:/srv", "busybox:local", "true")
    assert host_only.returncode == 2 and "-v: not available for a cluster replica" in host_only.stderr
    assert cluster.ctl("delete", "bg").returncode == 0


def test_image_import_reaches_every_node_or_only_the_named_one(cluster: Cluster, tmp_path: object) -> None:
    archive = os.path.join(str(tmp_path), "shipped.tar")
    write_oci_layout(archive, [layer_tar(busybox_entries())], name="shipped:v1")
    only_h2 = cluster.ctl("image", "import", archive, "--node", "h2")
    assert only_h2.returncode == 0 and only_h2.stdout.startswith("h2: Loaded image ")
    assert "shipped:v1" in only_h2.stdout and "h1:" not in only_h2.stdout

    pinned = ("name: shipped\nimage: shipped:v1\npull_policy: never\nargs: [sleep, '600']\n"
              "placement: {constraints: ['node.name == h1']}\n")
    failed = cluster.deploy(pinned)
    assert failed.returncode == 1 and "shipped.0 cannot start" in failed.stderr and "shipped:v1" in failed.stderr

    everywhere = cluster.ctl("image", "import", archive)
    assert everywhere.returncode == 0
    assert [line.split(":")[0] for line in everywhere.stdout.splitlines()] == ["h1", "h2", "h3"]
    eventually(lambda: [r["state"] for r in cluster.json("ps") if r["app"] == "shipped"] == ["running"])

    with open(archive, "wb") as f:
        f.write(b"not an archive")
    broken = cluster.ctl("image", "import", archive)
    assert broken.returncode == 1 and broken.stderr.count("not a readable tar archive") == 3
    unknown = cluster.ctl("image", "import", archive, "--node", "h9")
    assert unknown.returncode == 1 and "no such node: h9" in unknown.stderr
    assert cluster.ctl("delete", "shipped").returncode == 0


def test_etcd_killed_under_the_cluster_is_restarted_and_nothing_is_lost(cluster: Cluster) -> None:
    app = "name: steady\nimage: busybox:local\nargs: [sleep, '600']\nreplicas: 2\n"
    assert cluster.deploy(app).returncode == 0
    before = {r["index"]: (r["node"], r["placed_at"]) for r in cluster.json("ps") if r["app"] == "steady"}
    pid_file = os.path.join(cluster.state, "controlplane", "etcd.pid")
    with open(pid_file) as f:
        etcd = int(f.read())
    os.kill(etcd, signal.SIGKILL)

    def restarted() -> bool:
        with open(pid_file) as f:
            return int(f.read()) != etcd

    eventually(restarted)
    eventually(lambda: cluster.ctl("nodes").returncode == 0
               and all(n["state"] == "ready" for n in cluster.json("nodes")))
    after = {r["index"]: (r["node"], r["placed_at"]) for r in cluster.json("ps") if r["app"] == "steady"}
    assert after == before  # the same placements, not new ones
    assert cluster.ctl("scale", "steady", "3").returncode == 0  # writes work again
    eventually(lambda: [r["state"] for r in cluster.json("ps") if r["app"] == "steady"] == ["running"] * 3)
    assert all(r["restarts"] == 0 for r in cluster.json("ps") if r["app"] == "steady")
    assert cluster.ctl("delete", "steady").returncode == 0


def _restart_like_before(cluster: Cluster, pid: int, record_update: Callable[[dict, int], None],  # type: ignore[type-arg]
                         namespace: str = "") -> int:
    """kill -9 a process that `up` started, then start it again with the same command line (as its
    service manager would; in its host's network namespace), and record the new pid so that `down`
    still ends it."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        command = [part.decode() for part in f.read().split(b"\0") if part]
    if namespace:
        command = ["nsenter", f"--net=/run/netns/{namespace}", "--", *command]
    log_path = os.readlink(f"/proc/{pid}/fd/1")
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2])
    with open(log_path, "ab") as log:
        fresh = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    record = cluster.record()
    record_update(record, fresh.pid)
    with open(os.path.join(cluster.state, "cluster.json"), "w") as f:
        json.dump(record, f)
    return fresh.pid


def _containers_on(cluster: Cluster, host: str) -> dict[str, tuple[str, str]]:
    agent = next(a for a in cluster.record()["agents"] if a["name"] == host)
    done = cluster.ctl("--agent", str(agent["address"]), "ps", "-o", "json")
    assert done.returncode == 0, done.stderr
    return {c["name"]: (c["id"], c["started_at"]) for c in json.loads(done.stdout)}


def test_control_plane_and_agent_killed_and_restarted_leave_containers_untouched(cluster: Cluster) -> None:
    app = "name: durable\nimage: busybox:local\nargs: [sleep, '600']\nreplicas: 3\n"
    assert cluster.deploy(app).returncode == 0
    before = {host: _containers_on(cluster, host) for host in ("h1", "h2", "h3")}
    assert sum(len(found) for found in before.values()) == 3

    def new_controlplane(record: dict, pid: int) -> None:  # type: ignore[type-arg]
        record["controlplane_pid"] = pid

    _restart_like_before(cluster, int(cluster.record()["controlplane_pid"]), new_controlplane)
    eventually(lambda: cluster.ctl("nodes").returncode == 0
               and all(n["state"] == "ready" for n in cluster.json("nodes")), timeout=30)
    assert {host: _containers_on(cluster, host) for host in ("h1", "h2", "h3")} == before

    h2 = next(a for a in cluster.record()["agents"] if a["name"] == "h2")

    def new_agent(record: dict, pid: int) -> None:  # type: ignore[type-arg]
        next(a for a in record["agents"] if a["name"] == "h2")["pid"] = pid

    _restart_like_before(cluster, int(h2["pid"]), new_agent, namespace=str(h2["namespace"]))
    eventually(lambda: cluster.ctl("--agent", str(h2["address"]), "ps").returncode == 0, timeout=30)
    assert _containers_on(cluster, "h2") == before["h2"]  # re-adopted: same containers, same start
    assert cluster.ctl("scale", "durable", "4").returncode == 0  # and the cluster still acts on h2
    eventually(lambda: [r["state"] for r in cluster.json("ps") if r["app"] == "durable"] == ["running"] * 4)
    assert {host: _containers_on(cluster, host) for host in ("h1", "h2", "h3")} != before
    for host, found in before.items():
        assert found.items() <= _containers_on(cluster, host).items()  # nothing restarted or replaced
    assert cluster.ctl("delete", "durable").returncode == 0
