"""`clusterctl up` / `down`: a whole Shoal cluster on this machine, offline.

up starts a control plane (with its embedded etcd) and one agent on this host, imports a busybox
image made on the spot from the host's busybox-static into every agent, writes the CLI
configuration, and returns once every node is ready. Everything lives under one state directory
(`cluster.json` records the processes and ports), so `down` can remove exactly what `up` made.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

import grpc
from shoal.agent.v1 import agent_pb2 as apb
from shoal.controlplane.v1 import app_service_pb2, app_service_pb2_grpc, image_service_pb2_grpc, node_service_pb2_grpc
from shoal.controlplane.v1 import image_service_pb2 as ipb
from shoal.controlplane.v1 import node_service_pb2 as npb

from cli import hosts as hostnet
from cli.busybox_image import busybox_entries, layer_tar, write_oci_layout
from cli.client import CliError, agent_stub
from cli.config import config_path
from cli.images import file_chunks

IMAGE = "busybox:local"
READY_TIMEOUT = 60.0
AGENT_PORT = 7421  # in a namespace host (each has its own ports)


@dataclass
class LocalCluster:
    """What `up` started, as recorded in STATE/cluster.json."""

    state_dir: str
    server: str
    controlplane_pid: int = 0
    agents: list[dict[str, str | int]] = field(default_factory=list)
    network: dict[str, object] | None = None  # the hosts' bridge and namespaces (up --hosts N)

    @property
    def record(self) -> str:
        return os.path.join(self.state_dir, "cluster.json")

    def save(self) -> None:
        with open(self.record, "w") as f:
            json.dump(asdict(self), f, indent=1)

    @classmethod
    def load(cls, state_dir: str) -> LocalCluster | None:
        try:
            with open(os.path.join(state_dir, "cluster.json")) as f:
                return cls(**json.load(f))
        except FileNotFoundError:
            return None


def cgroup_parent(state_dir: str) -> str:
    return "shoal-up-" + hostnet.state_tag(state_dir, 8)


def bridge_name(state_dir: str) -> str:
    """The bridge of a single-host local cluster's agent: not `shoal0`, which a real agent on this
    host may own (namespace hosts each have their own `shoal0`)."""
    return "shup" + hostnet.state_tag(state_dir, 8)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _program(name: str) -> str:
    beside = os.path.join(os.path.dirname(sys.executable), name)
    found = beside if os.path.exists(beside) else shutil.which(name)
    if not found:
        raise CliError(f"{name} is not installed next to clusterctl (run scripts/install)")
    return found


def _spawn(command: list[str], log_path: str) -> int:
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    return process.pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def up(state_dir: str, hosts: int = 0, node_grace: int = 5, routing: str = "host-gw") -> LocalCluster:
    """hosts = 0: one agent on this host; N: N agents, each in its own network-namespace host."""
    existing = LocalCluster.load(state_dir)
    if existing is not None and _alive(existing.controlplane_pid):
        raise CliError(f"a local cluster already runs from {state_dir}: "
                       f"`clusterctl down --state-dir {state_dir}` first")
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    network = hostnet.create(state_dir, hosts) if hosts else None
    cluster = LocalCluster(state_dir=state_dir, server=f"{network.gateway if network else '127.0.0.1'}:{_free_port()}",
                           network=asdict(network) if network else None)
    cluster.save()
    try:
        cluster.controlplane_pid = _spawn(
            [_program("shoal-controlplane"), "--state-dir", os.path.join(state_dir, "controlplane"),
             "--listen", cluster.server, "--embedded-etcd-ports", f"{_free_port()},{_free_port()}",
             "--node-grace", str(node_grace), "--metrics-listen", f"127.0.0.1:{_free_port()}",
             "--network-routing", routing],
            os.path.join(state_dir, "controlplane.log"))
        cluster.save()
        for index in range(1, hosts + 1) if network else [0]:
            cluster.agents.append(_start_agent(cluster, index, network))
            cluster.save()
        _wait_ready(cluster)
        _import_image(cluster)
    except BaseException:
        down(state_dir, quiet=True)
        raise
    _write_config(cluster.server)
    return cluster


def _start_agent(cluster: LocalCluster, index: int, network: hostnet.HostNetwork | None) -> dict[str, str | int]:
    name = f"h{index}" if network else socket.gethostname()
    agent_dir = os.path.join(cluster.state_dir, "hosts", name) if network else os.path.join(cluster.state_dir, "agent")
    os.makedirs(agent_dir, mode=0o700, exist_ok=True)
    # The TCP listener is what the control plane proxies logs, exec and image imports to.
    api = f"{network.addresses[index - 1]}:{AGENT_PORT}" if network else f"127.0.0.1:{_free_port()}"
    command = [_program("shoal-agent"), "--state-dir", agent_dir, "--server", cluster.server,
               "--listen", f"unix://{agent_dir}/agent.sock", "--listen", api,
               "--cgroup-parent", cgroup_parent(cluster.state_dir) + (f"-{name}" if network else ""),
               "--metrics-listen", f"127.0.0.1:{_free_port()}"]
    if not network:
        command += ["--bridge", bridge_name(cluster.state_dir)]
    if network:
        # nsenter joins the host's network namespace only; `ip netns exec` would also mount a fresh
        # sysfs over /sys, hiding the cgroup hierarchies from the agent.
        command = ["nsenter", f"--net=/run/netns/{network.namespaces[index - 1]}", "--", *command,
                   "--node-name", name,
                   "--label", f"host={name}", "--label", f"zone=z{(index - 1) % 3 + 1}"]
    pid = _spawn(command, os.path.join(cluster.state_dir, f"agent-{name}.log"))
    return {"name": name, "state_dir": agent_dir, "address": f"unix://{agent_dir}/agent.sock", "pid": pid,
            "namespace": network.namespaces[index - 1] if network else ""}


def _wait_ready(cluster: LocalCluster) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    nodes = node_service_pb2_grpc.NodesStub(grpc.insecure_channel(cluster.server))
    while time.monotonic() < deadline:
        if not _alive(cluster.controlplane_pid):
            raise CliError(f"the control plane exited: see {cluster.state_dir}/controlplane.log")
        with contextlib.suppress(grpc.RpcError):
            listed = nodes.ListNodes(npb.ListNodesRequest(), timeout=2).nodes
            if len([n for n in listed if n.state == "ready"]) >= len(cluster.agents):
                return
        time.sleep(0.2)
    raise CliError(f"the nodes did not become ready within {READY_TIMEOUT:.0f}s: see the logs in {cluster.state_dir}")


def _import_image(cluster: LocalCluster) -> None:
    """Through the control plane, as `clusterctl image import` does: into every ready node at once."""
    with tempfile.TemporaryDirectory(prefix="shoal-up-") as scratch:
        archive = os.path.join(scratch, "busybox.tar")
        write_oci_layout(archive, [layer_tar(busybox_entries())], name=IMAGE)
        header = ipb.ClusterImportRequest(header=ipb.ClusterImportHeader(filename="busybox.tar"))
        chunks = (ipb.ClusterImportRequest(chunk=chunk) for chunk in file_chunks(archive))
        reply = image_service_pb2_grpc.ImagesStub(grpc.insecure_channel(cluster.server)).ImportImage(
            itertools.chain([header], chunks), timeout=60)
        failed = [f"{node.node}: {node.error}" for node in reply.nodes if node.error]
        if failed or len(reply.nodes) < len(cluster.agents):
            raise CliError(f"loading {IMAGE} into the nodes failed: {'; '.join(failed) or 'not every node'}")


def _write_config(server: str) -> None:
    path = config_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(f"# written by clusterctl up\nserver: {server}\n")


def _supervisor(state_dir: str, op: str, **fields: object) -> dict[str, object]:
    """One request in the runtime supervisor's protocol (agent/supervisor/protocol.py): length-prefixed
    JSON on its unix socket. `down` uses it for what the stopped agent can no longer do."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(os.path.join(state_dir, "supervisor.sock"))
        body = json.dumps({"op": op, "req": 1, **fields}).encode()
        sock.sendall(struct.pack(">I", len(body)) + body)
        buffer = b""
        while len(buffer) < 4 or len(buffer) < 4 + struct.unpack(">I", buffer[:4])[0]:
            data = sock.recv(65536)
            if not data:
                raise OSError("the supervisor closed the connection")
            buffer += data
        reply: dict[str, object] = json.loads(buffer[4:4 + struct.unpack(">I", buffer[:4])[0]])
        return reply


