"""clusterctl's cluster commands against a control plane and a real agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.integration.conftest import ControlPlane
from tests.integration.harness import ENV, AgentProcess, CliResult, eventually
from tests.integration.test_cluster_member import member  # noqa: F401  (the fixture)

APP = """\
name: web
image: busybox:test
args: [sleep, "300"]
replicas: 2
resources: {memory: 32Mi}
"""


def clusterctl(server: str, *args: str, timeout: float = 60) -> CliResult:
    done = subprocess.run([sys.executable, "-m", "cli.main", "--server", server, *args], capture_output=True,
                          timeout=timeout, env=ENV)
    return CliResult(done.returncode, done.stdout.decode(), done.stderr.decode())



def test_deploy_get_nodes_drain_scale_delete(member: AgentProcess, controlplane: ControlPlane,  # noqa: F811
                                             tmp_path: object) -> None:
    server = controlplane.address
    app_file = os.path.join(str(tmp_path), "app.yaml")
    with open(app_file, "w") as f:
        f.write(APP)
    eventually(lambda: "ready" in clusterctl(server, "nodes").out)

    preview = clusterctl(server, "deploy", "-f", app_file, "--dry-run")
    assert preview.code == 0 and preview.out == "+ web (create)\n"
    assert "web" not in clusterctl(server, "get", "apps").out

    deployed = clusterctl(server, "deploy", "-f", app_file)
    assert deployed.code == 0, deployed.err
    assert deployed.out.startswith("+ web (create)\n") and "web: 2/2 running" in deployed.out
    again = clusterctl(server, "deploy", "-f", app_file)
    assert again.code == 0 and again.out == "= web (no change)\n"

    apps = json.loads(clusterctl(server, "get", "apps", "-o", "json").out)
    assert apps[0]["running"] == 2 and apps[0]["spec"]["name"] == "web"
    replicas = clusterctl(server, "get", "containers", "web").out
    assert "web.0" in replicas and "web.1" in replicas and "running" in replicas
    node_name = json.loads(clusterctl(server, "nodes", "-o", "json").out)[0]["name"]

    # Draining the only node: replicas go away and stay pending, saying why; uncordon brings them back.
    assert clusterctl(server, "drain", node_name).code == 0
    eventually(lambda: json.loads(clusterctl(server, "get", "apps", "-o", "json").out)[0]["running"] == 0)
    assert "1 node cordoned" in clusterctl(server, "get", "apps").out
    eventually(lambda: member.cli_json("ps") == [])
    assert "cordoned" in clusterctl(server, "nodes").out
    assert clusterctl(server, "uncordon", node_name).code == 0
    eventually(lambda: json.loads(clusterctl(server, "get", "apps", "-o", "json").out)[0]["running"] == 2)

    assert clusterctl(server, "scale", "web", "1").code == 0
    eventually(lambda: len(member.cli_json("ps")) == 1)  # type: ignore[arg-type]
    described = clusterctl(server, "describe", "web").out
    assert "Replicas:   1 running, 1 placed, 1 desired" in described
    for event in ("placed web.0 on", "node drained, placing it again", "pending: no node fits: 1 node cordoned",
                  "stopped web.1 on", "not wanted (scaled down or deleted)"):
        assert event in described, (event, described)
    assert clusterctl(server, "delete", "web").code == 0
    eventually(lambda: member.cli_json("ps", "-a") == [])
    missing = clusterctl(server, "delete", "web")
    assert missing.code == 1 and "no such app: web" in missing.err


def test_deploy_exit_codes(member: AgentProcess, controlplane: ControlPlane, tmp_path: object) -> None:  # noqa: F811
    server = controlplane.address
    eventually(lambda: "ready" in clusterctl(server, "nodes").out)
    bad = os.path.join(str(tmp_path), "bad.yaml")
    with open(bad, "w") as f:
        f.write("name: web\nimage: x\nreplica: 2\n")
    result = clusterctl(server, "deploy", "-f", bad)
    assert result.code == 2 and "bad.yaml: document 1 (web): replica: unknown field" in result.err
    invalid = os.path.join(str(tmp_path), "invalid.yaml")
    with open(invalid, "w") as f:
        f.write("name: Web\nimage: x\n")
    result = clusterctl(server, "deploy", "-f", invalid)
    assert result.code == 2 and "invalid.yaml: apps[0] (Web): name" in result.err
    ghost = os.path.join(str(tmp_path), "ghost.yaml")
    with open(ghost, "w") as f:
        f.write("name: ghost\nimage: no-such-image:1\npull_policy: never\n")  # offline: no Docker Hub
    result = clusterctl(server, "deploy", "-f", ghost, "--timeout", "30")
    assert result.code == 1 and "ghost.0 cannot start" in result.err and "not found" in result.err
    assert clusterctl(server, "delete", "ghost").code == 0
    huge = os.path.join(str(tmp_path), "huge.yaml")
    with open(huge, "w") as f:
        f.write("name: huge\nimage: busybox:test\nresources: {cpus: 512}\n")
    result = clusterctl(server, "deploy", "-f", huge, "--timeout", "3")
    assert result.code == 3 and "timed out" in result.err and "insufficient cpu" in result.out
    assert clusterctl(server, "delete", "huge").code == 0


def test_no_server_configured(tmp_path: object) -> None:
    env = {**ENV, "SHOAL_CONFIG": os.path.join(str(tmp_path), "missing.yaml")}
    env.pop("SHOAL_SERVER", None)
    done = subprocess.run([sys.executable, "-m", "cli.main", "nodes"], capture_output=True, env=env, timeout=30)
    assert done.returncode == 2 and b"no control plane configured" in done.stderr
