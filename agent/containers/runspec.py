"""How a spec and its image combine into what actually runs (Docker's merge rules, pure).

- argv: the spec's entrypoint, else the image's; then the spec's command, else the image's Cmd
  unless the entrypoint was overridden (overriding it clears the image's Cmd, as in Docker).
- env: the image's variables, overridden key by key by the spec's, plus HOSTNAME and a default PATH.
- working dir, user: the spec's, else the image's, else `/` and root.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.containers.model import ContainerSpec
from agent.errors import InvalidSpec
from agent.images.model import ImageConfig

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class Process:
    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str


def merge_env(*layers: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    merged: dict[str, str] = {}
    for layer in layers:
        for item in layer:
            key, _, value = item.partition("=")
            merged[key] = value
    return tuple(f"{k}={v}" for k, v in merged.items())


def argv_for(spec: ContainerSpec, image: ImageConfig) -> tuple[str, ...]:
    entrypoint = spec.entrypoint or image.entrypoint
    command = spec.command or (() if spec.entrypoint else image.cmd)
    argv = tuple(entrypoint) + tuple(command)
    if not argv:
        raise InvalidSpec("command", "no command given and the image has no Entrypoint or Cmd")
    return argv


def process_for(spec: ContainerSpec, image: ImageConfig, hostname: str) -> Process:
    env = merge_env((f"PATH={DEFAULT_PATH}",), image.env, spec.env, (f"HOSTNAME={hostname}",))
    return Process(argv=argv_for(spec, image), env=env, cwd=spec.working_dir or image.working_dir or "/",
                   user=spec.user or image.user or "0")
