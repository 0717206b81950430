"""What every cgroup manager offers, and the file helpers they share."""

from __future__ import annotations

import contextlib
import errno
import os
import time
from dataclasses import dataclass
from typing import Protocol

CPU_PERIOD_US = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Resource limits; 0 means "not set" for every field."""

    memory_bytes: int = 0
    cpu_millis: int = 0
    cpu_shares: int = 0
    pids_limit: int = 0

    def cpu_quota_us(self) -> int:
        return self.cpu_millis * CPU_PERIOD_US // 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class CgroupStats:
    cpu_seconds: float
    memory_usage_bytes: int
    memory_limit_bytes: int
    pids_current: int
    pids_limit: int


class CgroupManager(Protocol):
    """One container's cgroup, named relative to the manager's parent, in every hierarchy."""

    def create(self, name: str, limits: Limits) -> None:
        """Makes the cgroup with its limits; on failure leaves nothing behind."""

    def procs_files(self, name: str) -> list[str]:
        """The `cgroup.procs` files a process writes "0" to in order to join the cgroup everywhere."""

    def stats(self, name: str) -> CgroupStats: ...

    def oom_kills(self, name: str) -> int:
        """How many processes the kernel's OOM killer has killed in this cgroup."""

    def remove(self, name: str) -> None:
        """Kills whatever is left in the cgroup and removes it; missing cgroups are fine."""

    def exists(self, name: str) -> bool: ...

    def remove_parent(self) -> None:
        """Removes the parent cgroup once no container cgroup is left in it (the supervisor's shutdown)."""

    def make_spare(self) -> bool:
        """Makes one cgroup ahead, which the next create renames; False where cgroups cannot be
        renamed (cgroup v2), and nothing is made."""

    def spare_count(self) -> int: ...

    def make_spare_holding(self, pid: int) -> str:
        """Makes a spare cgroup with the process in it and returns its name: a pooled init waits
        in it, so that its container's create renames the cgroup instead of moving the init (a
        move waits out an RCU grace period after a quiet spell: 5-10 ms). "" where cgroups cannot
        be renamed (v2), and nothing is made. On failure nothing is left and the process, if it
        got into any cgroup, is killed."""

    def take_spare(self, spare: str, name: str, limits: Limits) -> bool:
        """The spare of make_spare_holding becomes the cgroup `name`, with its limits. False, and
        nothing done, when `name` exists already (a container restarted, or created under another
        supervisor, keeps its cgroups: the process is moved into them instead). On failure the
        cgroup is removed and its process killed."""

    def locate(self, name: str, pid: int) -> None:
        """Learns where a running container's cgroup is from its init (a supervisor that adopts
        it): on a hybrid host its cgroup2 directory keeps the name of the spare it came from."""

    def remove_spares(self) -> None:
        """Removes the spare cgroups, this manager's and any a stopped supervisor left (never joined)."""


def rmdir_if_empty(path: str) -> None:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
            raise


def read_text(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default


def read_int(path: str, default: int = 0) -> int:
    text = read_text(path)
    if not text or text == "max":
        return default
    return int(text.split()[0])


def read_keyed(path: str) -> dict[str, int]:
    """Parses flat-keyed files such as memory.stat, memory.events and memory.oom_control."""
    values: dict[str, int] = {}
    for line in read_text(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def kill_and_rmdir(path: str, kill_file: str | None = None) -> None:
    """Kills every process left in the cgroup directory, then removes it.

    rmdir(2) answers EBUSY until the killed processes have been reaped, so it is retried briefly.
    """
    if not os.path.isdir(path):
        return
    for attempt in range(200):
        if kill_file and os.path.exists(kill_file):
            write(kill_file, "1")
        else:
            for pid in read_text(os.path.join(path, "cgroup.procs")).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or attempt == 199:
                raise
            time.sleep(0.005)
