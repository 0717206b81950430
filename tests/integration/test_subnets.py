"""Node subnets against a real control plane and etcd: distinct, kept, freed by `node rm`, exhausted
with a clear error, and the cluster CIDR fixed at the first start."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest
from shoal.controlplane.v1 import node_service_pb2 as npb
from shoal.controlplane.v1 import node_service_pb2_grpc

from tests.integration.harness import ENV, free_port

if os.geteuid() != 0:
    pytest.skip("the integration level needs root", allow_module_level=True)


class Plane:
    def __init__(self, state: str, *flags: str) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.state = state
        self.ports = f"{free_port()},{free_port()}"
        self.flags = flags
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *flags: str) -> subprocess.Popen[bytes]:
        os.makedirs(self.state, exist_ok=True)
        with open(os.path.join(self.state, "controlplane.log"), "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "controlplane.main", "--state-dir", self.state, "--listen", self.address,
                 "--embedded-etcd-ports", self.ports, "--metrics-listen", "off", *self.flags, *flags],
                stdout=log, stderr=subprocess.PIPE, env=ENV)
        return self.process

    def nodes(self) -> node_service_pb2_grpc.NodesStub:
        channel = grpc.insecure_channel(self.address)
        grpc.channel_ready_future(channel).result(timeout=30)
        return node_service_pb2_grpc.NodesStub(channel)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


def register(nodes: node_service_pb2_grpc.NodesStub, node_id: str) -> str:
    reply = nodes.RegisterNode(npb.RegisterNodeRequest(node_id=node_id, name=node_id, cpu_millis=1000,
                                                       memory_bytes=1 << 30))
    return str(reply.subnet)


def test_subnets_are_distinct_kept_freed_and_run_out(test_root: str) -> None:
    plane = Plane(os.path.join(test_root, f"subnets-{free_port()}"), "--cluster-cidr", "10.77.0.0/23",
                  "--node-subnet-prefix", "24", "--node-grace", "1")
    plane.start()
    try:
        nodes = plane.nodes()
        first, second = register(nodes, "n1"), register(nodes, "n2")
        assert {first, second} == {"10.77.0.0/24", "10.77.1.0/24"}
        assert register(nodes, "n1") == first  # the same at every registration
        with pytest.raises(grpc.RpcError) as full:
            register(nodes, "n3")
        assert full.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "no free /24 subnet left in the cluster CIDR 10.77.0.0/23" in (full.value.details() or "")
        with pytest.raises(grpc.RpcError) as ready:
            nodes.RemoveNode(npb.RemoveNodeRequest(node="n2"))
        assert ready.value.code() is grpc.StatusCode.FAILED_PRECONDITION and "is ready" in (ready.value.details() or "")
        nodes.RemoveNode(npb.RemoveNodeRequest(node="n2", force=True))
        assert [n.name for n in nodes.ListNodes(npb.ListNodesRequest()).nodes] == ["n1"]
        assert register(nodes, "n3") == second  # n2's subnet was given back
        assert {n.name: n.subnet for n in nodes.ListNodes(npb.ListNodesRequest()).nodes} == {"n1": first, "n3": second}
    finally:
        plane.stop()
    refused = plane.start("--cluster-cidr", "10.88.0.0/16")  # the cluster's network cannot change
    try:
        assert refused.wait(timeout=30) == 2
        assert refused.stderr is not None
        message = refused.stderr.read().decode()
        assert ("this cluster's network is 10.77.0.0/23 in /24 node subnets with host-gw routing, not 10.88.0.0/16"
                in message)
    finally:
        plane.stop()
    plane.start()  # with its own CIDR again: the subnets survived the restart
    try:
        nodes = plane.nodes()
        assert register(nodes, "n1") == first and register(nodes, "n3") == second
    finally:
        plane.stop()
