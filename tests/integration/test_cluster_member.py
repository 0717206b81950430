"""A real agent joins a real control plane (`shoal-agent --server`) and runs what it is assigned:
apps are deployed, scaled, updated and deleted through the Apps API, and containers follow."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from shoal.controlplane.v1 import app_service_pb2 as apb
from shoal.controlplane.v1 import app_service_pb2_grpc, apps_pb2, node_service_pb2_grpc
from shoal.controlplane.v1 import node_service_pb2 as npb

from tests.integration.conftest import ControlPlane, make_agent
from tests.integration.harness import AgentProcess, eventually


@pytest.fixture
def member(test_root: str, busybox_tar: str, controlplane: ControlPlane) -> Iterator[AgentProcess]:
    agent = make_agent(test_root)
    agent.server = controlplane.address
    agent.start()
    try:
        assert agent.cli("image", "import", busybox_tar).code == 0
        yield agent
    finally:
        agent.destroy()


def running(agent: AgentProcess) -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["name"]: c for c in agent.cli_json("ps")}  # type: ignore[union-attr]


def test_deploy_scale_update_delete_follow_on_the_agent(member: AgentProcess, controlplane: ControlPlane) -> None:
    apps = app_service_pb2_grpc.AppsStub(controlplane.channel)
    nodes = node_service_pb2_grpc.NodesStub(controlplane.channel)
    eventually(lambda: [n.state for n in nodes.ListNodes(npb.ListNodesRequest()).nodes] == ["ready"])
    [node] = nodes.ListNodes(npb.ListNodesRequest()).nodes
    assert node.labels == {"zone": "test"} and node.cpu_millis >= 1000

    web = apps_pb2.AppSpec(name="web", image="busybox:test", args=["sleep", "300"], replicas=2,
                           resources=apps_pb2.AppResources(memory_bytes=32 << 20),
                           restart=apps_pb2.AppRestartPolicy(kind=apps_pb2.AppRestartPolicy.KIND_ALWAYS))
    apps.ApplyApps(apb.ApplyAppsRequest(apps=[web]))

    def status() -> apb.AppStatus:
        return apps.ListApps(apb.ListAppsRequest()).apps[0]

    eventually(lambda: set(running(member)) == {"web.0", "web.1"} and status().running == 2)
    first = running(member)["web.0"]
    assert first["spec"]["labels"]["shoal.app"] == "web" and first["spec"]["hostname"] == "web-0"

    apps.ScaleApp(apb.ScaleAppRequest(name="web", replicas=1))
    eventually(lambda: set(running(member)) == {"web.0"})
    assert running(member)["web.0"]["id"] == first["id"]  # scaling replaced nothing

    web.args[:] = ["sleep", "301"]
    web.replicas = 1
    assert apps.ApplyApps(apb.ApplyAppsRequest(apps=[web])).changes[0].kind == apb.AppChange.KIND_UPDATE
    eventually(lambda: running(member).get("web.0", {}).get("argv") == ["sleep", "301"])
    updated = running(member)["web.0"]
    assert updated["id"] != first["id"]

    # The agent dies and comes back: its container is re-adopted, not duplicated.
    member.kill_agent(signal.SIGKILL)
    member.start()
    time.sleep(2.0)
    assert list(running(member)) == ["web.0"] and running(member)["web.0"]["id"] == updated["id"]

    apps.DeleteApp(apb.DeleteAppRequest(name="web"))
    eventually(lambda: member.cli_json("ps", "-a") == [])


def test_control_plane_restart_leaves_containers_untouched(test_root: str, busybox_tar: str) -> None:
    """kill -9 of the control plane (its embedded etcd is left running), then a restart on the same
    state: the leftover etcd is replaced, the agent reconnects, and its containers never stop."""
    import os
    import subprocess
    import sys

    import grpc

    from tests.integration.harness import ENV, free_port

    state = os.path.join(test_root, f"cp-restart-{free_port()}")
    os.makedirs(state)
    address, ports = f"127.0.0.1:{free_port()}", f"{free_port()},{free_port()}"
    command = [sys.executable, "-m", "controlplane.main", "--state-dir", state, "--listen", address,
               "--embedded-etcd-ports", ports, "--node-grace", "5", "--metrics-listen", f"127.0.0.1:{free_port()}"]

    def start() -> subprocess.Popen[bytes]:
        with open(os.path.join(state, "controlplane.log"), "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=log, env=ENV)
        grpc.channel_ready_future(grpc.insecure_channel(address)).result(timeout=30)
        return process

    controlplane = start()
    agent = make_agent(test_root)
    agent.server = address
    agent.start()
    try:
        assert agent.cli("image", "import", busybox_tar).code == 0
        apps = app_service_pb2_grpc.AppsStub(grpc.insecure_channel(address))
        apps.ApplyApps(apb.ApplyAppsRequest(apps=[apps_pb2.AppSpec(name="steady", image="busybox:test",
                                                                   args=["sleep", "300"], replicas=2)]))
        eventually(lambda: len(running(agent)) == 2)
        before = {name: c["id"] for name, c in running(agent).items()}
        controlplane.kill()
        controlplane.wait()
        time.sleep(1.0)
        assert {name: c["id"] for name, c in running(agent).items()} == before  # no control plane: still running
        controlplane = start()
        eventually(lambda: apps.ListApps(apb.ListAppsRequest()).apps[0].running == 2)
        time.sleep(1.5)
        assert {name: c["id"] for name, c in running(agent).items()} == before  # untouched throughout
        apps.DeleteApp(apb.DeleteAppRequest(name="steady"))
        eventually(lambda: agent.cli_json("ps", "-a") == [])
    finally:
        agent.destroy()
        controlplane.terminate()
        controlplane.wait(timeout=20)
