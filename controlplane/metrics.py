"""Prometheus metrics of the control plane (https://prometheus.io/docs/practices/naming/).

Gauges are refreshed by the leader after every evaluation from the snapshot it already read, so
a scrape never waits on etcd; a replica that is not the leader reports leader 0 and stale gauges
cleared.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from controlplane.scheduling.model import Node, Placement


class ControlPlaneMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.leader = Gauge("shoal_controlplane_leader", "1 while this control plane is the elected leader.",
                            registry=self.registry)
        self.nodes = Gauge("shoal_nodes", "Nodes by state.", ["state"], registry=self.registry)
        self.desired = Gauge("shoal_app_replicas_desired", "Replicas an app asks for.", ["app"],
                             registry=self.registry)
        self.placed = Gauge("shoal_app_replicas_placed", "Replicas of the app's current version placed on nodes.",
                            ["app"], registry=self.registry)
        self.running = Gauge("shoal_app_replicas_running", "Replicas their agents report running.", ["app"],
                             registry=self.registry)
        self.evaluation = Histogram("shoal_evaluation_duration_seconds",
                                    "One reconcile + schedule + commit evaluation of the leader.",
                                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                    registry=self.registry)
        self.placements = Counter("shoal_placements", "Replicas placed on nodes.", registry=self.registry)
        self.stops = Counter("shoal_replica_stops", "Placements removed (scale down, lost nodes, updates).",
                             registry=self.registry)
        self.etcd = Histogram("shoal_etcd_request_duration_seconds", "etcd requests, by operation.",
                              ["operation"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
                              registry=self.registry)

    def observe_etcd(self, operation: str, seconds: float) -> None:
        self.etcd.labels(operation).observe(seconds)

    def refresh(self, nodes: Iterable[Node], apps: dict[str, tuple[int, str]], placements: Iterable[Placement],
                running: dict[str, int]) -> None:
        """apps: name -> (desired replicas, current version)."""
        counts: dict[str, int] = {}
        for node in nodes:
            state = node.state.value if node.schedulable else f"{node.state.value}-cordoned"
            counts[state] = counts.get(state, 0) + 1
        self.nodes.clear()
        for state, count in counts.items():
            self.nodes.labels(state).set(count)
        placed: dict[str, int] = {}
        for placement in placements:
            if placement.app in apps and placement.version == apps[placement.app][1]:
                placed[placement.app] = placed.get(placement.app, 0) + 1
        for gauge in (self.desired, self.placed, self.running):
            gauge.clear()
        for app, (desired, _) in apps.items():
            self.desired.labels(app).set(desired)
            self.placed.labels(app).set(placed.get(app, 0))
            self.running.labels(app).set(running.get(app, 0))
