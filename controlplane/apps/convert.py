"""AppSpec (protobuf) ⇄ the apps model and the scheduler's view of an app."""

from __future__ import annotations

import hashlib

from shoal.controlplane.v1 import apps_pb2 as pb

from controlplane.apps.model import App, Port, Restart
from controlplane.scheduling.constraints import parse_constraint
from controlplane.scheduling.model import Resources
from controlplane.scheduling.reconciler import AppSpec as SchedulingApp

RESTARTS = {pb.AppRestartPolicy.KIND_NO: Restart.NO, pb.AppRestartPolicy.KIND_ON_FAILURE: Restart.ON_FAILURE,
            pb.AppRestartPolicy.KIND_ALWAYS: Restart.ALWAYS}


def app_from_pb(spec: pb.AppSpec) -> App:
    return App(name=spec.name, image=spec.image, command=tuple(spec.command), args=tuple(spec.args),
               env=dict(spec.env), replicas=spec.replicas, cpu_millis=spec.resources.cpu_millis,
               memory_bytes=spec.resources.memory_bytes, pids_limit=spec.resources.pids_limit,
               restart=RESTARTS[spec.restart.kind], max_retries=spec.restart.max_retries,
               constraints=tuple(spec.placement.constraints), spread=spec.placement.spread or "node",
               labels=dict(spec.labels), pull_policy=spec.pull_policy, network=spec.network or "bridge",
               ports=tuple(Port(p.host_port, p.container_port, p.protocol or "tcp") for p in spec.ports))


def version_of(spec: pb.AppSpec) -> str:
    """A hash of everything but the replica count: scaling is not an update and replaces nothing."""
    unscaled = pb.AppSpec()
    unscaled.CopyFrom(spec)
    unscaled.replicas = 0
    return hashlib.sha256(unscaled.SerializeToString(deterministic=True)).hexdigest()[:16]


def scheduling_app(spec: pb.AppSpec, version: str) -> SchedulingApp:
    return SchedulingApp(name=spec.name, replicas=spec.replicas,
                         resources=Resources(spec.resources.cpu_millis, spec.resources.memory_bytes),
                         version=version, constraints=tuple(parse_constraint(c) for c in spec.placement.constraints),
                         spread_by=spec.placement.spread or "node",
                         host_ports=tuple(f"{p.host_port}/{p.protocol or 'tcp'}" for p in spec.ports))
