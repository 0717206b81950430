"""Prometheus metrics of the agent (names follow https://prometheus.io/docs/practices/naming/).

Per-container figures are read from the cgroups at scrape time by a collector, so nothing is
polled between scrapes; start latency is a histogram observed by the container service.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from agent.containers.model import State
from agent.containers.service import ContainerService

START_BUCKETS = (0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class AgentMetrics:
    """Implements the container service's LifecycleObserver and owns the registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.start_latency = Histogram(
            "shoal_container_start_duration_seconds",
            "Time from a start request reaching the runtime until the container's process has exec'd.",
            buckets=START_BUCKETS, registry=self.registry)
        self.restarts = Counter("shoal_container_restarts", "Restarts performed by restart policies.",
                                registry=self.registry)

    def container_started(self, seconds: float) -> None:
        self.start_latency.observe(seconds)

    def container_restarted(self, container_id: str) -> None:
        self.restarts.inc()

    def watch(self, service: ContainerService) -> None:
        self.registry.register(_ContainerCollector(service))


class _ContainerCollector(Collector):
    def __init__(self, service: ContainerService) -> None:
        self.service = service

    def collect(self) -> Iterator[Any]:
        labels = ["id", "name"]
        cpu = CounterMetricFamily("shoal_container_cpu_seconds", "CPU time used by the container's processes.",
                                  labels=labels)
        memory = GaugeMetricFamily("shoal_container_memory_usage_bytes",
                                   "Memory in use by the container (inactive file cache excluded).", labels=labels)
        limit = GaugeMetricFamily("shoal_container_memory_limit_bytes", "Memory limit (0: none).", labels=labels)
        pids = GaugeMetricFamily("shoal_container_pids", "Processes in the container.", labels=labels)
        restarts = CounterMetricFamily("shoal_container_restart_count",
                                       "Restarts of the container by its restart policy.", labels=labels)
        states = GaugeMetricFamily("shoal_containers", "Containers on this agent by state.", labels=["state"])
        counts = dict.fromkeys((s.value for s in State), 0)
        for container in self.service.containers_list(include_stopped=True):
            counts[container.state.value] += 1
            restarts.add_metric([container.id[:12], container.name], container.restart_count)
        for container, stats in self.service.stats([]):
            key = [container.id[:12], container.name]
            cpu.add_metric(key, stats.cpu_seconds)
            memory.add_metric(key, stats.memory_usage_bytes)
            limit.add_metric(key, stats.memory_limit_bytes)
            pids.add_metric(key, stats.pids_current)
        for state, count in counts.items():
            states.add_metric([state], count)
        yield from (cpu, memory, limit, pids, restarts, states, *self._network())

    def _network(self) -> Iterator[Any]:
        network = self.service.network
        pool = network.pool
        leases = GaugeMetricFamily("shoal_network_address_leases",
                                   "Addresses of the node's container subnet held by containers.")
        leases.add_metric([], len(pool.leases) if pool else 0)
        capacity = GaugeMetricFamily("shoal_network_address_capacity",
                                     "Addresses of the node's container subnet that containers can get.")
        capacity.add_metric([], pool.capacity if pool else 0)
        ports = GaugeMetricFamily("shoal_network_published_ports", "Host ports published by running containers.")
        ports.add_metric([], sum(len(attached.ports) for attached in list(network.attached.values())))
        peers = GaugeMetricFamily("shoal_network_peer_routes", "Routes to other nodes' container subnets.")
        peers.add_metric([], len(network.view.peers))
        yield from (leases, capacity, ports, peers)
