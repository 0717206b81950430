"""The composition root: builds every concrete piece of the agent and connects them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import _async as health_aio  # what `health.aio` re-exports; typed here
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server
from shoal.agent.v1 import agent_pb2, agent_pb2_grpc

from agent import statefs
from agent.api.errors import DomainErrorInterceptor
from agent.api.lean import SUFFIX, LeanServer
from agent.api.servicer import AgentServicer
from agent.build.builder import Builder
from agent.cgroups import NoCgroups, manager_for
from agent.config import AgentConfig
from agent.containers.service import ContainerService
from agent.errors import Conflict, Unavailable
from agent.images.service import ImageService, RegistrySettings
from agent.images.store import ImageStore
from agent.membership import ClusterMember
from agent.metrics import AgentMetrics
from agent.network.manager import NetworkManager
from agent.runtime.client import SupervisorClient
from agent.supervisor.protocol import call_blocking

log = logging.getLogger(__name__)


@dataclass
class RunningAgent:
    server: grpc.aio.Server
    lean: LeanServer
    supervisor: SupervisorClient
    containers: ContainerService
    network: NetworkManager
    metrics_server: Any
    address: str
    membership: asyncio.Task[None] | None = None
    image_gc: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        for task in (self.membership, self.image_gc):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.lean.close()
        await self.server.stop(grace=2)
        await self.containers.drain()
        # Containers outlive the agent (DESIGN.md §2), and so does their network; once none is
        # attached any more, everything the agent made in the kernel goes with it.
        try:
            await self.network.close(teardown=not self.network.attached)
        except Exception:  # the rest of the shutdown must still happen
            log.exception("removing the container network failed")
        await self.supervisor.close()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()


async def start_agent(config: AgentConfig) -> RunningAgent:
    config.validate()
    os.makedirs(config.state_dir, mode=0o700, exist_ok=True)
    if slow_filesystem := statefs.warning(config.state_dir):
        log.warning(slow_filesystem)
    store = ImageStore(os.path.join(config.state_dir, "images"))
    metrics = AgentMetrics()
    supervisor = SupervisorClient(config.state_dir, config.cgroup_parent)
    try:
        cgroups = manager_for(config.cgroup_parent)
    except NoCgroups as e:
        raise Unavailable(str(e)) from None
    network = NetworkManager(state_dir=config.state_dir, bridge=config.bridge, mtu=config.mtu,
                             subnet="" if config.server else config.subnet)
    containers = ContainerService(state_dir=config.state_dir, images=store, supervisor=supervisor,
                                  cgroups=cgroups, network=network, observer=metrics,
                                  log_max_bytes=config.log_max_bytes, log_max_files=config.log_max_files)
    await supervisor.connect()
    await containers.recover()
    await network.start()
    metrics.watch(containers)

    images = ImageService(store, os.path.join(config.state_dir, "spool"), RegistrySettings(
        config.insecure_registries, config.registry_certs_dir, config.registry_auth_file))
    builder = Builder(images=images, containers=containers, state_dir=config.state_dir)
    servicer = AgentServicer(containers, images, builder)
    server = await _serve_api(config, servicer)
    lean = await _serve_lean(config, servicer)
    metrics_server = None
    if config.metrics_listen != "off":
        host, _, port = config.metrics_listen.rpartition(":")
        metrics_server, _thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=metrics.registry)
    membership = None
    if config.server:
        member = ClusterMember(server=config.server, state_dir=config.state_dir, name=config.node_name,
                               advertise=config.advertise, labels=config.labels, containers=containers,
                               images=images, network=network, configured_ip=config.node_ip)
        membership = asyncio.get_running_loop().create_task(member.run())
    log.info("shoal-agent serving on %s (state %s, cgroup parent %s, metrics %s, control plane %s)",
             ", ".join(config.grpc_addresses),
             config.state_dir, config.cgroup_parent, config.metrics_listen, config.server or "none")
    image_gc = asyncio.get_running_loop().create_task(_collect_images(images, config))
    return RunningAgent(server, lean, supervisor, containers, network, metrics_server, config.grpc_addresses[0],
                        membership, image_gc)


async def _serve_api(config: AgentConfig, servicer: AgentServicer) -> grpc.aio.Server:
    """The Agent service, health checking and reflection, on every --listen address."""
    server = grpc.aio.server(interceptors=[DomainErrorInterceptor()])
    agent_pb2_grpc.add_AgentServicer_to_server(servicer, server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_name = agent_pb2.DESCRIPTOR.services_by_name["Agent"].full_name
    reflection.enable_server_reflection([service_name, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    for address in config.grpc_addresses:
        if address.startswith("unix://"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address.removeprefix("unix://"))
        try:
            server.add_insecure_port(address)
        except RuntimeError as e:  # grpc's "Failed to bind"
            raise Unavailable(f"--listen {address}: cannot listen there ({e})") from None
    await server.start()
    for address in config.grpc_addresses:
        if address.startswith("unix://"):
            os.chmod(address.removeprefix("unix://"), 0o600)
    await health_servicer.set(service_name, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return server


async def _serve_lean(config: AgentConfig, servicer: AgentServicer) -> LeanServer:
    """The lean local transport beside each unix:// gRPC socket, with the same permissions."""
    lean = LeanServer(servicer)
    for address in config.grpc_addresses:
        if not address.startswith("unix://"):
            continue
        path = address.removeprefix("unix://") + SUFFIX
        if not config.lean_socket:  # one an earlier run left would send every client's call there first
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            continue
        try:
            await lean.listen(path)
        except OSError as e:
            await lean.close()
            raise Unavailable(f"--listen {address}: cannot listen on its lean socket {path} ({e})") from None
        os.chmod(path, 0o600)
    return lean


async def _collect_images(images: ImageService, config: AgentConfig) -> None:
    while True:
        await asyncio.sleep(config.image_gc_interval)
        try:
            await images.collect_past_high_water(config.image_gc_high_percent, config.image_gc_low_percent)
        except Exception:  # the next round tries again; a failing collection must not stop the agent
            log.exception("image garbage collection failed")


async def remove_network(config: AgentConfig) -> None:
    """`shoal-agent --remove-network`: for a host whose agent was stopped by force (its containers
    gone), what the agent would have removed itself on a clean stop."""
    supervisor = os.path.join(config.state_dir, "supervisor.sock")
    if os.path.exists(supervisor):
        with contextlib.suppress(OSError):
            reply, _ = await asyncio.to_thread(call_blocking, supervisor, {"op": "status"})
            if reply.get("containers"):
                raise Conflict(f"{len(reply['containers'])} containers still run under {config.state_dir}: "
                               "stop them first (start the agent, or clusterctl down)")
    await NetworkManager(state_dir=config.state_dir, bridge=config.bridge, mtu=config.mtu).close(teardown=True)
    log.info("removed the container network of bridge %s", config.bridge)
