"""App validation: every rule names the field path and what is expected."""

from __future__ import annotations

import re

from controlplane.apps.model import App, Restart
from controlplane.scheduling.constraints import ConstraintError, parse_constraint, parse_spread

NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
MAX_REPLICAS = 10_000
MIN_MEMORY = 6 << 20
PULL_POLICIES = ("", "always", "never")
NETWORKS = ("bridge", "host", "none")


class InvalidApp(ValueError):
    def __init__(self, field: str, expected: str) -> None:
        super().__init__(f"{field}: {expected}")
        self.field = field
        self.expected = expected


def validate(app: App) -> None:
    if not NAME.match(app.name):
        raise InvalidApp("name", f"{app.name!r} must be a DNS label: lowercase letters, digits and '-', "
                                 "at most 63 characters, starting and ending with a letter or digit")
    if not app.image.strip():
        raise InvalidApp("image", "an image reference is required")
    if not 0 <= app.replicas <= MAX_REPLICAS:
        raise InvalidApp("replicas", f"between 0 and {MAX_REPLICAS}, got {app.replicas}")
    for key in app.env:
        if not ENV_KEY.match(key):
            raise InvalidApp(f"env.{key}", "a variable name: letters, digits, '_', '.', '-', not starting with a digit")
    if app.cpu_millis < 0:
        raise InvalidApp("resources.cpus", "must not be negative")
    if app.memory_bytes < 0 or 0 < app.memory_bytes < MIN_MEMORY:
        raise InvalidApp("resources.memory", "at least 6Mi when set")
    if app.pids_limit < 0:
        raise InvalidApp("resources.pids", "must not be negative")
    if app.max_retries and app.restart is not Restart.ON_FAILURE:
        raise InvalidApp("restart", "a retry limit (`:N`) only applies to on-failure")
    for index, constraint in enumerate(app.constraints):
        try:
            parse_constraint(constraint)
        except ConstraintError as e:
            raise InvalidApp(f"placement.constraints[{index}]", str(e)) from None
    if app.pull_policy not in PULL_POLICIES:
        raise InvalidApp("pull_policy", f"{app.pull_policy!r}: expected \"\" (if-not-present), always or never")
    _validate_network(app)
    try:
        parse_spread(app.spread)
    except ConstraintError as e:
        raise InvalidApp("placement.spread", str(e)) from None


def _validate_network(app: App) -> None:
    if app.network not in NETWORKS:
        raise InvalidApp("network", f"{app.network!r}: expected bridge (the default), host or none")
    if app.ports and app.network != "bridge":
        raise InvalidApp("ports", f"ports are published in bridge network mode only, not {app.network}")
    seen: set[str] = set()
    for index, port in enumerate(app.ports):
        for side, value in (("host_port", port.host_port), ("container_port", port.container_port)):
            if not 1 <= value <= 65535:
                raise InvalidApp(f"ports[{index}].{side}", f"{value}: a port is 1 to 65535")
        if port.protocol not in ("tcp", "udp"):
            raise InvalidApp(f"ports[{index}].protocol", f"{port.protocol!r}: tcp or udp")
        key = f"{port.host_port}/{port.protocol}"
        if key in seen:
            raise InvalidApp(f"ports[{index}]", f"host port {key} is published twice")
        seen.add(key)
