"""What the config-only instructions do to an image's config (pure): ENV, LABEL, WORKDIR, USER, CMD,
ENTRYPOINT and EXPOSE. They make no layer; the builder records them in the cache key."""

from __future__ import annotations

import os
from typing import Any

from agent.build.dockerfile import DockerfileError, Instruction, command_form, expand, key_values


def apply(config: dict[str, Any], instruction: Instruction, variables: dict[str, str], cmd_set: bool) -> bool:
    """Changes `config` (the OCI config's `config` section) as the instruction says; returns whether
    this stage has set CMD (Docker: a new ENTRYPOINT resets a CMD this stage did not set)."""
    keyword, line = instruction.keyword, instruction.line
    if keyword in ("ENV", "LABEL"):
        pairs = key_values(instruction, variables)
        if keyword == "ENV":
            env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
            env.update(pairs)
            config["Env"] = [f"{k}={v}" for k, v in env.items()]
        else:
            config["Labels"] = {**(config.get("Labels") or {}), **dict(pairs)}
    elif keyword == "WORKDIR":
        path = expand(instruction.arguments, variables, line)
        config["WorkingDir"] = os.path.normpath(os.path.join(config.get("WorkingDir") or "/", path))
    elif keyword == "USER":
        config["User"] = expand(instruction.arguments, variables, line)
    elif keyword in ("CMD", "ENTRYPOINT"):
        config["Cmd" if keyword == "CMD" else "Entrypoint"] = command_form(instruction)
        if keyword == "CMD":
            cmd_set = True
        elif not cmd_set:
            config.pop("Cmd", None)  # Docker: a new ENTRYPOINT resets a CMD this stage did not set
    elif keyword == "EXPOSE":
        ports: dict[str, dict[str, str]] = {}
        for port in expand(instruction.arguments, variables, line).split():
            number, _, protocol = port.partition("/")
            if not number.isdigit() or protocol not in ("", "tcp", "udp", "sctp"):
                raise DockerfileError(line, f"EXPOSE {port}: expected PORT[/tcp|udp|sctp]")
            ports[f"{number}/{protocol or 'tcp'}"] = {}
        config["ExposedPorts"] = {**(config.get("ExposedPorts") or {}), **ports}
    return cmd_set
