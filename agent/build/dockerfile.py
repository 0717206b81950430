"""Reading a Dockerfile (pure): instructions with their line numbers, stages, variables.

Follows Docker's reference (docs.docker.com/reference/dockerfile): `#` comments, `\\` line
continuations, instructions case-insensitive, the exec (JSON array) and shell forms of RUN, CMD
and ENTRYPOINT, `ARG` before the first `FROM` for use in `FROM`, `FROM … AS name` stages, and
`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alternative}` in the instructions Docker expands
them in. Every error names the line.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

SUPPORTED = ("FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "CMD", "ENTRYPOINT", "EXPOSE", "LABEL")
EXPANDED = ("FROM", "COPY", "ADD", "ENV", "WORKDIR", "USER", "EXPOSE", "LABEL", "ARG")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class DockerfileError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"Dockerfile:{line}: {message}" if line else f"Dockerfile: {message}")
        self.line = line


@dataclass(frozen=True, slots=True)
class Instruction:
    line: int
    keyword: str  # upper case
    arguments: str  # as written, continuations joined
    flags: dict[str, str] = field(default_factory=dict)  # --from=, --chown=

    @property
    def text(self) -> str:
        flags = "".join(f"--{k}={v} " for k, v in sorted(self.flags.items()))
        return f"{self.keyword} {flags}{self.arguments}".strip()


@dataclass
class Stage:
    index: int
    base: str  # image reference, `scratch`, or an earlier stage's name or index
    name: str
    line: int
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    global_args: list[Instruction]
    stages: list[Stage]

    def stage(self, target: str) -> int:
        """The index of the stage `--target` names (the last one when empty)."""
        if not target:
            return len(self.stages) - 1
        for stage in self.stages:
            if stage.name == target.lower():
                return stage.index
        raise DockerfileError(0, f"--target {target!r}: no stage has that name "
                                 f"({', '.join(s.name for s in self.stages if s.name) or 'no named stages'})")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is dropped, as Docker does
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append((start, (pending + stripped).strip()))
        pending = ""
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def _flags(arguments: str, line: int, allowed: tuple[str, ...]) -> tuple[dict[str, str], str]:
    flags = {}
    while arguments.startswith("--"):
        word, _, rest = arguments.partition(" ")
        name, eq, value = word[2:].partition("=")
        if name not in allowed or not eq:
            expected = ", ".join(f"--{a}=" for a in allowed)
            raise DockerfileError(line, f"unknown flag {word!r} (expected {expected})")
        flags[name] = value
        arguments = rest.strip()
    return flags, arguments


def parse(text: str) -> Dockerfile:
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    for line, content in _logical_lines(text):
        keyword, _, arguments = content.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword not in SUPPORTED:
            hint = " (ONBUILD, HEALTHCHECK, SHELL, VOLUME and STOPSIGNAL are not supported)" \
                if keyword in ("ONBUILD", "HEALTHCHECK", "SHELL", "VOLUME", "STOPSIGNAL", "MAINTAINER") else ""
            raise DockerfileError(line, f"unknown instruction {keyword}{hint}")
        if not arguments:
            raise DockerfileError(line, f"{keyword} needs arguments")
        flags: dict[str, str] = {}
        if keyword in ("COPY", "ADD"):
            flags, arguments = _flags(arguments, line, ("from", "chown") if keyword == "COPY" else ("chown",))
        if keyword == "FROM":
            words = arguments.split()
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
                raise DockerfileError(line, "expected FROM IMAGE [AS NAME]")
            stages.append(Stage(len(stages), words[0], words[2].lower() if len(words) == 3 else "", line))
            continue
        instruction = Instruction(line, keyword, arguments, flags)
        if not stages:
            if keyword != "ARG":
                raise DockerfileError(line, f"{keyword} before the first FROM (only ARG may come first)")
            global_args.append(instruction)
            continue
        stages[-1].instructions.append(instruction)
    if not stages:
        raise DockerfileError(0, "no FROM instruction")
    return Dockerfile(global_args, stages)


def expand(text: str, variables: dict[str, str], line: int) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        value = variables.get(name)
        operator, word = match.group(2), match.group(3) or ""
        if operator == ":-":
            return value if value else word
        if operator == ":+":
            return word if value else ""
        return value or ""

    try:
        return _VARIABLE.sub(substitute, text.replace("\\$", "\0")).replace("\0", "$")
    except re.error as e:  # pragma: no cover - the pattern is fixed
        raise DockerfileError(line, str(e)) from None


def command_form(instruction: Instruction, shell: bool = True) -> list[str]:
    """RUN/CMD/ENTRYPOINT: the exec form (a JSON array) as is, the shell form through /bin/sh -c."""
    text = instruction.arguments
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(part, str) for part in parsed):
            return parsed
        if shell is False:
            raise DockerfileError(instruction.line, f"{instruction.keyword}: not a JSON array of strings")
    return ["/bin/sh", "-c", text]


def key_values(instruction: Instruction, variables: dict[str, str]) -> list[tuple[str, str]]:
    """ENV and LABEL: `K=V K2="V 2"`, or the legacy `K V` form (one pair, the rest of the line)."""
    text = expand(instruction.arguments, variables, instruction.line) \
        if instruction.keyword in EXPANDED else instruction.arguments
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise DockerfileError(instruction.line, f"{instruction.keyword}: {e}") from None
    if words and "=" not in words[0]:
        if len(words) < 2:
            raise DockerfileError(instruction.line, f"{instruction.keyword} {text}: expected KEY=VALUE or KEY VALUE")
        return [(words[0], text.split(None, 1)[1].strip().strip('"'))]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise DockerfileError(instruction.line, f"{instruction.keyword}: {word!r} is not KEY=VALUE")
        pairs.append((key, value))
    return pairs


def sources_and_destination(instruction: Instruction, variables: dict[str, str]) -> tuple[list[str], str]:
    """COPY/ADD: the JSON form or whitespace-separated words; the last is the destination."""
    text = expand(instruction.arguments, variables, instruction.line)
    words: list[str]
    if text.startswith("["):
        try:
            words = json.loads(text)
        except ValueError:
            raise DockerfileError(instruction.line, f"{instruction.keyword}: not a JSON array of strings") from None
    else:
        words = text.split()
    if len(words) < 2:
        raise DockerfileError(instruction.line, f"{instruction.keyword} needs at least one source and a destination")
    return words[:-1], words[-1]
