"""protobuf ⇄ domain converters for the Agent API (each round-trip tested)."""

from __future__ import annotations

import calendar
import time

from google.protobuf.timestamp_pb2 import Timestamp
from shoal.agent.v1 import containers_pb2 as cpb
from shoal.agent.v1 import images_pb2 as ipb

from agent.cgroups import CgroupStats
from agent.containers.logs import LogLine
from agent.containers.model import (
    Container,
    ContainerSpec,
    Mount,
    NetworkMode,
    Resources,
    RestartKind,
    RestartPolicy,
    State,
)
from agent.images.model import ImageRecord
from agent.network.plan import PortMapping

RESTART_KINDS = {RestartKind.NO: cpb.RestartPolicy.KIND_UNSPECIFIED,
                 RestartKind.ON_FAILURE: cpb.RestartPolicy.KIND_ON_FAILURE,
                 RestartKind.ALWAYS: cpb.RestartPolicy.KIND_ALWAYS}
NETWORK_MODES = {NetworkMode.NONE: cpb.NETWORK_MODE_NONE, NetworkMode.HOST: cpb.NETWORK_MODE_HOST,
                 NetworkMode.BRIDGE: cpb.NETWORK_MODE_BRIDGE}
STATES = {State.CREATED: cpb.CONTAINER_STATE_CREATED, State.RUNNING: cpb.CONTAINER_STATE_RUNNING,
          State.RESTARTING: cpb.CONTAINER_STATE_RESTARTING, State.EXITED: cpb.CONTAINER_STATE_EXITED}
STREAMS = {"stdout": cpb.LogEntry.STREAM_STDOUT, "stderr": cpb.LogEntry.STREAM_STDERR}


def timestamp(ns: int) -> Timestamp | None:
    """None (the field stays unset) for 0, which means "never"."""
    if not ns:
        return None
    stamp = Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp


def spec_from_pb(spec: cpb.ContainerSpec) -> ContainerSpec:
    return ContainerSpec(
        name=spec.name, image=spec.image, entrypoint=tuple(spec.entrypoint), command=tuple(spec.command),
        env=tuple(spec.env), hostname=spec.hostname, user=spec.user, working_dir=spec.working_dir,
        mounts=tuple(Mount(source=m.source, destination=m.destination, read_only=m.read_only) for m in spec.mounts),
        resources=Resources(memory_bytes=spec.resources.memory_bytes, cpu_millis=spec.resources.cpu_millis,
                            cpu_shares=spec.resources.cpu_shares, pids_limit=spec.resources.pids_limit),
        restart_policy=RestartPolicy(kind={v: k for k, v in RESTART_KINDS.items()}[spec.restart_policy.kind],
                                     max_retries=spec.restart_policy.max_retries),
        network={v: k for k, v in NETWORK_MODES.items()}[spec.network_mode],
        ports=tuple(PortMapping(host_port=p.host_port, container_port=p.container_port, protocol=p.protocol or "tcp")
                    for p in spec.ports),
        auto_remove=spec.auto_remove, labels=dict(spec.labels),
    )


def spec_to_pb(spec: ContainerSpec) -> cpb.ContainerSpec:
    return cpb.ContainerSpec(
        name=spec.name, image=spec.image, entrypoint=spec.entrypoint, command=spec.command, env=spec.env,
        hostname=spec.hostname, user=spec.user, working_dir=spec.working_dir,
        mounts=[cpb.Mount(source=m.source, destination=m.destination, read_only=m.read_only) for m in spec.mounts],
        resources=cpb.Resources(memory_bytes=spec.resources.memory_bytes, cpu_millis=spec.resources.cpu_millis,
                                cpu_shares=spec.resources.cpu_shares, pids_limit=spec.resources.pids_limit),
        restart_policy=cpb.RestartPolicy(kind=RESTART_KINDS[spec.restart_policy.kind],
                                         max_retries=spec.restart_policy.max_retries),
        network_mode=NETWORK_MODES[spec.network], auto_remove=spec.auto_remove, labels=spec.labels,
        ports=[cpb.PortMapping(host_port=p.host_port, container_port=p.container_port, protocol=p.protocol)
               for p in spec.ports],
    )


def container_to_pb(c: Container) -> cpb.Container:
    return cpb.Container(
        id=c.id, name=c.name, spec=spec_to_pb(c.spec), image_id=c.image_id, state=STATES[c.state], pid=c.pid,
        exit_code=c.exit_code, oom_killed=c.oom_killed, restart_count=c.restart_count,
        created_at=timestamp(c.created_at), started_at=timestamp(c.started_at),
        finished_at=timestamp(c.finished_at), error=c.error, argv=c.argv, ip_address=c.address,
    )


def stats_to_pb(c: Container, stats: CgroupStats) -> cpb.ContainerStats:
    return cpb.ContainerStats(id=c.id, name=c.name, cpu_seconds=stats.cpu_seconds,
                              memory_usage_bytes=stats.memory_usage_bytes,
                              memory_limit_bytes=stats.memory_limit_bytes, pids_current=stats.pids_current,
                              pids_limit=stats.pids_limit)


def log_line_to_pb(line: LogLine) -> cpb.LogEntry:
    return cpb.LogEntry(stream=STREAMS.get(line.stream, cpb.LogEntry.STREAM_UNSPECIFIED),
                        time=timestamp(line.time_ns), data=line.data)


def _created_ns(created: str) -> int:
    try:
        seconds = calendar.timegm(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0
    return seconds * 1_000_000_000


def image_to_pb(record: ImageRecord) -> ipb.Image:
    config = record.config
    return ipb.Image(
        id=record.id, repo_tags=record.repo_tags, manifest_digest=record.manifest_digest,
        size_bytes=record.size_bytes, created_at=timestamp(_created_ns(record.created)), diff_ids=record.diff_ids,
        platform=record.platform, pinned=record.pinned,
        config=ipb.ImageConfig(entrypoint=config.entrypoint, cmd=config.cmd, env=config.env,
                               working_dir=config.working_dir, user=config.user,
                               exposed_ports=config.exposed_ports, labels=config.labels,
                               stop_signal=config.stop_signal),
    )