def _empty_supervisor(state_dir: str) -> None:
    """Kills what still runs, releases the cgroups, and lets the supervisor exit."""
    with contextlib.suppress(OSError):
        running = _supervisor(state_dir, "status").get("containers")
        for container_id in running if isinstance(running, dict) else {}:
            _supervisor(state_dir, "signal", id=container_id, signal=int(signal.SIGKILL))
        deadline = time.monotonic() + 10
        while _supervisor(state_dir, "status").get("containers") and time.monotonic() < deadline:
            time.sleep(0.05)
        for container_id in os.listdir(os.path.join(state_dir, "containers")):
            _supervisor(state_dir, "release", id=container_id)
        _supervisor(state_dir, "shutdown")


def _stop(pid: int, timeout: float = 15.0) -> None:
    if not pid or not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def down(state_dir: str, quiet: bool = False) -> None:
    cluster = LocalCluster.load(state_dir)
    if cluster is None:
        if quiet:
            return
        raise CliError(f"no local cluster in {state_dir}")
    _delete_apps(cluster)  # the agents then stop their containers themselves
    for agent in cluster.agents:
        _stop(int(agent["pid"]))
        supervisor_pid = 0
        with contextlib.suppress(FileNotFoundError, ValueError), \
                open(os.path.join(str(agent["state_dir"]), "supervisor.pid")) as f:
            supervisor_pid = int(f.read())
        _empty_supervisor(str(agent["state_dir"]))
        deadline = time.monotonic() + 10
        while supervisor_pid and _alive(supervisor_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    for parent in {cgroup_parent(state_dir) + (f"-{a['name']}" if cluster.network else "") for a in cluster.agents}:
        _remove_cgroups(parent)
    bridge = bridge_name(state_dir)
    if not cluster.network and os.path.exists(f"/sys/class/net/{bridge}"):  # the agent was stopped by force
        for agent in cluster.agents:
            subprocess.run([_program("shoal-agent"), "--state-dir", str(agent["state_dir"]), "--bridge", bridge,
                            "--remove-network"], capture_output=True)
    _stop(cluster.controlplane_pid)
    if cluster.network:
        hostnet.delete(hostnet.HostNetwork(**cluster.network))  # type: ignore[arg-type]
    shutil.rmtree(state_dir, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError), open(config_path()) as f:
        if cluster.server in f.read():
            os.unlink(config_path())


def _remove_cgroups(parent: str, root: str = "/sys/fs/cgroup") -> None:
    """Last resort for a host whose supervisor is gone (as when a host was killed): kill what is left
    in the agent's cgroups and remove them, in every hierarchy."""
    for hierarchy in os.listdir(root):
        top = os.path.join(root, hierarchy, parent)
        if os.path.islink(os.path.join(root, hierarchy)) or not os.path.isdir(top):
            continue
        for directory, _, _ in sorted(os.walk(top), key=lambda entry: -entry[0].count("/")):
            for _ in range(100):
                with contextlib.suppress(OSError), open(os.path.join(directory, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def _delete_apps(cluster: LocalCluster) -> None:
    apps = app_service_pb2_grpc.AppsStub(grpc.insecure_channel(cluster.server))
    with contextlib.suppress(grpc.RpcError):
        for app in apps.ListApps(app_service_pb2.ListAppsRequest(), timeout=5).apps:
            apps.DeleteApp(app_service_pb2.DeleteAppRequest(name=app.spec.name), timeout=5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(not agent_stub(str(a["address"])).ListContainers(apb.ListContainersRequest(all=True),
                                                                      timeout=5).containers
                   for a in cluster.agents):
                return
            time.sleep(0.2)
