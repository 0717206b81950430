"""Spec validation: every rule names the field and what is expected (InvalidSpec)."""

from __future__ import annotations

import os
import re

from agent.containers.model import ContainerSpec, NetworkMode, RestartKind
from agent.errors import InvalidSpec
from agent.network.plan import check_ports

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
HOSTNAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
ENV_KEY = re.compile(r"^[^=\s]+$")
MIN_MEMORY = 6 << 20  # below this the container's own init is OOM-killed on start (Docker's floor)


def validate(spec: ContainerSpec) -> None:
    if spec.name and not NAME.match(spec.name):
        raise InvalidSpec("name", f"{spec.name!r} is not a valid name: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128")
    if not spec.image:
        raise InvalidSpec("image", "an image reference is required")
    if spec.hostname and (len(spec.hostname) > 253 or not HOSTNAME.match(spec.hostname)):
        raise InvalidSpec("hostname", f"{spec.hostname!r} is not a valid hostname (RFC 1123)")
    for index, item in enumerate(spec.env):
        key = item.partition("=")[0]
        if "=" not in item or not ENV_KEY.match(key):
            raise InvalidSpec(f"env[{index}]", f"{item!r} must be KEY=VALUE")
    if spec.working_dir and not spec.working_dir.startswith("/"):
        raise InvalidSpec("working_dir", f"{spec.working_dir!r} must be an absolute path")
    _validate_mounts(spec)
    _validate_resources(spec)
    _validate_ports(spec)
    policy = spec.restart_policy
    if policy.max_retries < 0:
        raise InvalidSpec("restart_policy.max_retries", "must be 0 or more")
    if policy.max_retries and policy.kind is not RestartKind.ON_FAILURE:
        raise InvalidSpec("restart_policy.max_retries", "only applies to the on-failure policy")
    if spec.auto_remove and policy.kind is not RestartKind.NO:
        raise InvalidSpec("auto_remove", "cannot be combined with a restart policy other than no")


def _validate_mounts(spec: ContainerSpec) -> None:
    seen = set()
    for index, mount in enumerate(spec.mounts):
        where = f"mounts[{index}]"
        if not mount.source.startswith("/"):
            raise InvalidSpec(f"{where}.source", f"{mount.source!r} must be an absolute host path")
        if not os.path.exists(mount.source):
            raise InvalidSpec(f"{where}.source", f"host path {mount.source} does not exist")
        if not mount.destination.startswith("/") or os.path.normpath(mount.destination) == "/":
            raise InvalidSpec(f"{where}.destination", f"{mount.destination!r} must be an absolute path other than /")
        if ".." in mount.destination.split("/"):
            raise InvalidSpec(f"{where}.destination", f"{mount.destination!r} must not contain '..'")
        destination = os.path.normpath(mount.destination)
        if destination in seen:
            raise InvalidSpec(f"{where}.destination", f"{destination} is mounted twice")
        seen.add(destination)


def _validate_ports(spec: ContainerSpec) -> None:
    if spec.ports and spec.network is not NetworkMode.BRIDGE:
        raise InvalidSpec("ports", f"ports are published in bridge network mode only, not {spec.network.value}")
    for index, mapping in enumerate(spec.ports):
        for side, value in (("host_port", mapping.host_port), ("container_port", mapping.container_port)):
            if not 1 <= value <= 65535:
                raise InvalidSpec(f"ports[{index}].{side}", f"{value}: a port is 1 to 65535")
        if mapping.protocol not in ("tcp", "udp"):
            raise InvalidSpec(f"ports[{index}].protocol", f"{mapping.protocol!r}: tcp or udp")
    check_ports(spec.ports)


def _validate_resources(spec: ContainerSpec) -> None:
    resources = spec.resources
    if resources.memory_bytes < 0 or 0 < resources.memory_bytes < MIN_MEMORY:
        raise InvalidSpec("resources.memory_bytes", f"at least {MIN_MEMORY // (1 << 20)} MiB when set")
    cpus = os.cpu_count() or 1
    if not 0 <= resources.cpu_millis <= cpus * 1000:
        raise InvalidSpec("resources.cpu_millis", f"between 0 and {cpus * 1000} (this host has {cpus} CPUs)")
    if resources.cpu_shares and not 2 <= resources.cpu_shares <= 262144:
        raise InvalidSpec("resources.cpu_shares", "between 2 and 262144")
    if resources.pids_limit < 0:
        raise InvalidSpec("resources.pids_limit", "must be 0 (unlimited) or more")
