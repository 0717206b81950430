"""Container output to files, in the CRI log format, with size-based rotation.

Each line: `<RFC 3339 time, ns> <stdout|stderr> <F|P> <bytes>\n` (F: a complete line; P: part of
a longer line or an unterminated tail). It is the format Kubernetes' kubelet reads, so operators'
tools understand it, and it keeps raw bytes without escaping.
Rotation: when the file passes max_bytes it becomes `.1` (older ones shift up to max_files - 1).
"""

from __future__ import annotations

import os
import time

MAX_PARTIAL = 16 * 1024  # a line longer than this is written in P pieces


def timestamp(ns: int) -> bytes:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z").encode()


class LogFile:
    """One container's log file; shared by its stdout and stderr streams."""

    def __init__(self, path: str, max_bytes: int, max_files: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_files = max(max_files, 1)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, stream: bytes, pieces: list[tuple[bytes, bool]]) -> None:
        now = timestamp(time.time_ns())
        out = b"".join(b"%s %s %s %s\n" % (now, stream, b"F" if complete else b"P", data)
                       for data, complete in pieces)
        os.write(self._fd, out)
        self._size += len(out)
        if self._size >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_files == 1:
            os.truncate(self.path, 0)
        else:
            for index in range(self.max_files - 1, 0, -1):
                older = f"{self.path}.{index}"
                newer = self.path if index == 1 else f"{self.path}.{index - 1}"
                if os.path.exists(newer):
                    os.replace(newer, older)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = 0

    def close(self) -> None:
        os.close(self._fd)


class LineSplitter:
    """Turns the chunks read from one pipe into complete lines plus bounded partial pieces."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[tuple[bytes, bool]]:
        data = self._pending + chunk
        *lines, rest = data.split(b"\n")
        pieces = [(line, True) for line in lines]
        while len(rest) > MAX_PARTIAL:
            pieces.append((rest[:MAX_PARTIAL], False))
            rest = rest[MAX_PARTIAL:]
        self._pending = rest
        return pieces

    def flush(self) -> list[tuple[bytes, bool]]:
        """At EOF: an unterminated tail is written as a partial piece."""
        rest, self._pending = self._pending, b""
        return [(rest, False)] if rest else []
