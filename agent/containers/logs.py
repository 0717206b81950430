"""Reading a container's CRI-format log files (written by agent/supervisor/logs.py): tail and follow."""

from __future__ import annotations

import calendar
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO

FOLLOW_POLL = 0.05


@dataclass(frozen=True, slots=True)
class LogLine:
    stream: str  # stdout | stderr
    time_ns: int
    data: bytes  # ends with b"\n" when the line was complete


def parse_time(stamp: bytes) -> int:
    seconds_part, _, fraction = stamp.rstrip(b"Z").partition(b".")
    seconds = calendar.timegm(time.strptime(seconds_part.decode(), "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int(fraction.ljust(9, b"0")[:9] or b"0")


def parse_line(raw: bytes) -> LogLine | None:
    """None for what is not a log line: the torn end of a file whose writer was killed mid-write
    would otherwise end every reading of the container's logs."""
    parts = raw.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    stamp, stream, tag = parts[0], parts[1], parts[2]
    data = parts[3] if len(parts) == 4 else b""
    try:
        return LogLine(stream.decode(), parse_time(stamp), data + b"\n" if tag == b"F" else data)
    except (ValueError, UnicodeDecodeError):
        return None


def log_files(path: str) -> list[str]:
    """Rotated files oldest first, then the current one."""
    rotated = sorted((f for f in os.listdir(os.path.dirname(path)) if f.startswith(os.path.basename(path) + ".")
                      and f.rsplit(".", 1)[-1].isdigit()), key=lambda f: -int(f.rsplit(".", 1)[-1]))
    return [os.path.join(os.path.dirname(path), f) for f in rotated] + ([path] if os.path.exists(path) else [])


def _open_all(path: str) -> list[tuple[str, BinaryIO]]:
    """Opens every file first: an open file keeps its content however the writer rotates meanwhile."""
    opened: list[tuple[str, BinaryIO]] = []
    for name in log_files(path):
        try:
            opened.append((name, open(name, "rb")))  # noqa: SIM115 — closed by the caller
        except FileNotFoundError:
            continue  # rotated away between listing and opening
    return opened


def read_tail(path: str, tail: int) -> tuple[list[LogLine], BinaryIO | None]:
    """The last `tail` lines (all when negative), and the current file left open at its end for follow."""
    lines: deque[LogLine] = deque(maxlen=tail if tail >= 0 else None)
    current = None
    for name, handle in _open_all(path):
        for raw in handle:
            if raw.endswith(b"\n"):
                parsed = parse_line(raw)
                if parsed:
                    lines.append(parsed)
        if name == path:
            current = handle
        else:
            handle.close()
    return list(lines), current


async def follow(path: str, handle: BinaryIO | None, active: Callable[[], bool],
                 changed: Callable[[float], Awaitable[None]]) -> AsyncIterator[list[LogLine]]:
    """New lines after what read_tail returned, until `active()` turns false and the files are drained.

    Between polls it awaits `changed(timeout)`, which returns early when the container's state
    changes, so a follower (an attached `run`) ends as soon as the container exits.

    The followed file stays open, so after a rotation its remaining lines are still read; then the
    new file (a different inode at `path`) is followed from its start.
    """
    pending = b""
    try:
        while True:
            still_active = active()  # read before draining: no line written before the exit is missed
            data = handle.read() if handle else b""
            if handle is None or _rotated(path, handle):
                if handle is not None:
                    data += handle.read()  # what the writer added after the read above, then rotated
                    handle.close()
                try:
                    handle = open(path, "rb")  # noqa: SIM115
                except FileNotFoundError:
                    handle = None
                else:
                    data += handle.read()
            batch: list[LogLine] = []
            if data:
                *complete, pending = (pending + data).split(b"\n")
                batch = [p for p in (parse_line(raw) for raw in complete) if p]
            if batch:
                yield batch
            elif not still_active:
                return
            else:
                await changed(FOLLOW_POLL)
    finally:
        if handle is not None:
            handle.close()


def _rotated(path: str, handle: BinaryIO) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False
