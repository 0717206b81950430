"""Reading app files: YAML, one app per document (`---` between them).

Structure and types are checked here, so that every mistake is reported as
`FILE: document N (NAME): FIELD: what is expected`; the control plane then checks the rules that
need cluster knowledge (and repeats the rest: clients are not trusted). The format is the README's
"App spec" reference.
"""

from __future__ import annotations

import difflib
import shlex
from typing import Any

from shoal.controlplane.v1 import apps_pb2 as pb

from cli.client import CliError
from cli.quantity import parse_cpus, parse_memory, parse_port

EXIT_BAD_INPUT = 2
FIELDS = ("name", "image", "command", "args", "env", "replicas", "resources", "restart", "placement", "labels",
          "pull_policy", "network", "ports")
NETWORKS = ("bridge", "host", "none")
PULL_POLICIES = {"if-not-present": "", "always": "always", "never": "never"}
RESOURCE_FIELDS = ("cpus", "memory", "pids")
PLACEMENT_FIELDS = ("constraints", "spread")
RESTART_KINDS = {"no": pb.AppRestartPolicy.KIND_NO, "on-failure": pb.AppRestartPolicy.KIND_ON_FAILURE,
                 "always": pb.AppRestartPolicy.KIND_ALWAYS}


class AppFileError(CliError):
    def __init__(self, where: str, field: str, expected: str) -> None:
        super().__init__(f"{where}: {field}: {expected}" if field else f"{where}: {expected}", EXIT_BAD_INPUT)


