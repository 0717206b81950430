"""A desired app, as plain frozen data."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Restart(enum.StrEnum):
    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


@dataclass(frozen=True, slots=True)
class Port:
    host_port: int
    container_port: int
    protocol: str = "tcp"


@dataclass(frozen=True, slots=True, kw_only=True)
class App:
    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    replicas: int = 1
    cpu_millis: int = 0
    memory_bytes: int = 0
    pids_limit: int = 0
    restart: Restart = Restart.ALWAYS
    max_retries: int = 0
    constraints: tuple[str, ...] = ()
    spread: str = "node"
    labels: dict[str, str] = field(default_factory=dict)
    pull_policy: str = ""  # "" (if-not-present), "always" or "never"
    network: str = "bridge"  # bridge, host or none
    ports: tuple[Port, ...] = ()
