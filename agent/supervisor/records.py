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
from typing import Any


def container_dir(state_dir: str, container_id: str) -> str:
    return os.path.join(state_dir, "containers", container_id)


def write_json(path: str, data: dict[str, Any]) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        f.write(json.dumps(data))  # dumps: the C encoder (dump to a file is pure Python)
    os.replace(temporary, path)


def restore_json(path: str, previous: dict[str, Any] | None) -> None:
    """Puts back what a record was before a step that failed (None: there was none)."""
    if previous is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    else:
        write_json(path, previous)


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
