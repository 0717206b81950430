"""What the store knows about an image (plain data, converted to protobuf at the API edge)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageConfig:
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""

    @classmethod
    def from_oci(cls, config: dict[str, Any]) -> ImageConfig:
        """From the `config` object of an OCI/Docker image configuration (image-spec config.md)."""
        return cls(
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            env=tuple(config.get("Env") or ()),
            working_dir=config.get("WorkingDir") or "",
            user=config.get("User") or "",
            exposed_ports=tuple(sorted(config.get("ExposedPorts") or {})),
            labels=dict(config.get("Labels") or {}),
            stop_signal=config.get("StopSignal") or "",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRecord:
    id: str
    manifest_digest: str
    diff_ids: tuple[str, ...]
    layer_digests: tuple[str, ...]
    config: ImageConfig
    size_bytes: int
    created: str
    platform: str
    repo_tags: tuple[str, ...] = ()
    pinned: bool = False  # never garbage-collected (`clusterctl image pin`)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("repo_tags")
        data.pop("pinned")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], repo_tags: tuple[str, ...]) -> ImageRecord:
        config = data["config"]
        return cls(
            id=data["id"], manifest_digest=data["manifest_digest"], diff_ids=tuple(data["diff_ids"]),
            layer_digests=tuple(data["layer_digests"]),
            config=ImageConfig(entrypoint=tuple(config["entrypoint"]), cmd=tuple(config["cmd"]),
                               env=tuple(config["env"]),
                               working_dir=config["working_dir"], user=config["user"],
                               exposed_ports=tuple(config["exposed_ports"]), labels=dict(config["labels"]),
                               stop_signal=config["stop_signal"]),
            size_bytes=data["size_bytes"], created=data["created"], platform=data["platform"], repo_tags=repo_tags,
        )
