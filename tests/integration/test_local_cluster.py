"""`clusterctl up` / `down`: a local cluster from nothing, an example app deployed on it, nothing left after."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

from cli.local import bridge_name, cgroup_parent
from tests.integration.conftest import SESSION_BRIDGES, SESSION_CGROUPS
from tests.integration.harness import ENV, ROOT

BIN = os.path.dirname(sys.executable)


def clusterctl(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_up_deploy_down(test_root: str) -> None:
    state = os.path.join(test_root, "up")
    SESSION_CGROUPS.add(cgroup_parent(state))
    SESSION_BRIDGES.add(bridge_name(state))
    env = {**ENV, "SHOAL_CONFIG": os.path.join(test_root, "up-config.yaml"), "PATH": f"{BIN}:{ENV['PATH']}"}
    env.pop("SHOAL_SERVER", None)
    try:
        up = clusterctl(env, "up", "--state-dir", state)
        assert up.returncode == 0, up.stderr + open(os.path.join(state, "controlplane.log")).read()[-2000:]
        assert "1 node(s) ready" in up.stdout and os.path.exists(env["SHOAL_CONFIG"])
        again = clusterctl(env, "up", "--state-dir", state)
        assert again.returncode == 1 and "already runs" in again.stderr
        deploy = clusterctl(env, "deploy", "-f", os.path.join(ROOT, "examples", "apps.yaml"))
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        containers = clusterctl(env, "get", "containers").stdout
        assert containers.count("running") == 6  # web x3, worker x2, greeter
        names = clusterctl(env, "exec", "worker.0", "nslookup", "web")
        assert names.returncode == 0 and names.stdout.count("Address: 10.244.") == 3, names.stdout + names.stderr
        with urllib.request.urlopen("http://10.244.0.1:8080/", timeout=10) as page:  # the bridge: a host address
            assert page.read().startswith(b"Hello from greeter-0")
    finally:
        down = clusterctl(env, "down", "--state-dir", state)
    assert down.returncode == 0, down.stderr
    assert not os.path.exists(state) and not os.path.exists(env["SHOAL_CONFIG"])
    assert not os.path.exists(f"/sys/class/net/{bridge_name(state)}")
    assert bridge_name(state) not in subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
