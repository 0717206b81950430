"""The cluster level: three network-namespace hosts (`clusterctl up --hosts 3`), a real control plane
with its embedded etcd, real agents and containers. Needs root (namespaces, cgroups, veths)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.cluster.conftest import Cluster
from tests.integration.harness import eventually

if os.geteuid() != 0:
    pytest.skip("the cluster level needs root", allow_module_level=True)

GRACE = 5


def test_three_hosts_are_ready_with_their_labels(cluster: Cluster) -> None:
    nodes = {n["name"]: n for n in cluster.json("nodes")}
    assert sorted(nodes) == ["h1", "h2", "h3"] and all(n["state"] == "ready" for n in nodes.values())
    assert nodes["h2"]["labels"] == {"host": "h2", "zone": "z2"}


def test_spread_constraints_and_pending_then_placed(cluster: Cluster) -> None:
    web = "name: web\nimage: busybox:local\nargs: [sleep, '600']\nreplicas: 3\nresources: {memory: 16Mi}\n"
    assert cluster.deploy(web).returncode == 0
    assert sorted(cluster.placement("web").values()) == ["h1", "h2", "h3"]  # one per host
    pinned = ("name: pinned\nimage: busybox:local\nargs: [sleep, '600']\nreplicas: 2\n"
              "placement: {constraints: ['node.labels.zone == z2']}\n")
    assert cluster.deploy(pinned).returncode == 0
    assert set(cluster.placement("pinned").values()) == {"h2"}
    heavy = "name: heavy\nimage: busybox:local\nargs: [sleep, '600']\nresources: {cpus: 4}\n"
    waited = cluster.deploy(heavy, "--timeout", "3")
    assert waited.returncode == 3 and "3 insufficient cpu" in waited.stdout
    assert cluster.deploy(heavy.replace("cpus: 4", "cpus: 1")).returncode == 0  # fits now: placed
    for app in ("pinned", "heavy"):
        assert cluster.ctl("delete", app).returncode == 0


def test_partitioned_host_is_replaced_and_its_duplicates_stopped_when_it_returns(cluster: Cluster) -> None:
    h3 = next(a for a in cluster.record()["agents"] if a["name"] == "h3")
    before = cluster.placement("web")
    os.kill(int(h3["pid"]), signal.SIGSTOP)  # heartbeats stop; its containers keep running
    began = time.monotonic()
    try:
        eventually(lambda: sorted(cluster.placement("web").values()).count("h3") == 0
                   and len(cluster.placement("web")) == 3)
        assert time.monotonic() - began < GRACE + 5
        assert {n["name"]: n["state"] for n in cluster.json("nodes")}["h3"] == "down"
    finally:
        os.kill(int(h3["pid"]), signal.SIGCONT)
    socket = str(h3["address"])

    def h3_containers() -> int:
        done = cluster.ctl("--agent", socket, "ps", "-a", "-o", "json")
        return len(json.loads(done.stdout)) if done.returncode == 0 else -1

    eventually(lambda: h3_containers() == 0)  # back: its replaced replica is stopped, no duplicate
    eventually(lambda: {n["name"]: n["state"] for n in cluster.json("nodes")}["h3"] == "ready")
    assert len(cluster.placement("web")) == 3 and before


def test_killed_host_replicas_are_replaced(cluster: Cluster) -> None:
    victim = "name: victim\nimage: busybox:local\nargs: [sleep, '600']\nreplicas: 3\n"
    assert cluster.deploy(victim).returncode == 0
    assert sorted(cluster.placement("victim").values()) == ["h1", "h2", "h3"]  # three ready hosts: one each
    h1 = next(a for a in cluster.record()["agents"] if a["name"] == "h1")
    with open(os.path.join(str(h1["state_dir"]), "supervisor.pid")) as f:
        supervisor = int(f.read())
    began = time.monotonic()
    os.kill(int(h1["pid"]), signal.SIGKILL)
    os.kill(supervisor, signal.SIGKILL)
    eventually(lambda: "h1" not in cluster.placement("victim").values() and len(cluster.placement("victim")) == 3)
    assert time.monotonic() - began < GRACE + 5
