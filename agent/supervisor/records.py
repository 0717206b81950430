"""The supervisor's durable records, one directory per container under <state>/containers/<id>/.

`run.json` {pid, generation, started_at, start_ticks} is written when a run starts and `exit.json`
{generation, exit_code, oom_killed, finished_at, error} when it ends, each by write-then-rename so
a reader never sees half a record. The agent reads both after its own restart, so exit codes of
runs that ended while it was down are not lost. (No fsync: the records must survive process
crashes, which the page cache guarantees; after a host crash no container is running anyway.)
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any


def container_dir(state_dir: str, container_id: str) -> str:
    return os.path.join(state_dir, "containers", container_id)


def write_json(path: str, data: dict[str, Any]) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        f.write(json.dumps(data))  # dumps: the C encoder (dump to a file is pure Python)
    os.replace(temporary, path)


@dataclass(frozen=True, slots=True)
class Run:
    """A run's record as its start wrote it, with the one it replaced (put back if the start fails)."""

    path: str
    generation: int
    started_at: int
    previous: dict[str, Any] | None

    def undo(self) -> None:
        if self.previous is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        else:
            write_json(self.path, self.previous)


def begin_run(state_dir: str, container_id: str, pid: int, oom_before: int) -> Run:
    """Writes run.json for the container's next run (its generation one past the last)."""
    path = os.path.join(container_dir(state_dir, container_id), "run.json")
    previous = read_json(path)
    run = Run(path, int((previous or {}).get("generation", 0)) + 1, time.time_ns(), previous)
    write_json(path, {"pid": pid, "generation": run.generation, "started_at": run.started_at,
                      "start_ticks": process_start_ticks(pid), "oom_before": oom_before})
    return run


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            data = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def process_start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: tells a live process from a later one that reused its PID."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[19])
