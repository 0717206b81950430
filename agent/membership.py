"""Cluster membership: the agent dials out to the control plane (`shoal-agent --server ADDR`).

It registers its node (a stable id kept in the state dir, capacity, labels), heartbeats, watches
the replicas assigned to its node and makes its containers match them, and reports their status
in batches. Containers it runs for the cluster are named `<app>.<index>` and carry the labels
shoal.app, shoal.index and shoal.version. While the control plane is unreachable nothing is
stopped: containers keep running, and the agent reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from shoal.controlplane.v1 import apps_pb2, assignment_service_pb2_grpc, network_service_pb2_grpc, node_service_pb2_grpc
from shoal.controlplane.v1 import assignment_service_pb2 as apb
from shoal.controlplane.v1 import network_service_pb2 as netpb
from shoal.controlplane.v1 import node_service_pb2 as npb

from agent.containers.model import ContainerSpec, NetworkMode, Resources, RestartKind, RestartPolicy, State
from agent.containers.service import ContainerService
from agent.errors import NotFound, ShoalError
from agent.images.service import ImageService
from agent.network.manager import NetworkManager
from agent.network.plan import Peer, PortMapping

log = logging.getLogger(__name__)
RESTARTS = {apps_pb2.AppRestartPolicy.KIND_NO: RestartKind.NO,
            apps_pb2.AppRestartPolicy.KIND_ON_FAILURE: RestartKind.ON_FAILURE,
            apps_pb2.AppRestartPolicy.KIND_ALWAYS: RestartKind.ALWAYS}
RECONCILE_EVERY = 2.0
REPORT_EVERY = 1.0  # status is also sent right after each reconcile; this catches exits and restarts
REPORT_BATCH = 0.05  # changes this close together go in one report
START_CONCURRENCY = 4
PROGRESS_EVERY = 0.5  # seconds between status reports of a pull's progress
MIB = 1 << 20  # containers started at once: their mounts and execs overlap in the kernel
BACKOFF = (0.2, 2.0)
START_BACKOFF = (1.0, 60.0)  # a replica that cannot start is retried after 1 s, 2 s, 4 s... at most 60 s
NETWORKS = {"": NetworkMode.BRIDGE, "bridge": NetworkMode.BRIDGE, "host": NetworkMode.HOST, "none": NetworkMode.NONE}
Key = tuple[str, int]


@dataclass(frozen=True, slots=True)
class StartFailure:
    """Why a replica could not start, and when to try again: after its backoff, at once when the
    image store changed (the missing image was imported), or when a new version is assigned."""

    error: str
    version: str
    attempts: int
    retry_at: float
    images: int  # the image store's generation at the failure

    def due(self, version: str, images: int, now: float) -> bool:
        return version != self.version or images != self.images or now >= self.retry_at


def node_id(state_dir: str) -> str:
    path = os.path.join(state_dir, "node-id")
    with contextlib.suppress(FileNotFoundError), open(path) as f:
        return f.read().strip()
    identity = secrets.token_hex(8)
    with open(path, "w") as f:
        f.write(identity + "\n")
    return identity


def capacity() -> tuple[int, int]:
    with open("/proc/meminfo") as f:
        memory = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemTotal:"))
    return (os.cpu_count() or 1) * 1000, memory


def node_ip(configured: str, advertise: str, server: str) -> str:
    """This node's address for the other nodes: --node-ip, else the advertised address when it is
    an IP, else the local address the kernel would use to reach the control plane."""
    if configured:
        return configured
    host = advertise.rpartition(":")[0].strip("[]")
    with contextlib.suppress(ValueError):
        return str(ipaddress.IPv4Address(host))
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        target = server.rpartition(":")[0].strip("[]")
        probe.connect((target, 9))  # UDP: no packet is sent, only the route is looked up
        return str(probe.getsockname()[0])
    return ""


def container_spec(assignment: apb.Assignment) -> ContainerSpec:
    spec = assignment.spec
    return ContainerSpec(
        name=f"{assignment.app}.{assignment.index}", image=spec.image, entrypoint=tuple(spec.command),
        command=tuple(spec.args), env=tuple(f"{k}={v}" for k, v in sorted(spec.env.items())),
        hostname=f"{assignment.app}-{assignment.index}",
        resources=Resources(memory_bytes=spec.resources.memory_bytes, cpu_millis=spec.resources.cpu_millis,
                            pids_limit=spec.resources.pids_limit),
        restart_policy=RestartPolicy(kind=RESTARTS[spec.restart.kind], max_retries=spec.restart.max_retries),
        network=NETWORKS[spec.network],
        ports=tuple(PortMapping(host_port=p.host_port, container_port=p.container_port, protocol=p.protocol or "tcp")
                    for p in spec.ports),
        labels={**spec.labels, "shoal.app": assignment.app, "shoal.index": str(assignment.index),
                "shoal.version": assignment.version})


class ClusterMember:
    def __init__(self, *, server: str, state_dir: str, name: str, advertise: str, labels: dict[str, str],
                 containers: ContainerService, images: ImageService, network: NetworkManager,
                 configured_ip: str = "") -> None:
        self.server = server
        self.network = network
        self.node_ip = node_ip(configured_ip, advertise, server)
        self.node_id = node_id(state_dir)
        self.name = name or socket.gethostname()
        self.advertise = advertise
        self.labels = labels
        self.containers = containers
        self.desired: dict[Key, apb.Assignment] = {}
        self.failures: dict[Key, StartFailure] = {}
        self.images = images
        self.pulls: dict[str, asyncio.Task[Any]] = {}  # image -> its pull, running in the background
        self.pulled: set[tuple[Key, str]] = set()  # (replica, version) freshly pulled for (pull_policy always)
        self.pull_progress: dict[str, tuple[int, int]] = {}  # image -> (bytes downloaded, bytes in all)
        self._dirty = asyncio.Event()
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        delay = BACKOFF[0]
        reconciler = asyncio.get_running_loop().create_task(self._reconcile_loop())
        try:
            while True:
                try:
                    await self._session()
                except (grpc.aio.AioRpcError, ConnectionError) as e:
                    detail = e.details() if isinstance(e, grpc.aio.AioRpcError) else str(e)
                    log.warning("control plane %s: %s; retrying in %.1fs (containers keep running)",
                                self.server, detail, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF[1])
        finally:
            reconciler.cancel()

    async def _session(self) -> None:
        channel = grpc.aio.insecure_channel(self.server, options=[("grpc.keepalive_time_ms", 10_000)])
        tasks: list[asyncio.Task[None]] = []
        try:
            nodes = node_service_pb2_grpc.NodesStub(channel)
            assignments = assignment_service_pb2_grpc.AssignmentsStub(channel)
            cpu, memory = capacity()
            reply = await nodes.RegisterNode(npb.RegisterNodeRequest(
                node_id=self.node_id, name=self.name, address=self.advertise, cpu_millis=cpu, memory_bytes=memory,
                labels=self.labels, node_ip=self.node_ip), timeout=10)
            log.info("registered with %s as node %s (%s, %s), container subnet %s", self.server, self.node_id,
                     self.name, self.node_ip or "no address", reply.subnet or "none")
            if reply.subnet:
                await self.network.join(subnet=reply.subnet, cluster_cidr=reply.cluster_cidr,
                                        routing=reply.routing or "host-gw", node_ip=self.node_ip)
            loop = asyncio.get_running_loop()
            tasks = [loop.create_task(self._guard(self._heartbeats(nodes, reply))),
                     loop.create_task(self._guard(self._watch(assignments))),
                     loop.create_task(self._guard(self._reports(assignments))),
                     loop.create_task(self._guard(self._watch_network(network_service_pb2_grpc.NetworkStub(channel))))]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await channel.close(grace=None)

    @staticmethod
    async def _guard(work: Awaitable[None]) -> None:
        await work
        raise ConnectionError("the control plane ended the stream")

    async def _heartbeats(self, nodes: Any, registration: npb.RegisterNodeResponse) -> None:
        interval = max(registration.heartbeat_interval_ms, 100) / 1000
        while True:
            await asyncio.sleep(interval)
            await nodes.Heartbeat(npb.HeartbeatRequest(node_id=self.node_id, lease=registration.lease),
                                  timeout=interval * 2)

    async def _watch(self, assignments: Any) -> None:
        async for update in assignments.WatchAssignments(apb.WatchAssignmentsRequest(node_id=self.node_id)):
            if update.full:
                self.desired = {}
            for assignment in update.assigned:
                self.desired[(assignment.app, assignment.index)] = assignment
            for removed in update.removed:
                app, _, index = removed.rpartition("/")
                self.desired.pop((app, int(index)), None)
            self._dirty.set()

    async def _watch_network(self, stub: Any) -> None:
        """Routes to the other nodes and the DNS names follow the control plane's view."""
        async for view in stub.WatchNetwork(netpb.WatchNetworkRequest(node_id=self.node_id)):
            await self.network.update_view([Peer(name=p.name, address=p.node_ip, subnet=p.subnet) for p in view.peers],
                                           {n.name: list(n.addresses) for n in view.names})

    async def _reconcile_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), RECONCILE_EVERY)
            self._dirty.clear()
            try:
                await self.reconcile()
            except Exception:  # a bad replica must not stop the others from being managed
                log.exception("reconciling assignments failed")

    def _managed(self) -> dict[Key, Any]:
        managed = {}
        for container in self.containers.containers_list(include_stopped=True):
            labels = container.spec.labels
            if "shoal.app" in labels and labels.get("shoal.index", "").isdigit():
                managed[(labels["shoal.app"], int(labels["shoal.index"]))] = container
        return managed

    async def reconcile(self) -> None:
        """Makes the containers match the assignments: start the missing, replace other versions,
        remove the unassigned."""
        async with self._lock:
            managed = self._managed()
            for key, container in managed.items():
                wanted = self.desired.get(key)
                if wanted is None or container.spec.labels.get("shoal.version") != wanted.version:
                    await self.containers.remove(container.id, force=True)
            managed = self._managed()
            images = self.containers.images.generation
            for key in set(self.failures) - set(self.desired):
                del self.failures[key]
            now = time.monotonic()
            due = [assignment for key, assignment in self.desired.items() if key not in managed
                   and (key not in self.failures or self.failures[key].due(assignment.version, images, now))]
            slots = asyncio.Semaphore(START_CONCURRENCY)

            async def start(assignment: apb.Assignment) -> None:
                async with slots:
                    await self._start(assignment, images)
                self._changed.set()

            await asyncio.gather(*(start(assignment) for assignment in due))
        self._changed.set()

    async def _start(self, assignment: apb.Assignment, images: int) -> None:
        key = (assignment.app, assignment.index)
        failure = self.failures.get(key)
        try:
            if not self._image_ready(assignment):
                return
            created = await self.containers.create(container_spec(assignment))
            await self.containers.start(created.id)
            self.failures.pop(key, None)
            self.pulled.discard((key, assignment.version))
        except ShoalError as e:
            attempts = failure.attempts + 1 if failure and failure.version == assignment.version else 1
            delay = min(START_BACKOFF[0] * 2 ** (attempts - 1), START_BACKOFF[1])
            self.failures[key] = StartFailure(str(e), assignment.version, attempts, time.monotonic() + delay, images)
            with contextlib.suppress(ShoalError):
                await self.containers.remove(f"{assignment.app}.{assignment.index}", force=True)

    def _image_ready(self, assignment: apb.Assignment) -> bool:
        """Whether the replica's image may be used now, per its app's pull policy. A pull runs in the
        background (reconciling never waits for a download) and wakes the reconciler when it ends;
        its failure is raised here, once, for the replica's backoff."""
        image, policy = assignment.spec.image, assignment.spec.pull_policy
        key = (assignment.app, assignment.index)
        if policy == "never" or (key, assignment.version) in self.pulled:
            return True
        if policy != "always":
            with contextlib.suppress(NotFound):
                self.containers.images.resolve(image)
                return True
        task = self.pulls.get(image)
        if task is None:
            task = asyncio.get_running_loop().create_task(self.images.pull(image, progress=self._progress(image)))
            task.add_done_callback(lambda _: self._dirty.set())
            self.pulls[image] = task
        if not task.done():
            return False
        del self.pulls[image]
        self.pull_progress.pop(image, None)
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        if policy == "always":
            self.pulled.add((key, assignment.version))
        return True

    def _progress(self, image: str) -> Callable[[str, int, int], None]:
        """Download progress of a pull (called from its thread), summed over the layers: it goes into
        the replica's status as `pulling IMAGE (3.1 of 12.0 MiB)`, for `clusterctl deploy` to show."""
        loop = asyncio.get_running_loop()
        layers: dict[str, tuple[int, int]] = {}
        last = [0.0]

        def update(layer: str, current: int, total: int) -> None:
            layers[layer] = (current, total)
            self.pull_progress[image] = (sum(c for c, _ in layers.values()), sum(t for _, t in layers.values()))
            if time.monotonic() - last[0] >= PROGRESS_EVERY or current >= total:
                last[0] = time.monotonic()
                loop.call_soon_threadsafe(self._changed.set)

        return update

    def _pulling(self, image: str) -> str:
        done, total = self.pull_progress.get(image, (0, 0))
        return f"pulling {image}" + (f" ({done / MIB:.1f} of {total / MIB:.1f} MiB)" if total else "")

    def statuses(self) -> list[apb.ReplicaStatus]:
        managed = self._managed()
        found = []
        for key, assignment in sorted(self.desired.items()):
            container = managed.get(key)
            if container is None:
                failure = self.failures.get(key)
                pulling = assignment.spec.image in self.pulls and failure is None
                found.append(apb.ReplicaStatus(app=key[0], index=key[1], version=assignment.version,
                                               state="failed" if failure else "pending",
                                               restarts=max(failure.attempts - 1, 0) if failure else 0,
                                               error=failure.error if failure else
                                               self._pulling(assignment.spec.image) if pulling else ""))
                continue
            found.append(apb.ReplicaStatus(
                app=key[0], index=key[1], version=assignment.version, state=container.state.value,
                exit_code=container.exit_code if container.state is not State.RUNNING else 0,
                restarts=container.restart_count, error=container.error, container_id=container.id,
                address=container.address))
        return found

    async def _reports(self, assignments: Any) -> None:
        last: list[apb.ReplicaStatus] | None = None
        while True:
            current = self.statuses()
            if current != last:
                await assignments.ReportStatus(apb.ReportStatusRequest(node_id=self.node_id, replicas=current),
                                               timeout=10)
                last = current
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), REPORT_EVERY)
                await asyncio.sleep(REPORT_BATCH)
            self._changed.clear()
