"""Container specs and records as plain frozen data; persisted as JSON, converted to protobuf at the edge."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from agent.network.plan import PortMapping


class RestartKind(enum.StrEnum):
    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


class NetworkMode(enum.StrEnum):
    NONE = "none"
    HOST = "host"
    BRIDGE = "bridge"


class State(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    RESTARTING = "restarting"
    EXITED = "exited"


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    source: str
    destination: str
    read_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    memory_bytes: int = 0
    cpu_millis: int = 0
    cpu_shares: int = 0
    pids_limit: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    kind: RestartKind = RestartKind.NO
    max_retries: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerSpec:
    name: str = ""
    image: str = ""
    entrypoint: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    hostname: str = ""
    user: str = ""
    working_dir: str = ""
    mounts: tuple[Mount, ...] = ()
    resources: Resources = field(default_factory=Resources)
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    network: NetworkMode = NetworkMode.NONE
    ports: tuple[PortMapping, ...] = ()
    auto_remove: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerSpec:
        policy = data.get("restart_policy", {})
        return cls(
            name=data["name"], image=data["image"], entrypoint=tuple(data["entrypoint"]),
            command=tuple(data["command"]), env=tuple(data["env"]), hostname=data["hostname"], user=data["user"],
            working_dir=data["working_dir"], auto_remove=data["auto_remove"], labels=dict(data["labels"]),
            mounts=tuple(Mount(**m) for m in data.get("mounts", ())),
            resources=Resources(**data.get("resources", {})),
            restart_policy=RestartPolicy(kind=RestartKind(policy.get("kind", "no")),
                                         max_retries=policy.get("max_retries", 0)),
            network=NetworkMode(data.get("network", "none")),
            ports=tuple(PortMapping(**p) for p in data.get("ports", ())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    """What the agent records about one container. Times are Unix nanoseconds (0: never)."""

    id: str
    name: str
    spec: ContainerSpec
    image_id: str
    argv: tuple[str, ...]
    state: State = State.CREATED
    pid: int = 0
    generation: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    restart_count: int = 0
    backoff_step: int = 0
    stopped_by_user: bool = False
    created_at: int = 0
    started_at: int = 0
    finished_at: int = 0
    error: str = ""
    address: str = ""  # on the node's bridge, while running

    def to_json(self) -> dict[str, Any]:
        """Shallow but for the spec (asdict copies every field deeply: half the cost of a save)."""
        return {**{name: getattr(self, name) for name in self.__slots__}, "spec": asdict(self.spec),
                "argv": list(self.argv)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Container:
        return cls(**{**data, "spec": ContainerSpec.from_json(data["spec"]), "argv": tuple(data["argv"]),
                      "state": State(data["state"])})

    def evolve(self, **changes: Any) -> Container:
        return replace(self, **changes)

    @property
    def hostname(self) -> str:
        """The spec's, else the first 12 characters of the id (as Docker)."""
        return self.spec.hostname or self.id[:12]

    @property
    def is_active(self) -> bool:
        """Running, or between runs under its restart policy: not yet stopped for good."""
        return self.state in (State.RUNNING, State.RESTARTING)
