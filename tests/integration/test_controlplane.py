"""shoal-controlplane as a process with its embedded etcd. Here the test plays the agents through
the real Nodes API (containers on real agents come with the agent side of issue #3)."""

from __future__ import annotations

import shutil
import threading
import time

import grpc
import pytest
from shoal.controlplane.v1 import app_service_pb2 as apb
from shoal.controlplane.v1 import app_service_pb2_grpc, apps_pb2, node_service_pb2_grpc
from shoal.controlplane.v1 import node_service_pb2 as npb

from tests.integration.conftest import ControlPlane
from tests.integration.harness import eventually

if shutil.which("etcd") is None:
    pytest.skip("etcd is not installed (apt-get install etcd-server)", allow_module_level=True)

GRACE = 3


class FakeAgentHeartbeats:
    """Heartbeats for registered nodes, stoppable one by one (as if the host died)."""

    def __init__(self, nodes: node_service_pb2_grpc.NodesStub) -> None:
        self.nodes = nodes
        self.leases: dict[str, int] = {}
        self.stopped: set[str] = set()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def register(self, node_id: str, **labels: str) -> None:
        reply = self.nodes.RegisterNode(npb.RegisterNodeRequest(
            node_id=node_id, name=node_id, address="127.0.0.1:1", cpu_millis=2000, memory_bytes=1 << 30,
            labels=labels), timeout=5)
        self.leases[node_id] = reply.lease

    def _run(self) -> None:
        while not self.done.wait(0.5):
            for node_id, lease in list(self.leases.items()):
                if node_id not in self.stopped:
                    self.nodes.Heartbeat(npb.HeartbeatRequest(node_id=node_id, lease=lease), timeout=5)



def test_apply_schedule_heal_scale_delete(controlplane: ControlPlane) -> None:
    nodes = node_service_pb2_grpc.NodesStub(controlplane.channel)
    apps = app_service_pb2_grpc.AppsStub(controlplane.channel)
    agents = FakeAgentHeartbeats(nodes)
    try:
        for name, zone in (("n1", "a"), ("n2", "a"), ("n3", "b")):
            agents.register(name, zone=zone)
        web = apps_pb2.AppSpec(name="web", image="busybox:local", replicas=3,
                               resources=apps_pb2.AppResources(cpu_millis=500, memory_bytes=64 << 20),
                               placement=apps_pb2.AppPlacement(spread="node"))
        changes = apps.ApplyApps(apb.ApplyAppsRequest(apps=[web], dry_run=True)).changes
        assert changes[0].kind == apb.AppChange.KIND_CREATE and not apps.ListApps(apb.ListAppsRequest()).apps
        assert apps.ApplyApps(apb.ApplyAppsRequest(apps=[web])).changes[0].kind == apb.AppChange.KIND_CREATE
        assert apps.ApplyApps(apb.ApplyAppsRequest(apps=[web])).changes[0].kind == apb.AppChange.KIND_NO_OP

        def placed(app: str = "web") -> int:
            return next((a.placed for a in apps.ListApps(apb.ListAppsRequest()).apps if a.spec.name == app), -1)

        eventually(lambda: placed() == 3)
        listing = {n.name: n for n in nodes.ListNodes(npb.ListNodesRequest()).nodes}
        assert [listing[n].replicas for n in ("n1", "n2", "n3")] == [1, 1, 1]  # spread over nodes
        assert listing["n1"].allocated_cpu_millis == 500 and listing["n1"].state == "ready"

        # Too big for any node: pending, with the reason per node.
        big = apps_pb2.AppSpec(name="big", image="busybox:local", replicas=1,
                               resources=apps_pb2.AppResources(cpu_millis=4000))
        apps.ApplyApps(apb.ApplyAppsRequest(apps=[big]))
        eventually(lambda: "3 insufficient cpu" in next(a.pending_reason for a in apps.ListApps(
            apb.ListAppsRequest()).apps if a.spec.name == "big"))

        # Cordon n3, stop n1's heartbeats: n1's replica moves, never onto n3.
        nodes.SetSchedulable(npb.SetSchedulableRequest(node="n3", schedulable=False))
        agents.stopped.add("n1")
        began = time.monotonic()
        eventually(lambda: {n.name: n.state for n in nodes.ListNodes(npb.ListNodesRequest()).nodes}["n1"] == "down")
        eventually(lambda: placed() == 3 and {n.name: n.replicas for n in nodes.ListNodes(
            npb.ListNodesRequest()).nodes}["n1"] == 0)
        assert time.monotonic() - began < GRACE + 5
        counts = {n.name: n.replicas for n in nodes.ListNodes(npb.ListNodesRequest()).nodes}
        assert counts == {"n1": 0, "n2": 2, "n3": 1}  # n3 keeps what it had, takes nothing new

        # The leader's metrics reflect the cluster (refreshed after every evaluation).
        import urllib.request

        def metrics() -> str:
            url = f"http://127.0.0.1:{controlplane.metrics_port}/metrics"
            return urllib.request.urlopen(url, timeout=5).read().decode()

        eventually(lambda: 'shoal_nodes{state="down"} 1.0' in metrics())
        body = metrics()
        for line in ("shoal_controlplane_leader 1.0", 'shoal_app_replicas_desired{app="web"} 3.0',
                     'shoal_app_replicas_placed{app="web"} 3.0', "shoal_evaluation_duration_seconds_count",
                     "shoal_placements_total", 'shoal_etcd_request_duration_seconds_count{operation="txn"}'):
            assert line in body, line

        # Scale down, then delete.
        assert apps.ScaleApp(apb.ScaleAppRequest(name="web", replicas=1)).change.kind == apb.AppChange.KIND_SCALE
        eventually(lambda: sum(n.replicas for n in nodes.ListNodes(npb.ListNodesRequest()).nodes) == 1)
        apps.DeleteApp(apb.DeleteAppRequest(name="web"))
        eventually(lambda: sum(n.replicas for n in nodes.ListNodes(npb.ListNodesRequest()).nodes) == 0)
        with pytest.raises(grpc.RpcError) as missing:
            apps.DeleteApp(apb.DeleteAppRequest(name="web"))
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
        with pytest.raises(grpc.RpcError) as invalid:
            apps.ApplyApps(apb.ApplyAppsRequest(apps=[apps_pb2.AppSpec(name="Bad_Name", image="x")]))
        assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert "apps[0] (Bad_Name): name" in invalid.value.details()  # type: ignore[attr-defined]
    finally:
        agents.done.set()