def load_apps(path: str) -> list[pb.AppSpec]:
    import yaml  # here, not at the top: every clusterctl command pays its imports at start-up

    try:
        with open(path, encoding="utf-8") as f:
            documents = list(yaml.safe_load_all(f))
    except FileNotFoundError:
        raise AppFileError(path, "", "no such file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise AppFileError(path, "", f"not valid YAML: {at}{getattr(e, 'problem', None) or e}") from None
    apps: list[pb.AppSpec] = []
    seen: dict[str, int] = {}
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue
        name = document.get("name") if isinstance(document, dict) else None
        where = f"{path}: document {number}" + (f" ({name})" if isinstance(name, str) else "")
        app = parse_app(document, where)
        if app.name in seen:
            raise AppFileError(where, "name", f"{app.name!r} is already used by document {seen[app.name]}")
        seen[app.name] = number
        apps.append(app)
    if not apps:
        raise AppFileError(path, "", "no apps in the file")
    return apps


def _mapping(value: Any, where: str, field: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AppFileError(where, field or "", "expected a mapping of fields")
    for key in value:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known fields: {', '.join(allowed)}"
            raise AppFileError(where, f"{field}.{key}" if field else str(key), f"unknown field{hint}")
    return value


def _string(value: Any, where: str, field: str, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise AppFileError(where, field, "a string is required" if required else "expected a string")
    return value


def _words(value: Any, where: str, field: str) -> list[str]:
    """A list of strings, or one string split like a shell would."""
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value]
    raise AppFileError(where, field, "expected a list of strings or a command line")


def _string_map(value: Any, where: str, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):  # Compose's list form: ["KEY=value", ...]
        pairs = {}
        for index, item in enumerate(value):
            if not isinstance(item, str) or "=" not in item:
                raise AppFileError(where, f"{field}[{index}]", f"{item!r} must be KEY=VALUE")
            key, _, val = item.partition("=")
            pairs[key] = val
        return pairs
    if not isinstance(value, dict):
        raise AppFileError(where, field, "expected a mapping of KEY: value (or a list of KEY=VALUE)")
    for key, val in value.items():
        if isinstance(val, dict | list) or val is None:
            raise AppFileError(where, f"{field}.{key}", "expected a string, number or boolean value")
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}


def _resources(value: Any, where: str) -> pb.AppResources:
    if value is None:
        return pb.AppResources()
    fields = _mapping(value, where, "resources", RESOURCE_FIELDS)
    try:
        cpus = parse_cpus(str(fields["cpus"]), "resources.cpus") if "cpus" in fields else 0
        memory = parse_memory(str(fields["memory"]), "resources.memory") if "memory" in fields else 0
    except ValueError as e:
        raise AppFileError(where, "", str(e)) from None
    pids = fields.get("pids", 0)
    if isinstance(pids, bool) or not isinstance(pids, int) or pids < 0:
        raise AppFileError(where, "resources.pids", "a whole number, 0 or more")
    return pb.AppResources(cpu_millis=cpus, memory_bytes=memory, pids_limit=pids)


def _restart(value: Any, where: str) -> pb.AppRestartPolicy:
    text = "always" if value is None else value
    kind, _, retries = str(text).partition(":")
    if not isinstance(text, str) or kind not in RESTART_KINDS or (retries and not retries.isdigit()):
        raise AppFileError(where, "restart", f"{text!r}: expected no, always or on-failure[:max-retries]")
    return pb.AppRestartPolicy(kind=RESTART_KINDS[kind], max_retries=int(retries or 0))


def _placement(value: Any, where: str) -> pb.AppPlacement:
    if value is None:
        return pb.AppPlacement(spread="node")
    fields = _mapping(value, where, "placement", PLACEMENT_FIELDS)
    constraints = fields.get("constraints", [])
    if isinstance(constraints, str):
        constraints = [constraints]
    if not isinstance(constraints, list) or not all(isinstance(c, str) for c in constraints):
        raise AppFileError(where, "placement.constraints", "expected a list of `node.labels.KEY == VALUE` strings")
    return pb.AppPlacement(constraints=constraints,
                           spread=_string(fields.get("spread"), where, "placement.spread") or "node")


def parse_app(document: Any, where: str) -> pb.AppSpec:
    fields = _mapping(document, where, "", FIELDS)
    replicas = fields.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise AppFileError(where, "replicas", f"{replicas!r}: a whole number, 0 or more")
    return pb.AppSpec(
        name=_string(fields.get("name"), where, "name", required=True),
        image=_string(fields.get("image"), where, "image", required=True),
        command=_words(fields.get("command"), where, "command"),
        args=_words(fields.get("args"), where, "args"),
        env=_string_map(fields.get("env"), where, "env"),
        replicas=replicas,
        resources=_resources(fields.get("resources"), where),
        restart=_restart(fields.get("restart"), where),
        placement=_placement(fields.get("placement"), where),
        labels=_string_map(fields.get("labels"), where, "labels"),
        pull_policy=_pull_policy(fields.get("pull_policy"), where),
        network=_network(fields.get("network"), where),
        ports=_ports(fields.get("ports"), where),
    )


def _network(value: Any, where: str) -> str:
    if value is None:
        return ""
    if value not in NETWORKS:
        raise AppFileError(where, "network", f"{value!r}: expected bridge (the default), host or none")
    return "" if value == "bridge" else str(value)


def _ports(value: Any, where: str) -> list[pb.AppPort]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AppFileError(where, "ports", 'expected a list such as ["8080:80", "53:53/udp"]')
    ports = []
    for index, item in enumerate(value):
        if not isinstance(item, (str, int)) or isinstance(item, bool):
            raise AppFileError(where, f"ports[{index}]", f"{item!r}: expected a string such as \"8080:80\"")
        try:
            host, container, protocol = parse_port(str(item))
        except ValueError as e:
            raise AppFileError(where, f"ports[{index}]", str(e)) from None
        ports.append(pb.AppPort(host_port=host, container_port=container, protocol=protocol))
    return ports


def _pull_policy(value: Any, where: str) -> str:
    if value is None:
        return ""
    if value not in PULL_POLICIES:
        raise AppFileError(where, "pull_policy", f"{value!r}: expected if-not-present, always or never")
    return PULL_POLICIES[value]
