"""cgroup v2 ("unified"): one hierarchy; controllers are enabled per level via cgroup.subtree_control."""

from __future__ import annotations

import contextlib
import os

from agent.cgroups.base import (
    CPU_PERIOD_US,
    CgroupStats,
    Limits,
    kill_and_rmdir,
    read_int,
    read_keyed,
    read_text,
    rmdir_if_empty,
    write,
)

WANTED_CONTROLLERS = ("cpu", "memory", "pids", "io", "cpuset")


def shares_to_weight(shares: int) -> int:
    """Maps v1 cpu.shares (2..262144) onto v2 cpu.weight (1..10000) the way runc and the kernel docs do."""
    return 1 + ((shares - 2) * 9999) // 262142


class CgroupV2Manager:
    """Manages containers in a cgroup2 hierarchy.

    `delegate_controllers` is False on hybrid hosts, where the v1 hierarchies own the controllers
    and the cgroup2 mount only tracks membership.
    """

    def __init__(self, root: str, parent: str, delegate_controllers: bool = True) -> None:
        self._root = root
        self._parent = parent.strip("/")
        self._delegate = delegate_controllers

    @property
    def parent_path(self) -> str:
        return os.path.join(self._root, self._parent)

    def _path(self, name: str) -> str:
        return os.path.join(self.parent_path, name)

    def create(self, name: str, limits: Limits) -> None:
        parent = self.parent_path
        made: list[str] = []
        try:
            if not os.path.isdir(parent):
                os.mkdir(parent)
                made.append(parent)
            if self._delegate:
                self._enable_controllers(self._root)
                self._enable_controllers(parent)
            os.mkdir(self._path(name))
            made.append(self._path(name))
            if self._delegate:
                self._apply(self._path(name), limits)
        except BaseException:
            for directory in reversed(made):
                with contextlib.suppress(OSError):
                    os.rmdir(directory)
            raise

    @staticmethod
    def _enable_controllers(directory: str) -> None:
        available = set(read_text(os.path.join(directory, "cgroup.controllers")).split())
        enabled = set(read_text(os.path.join(directory, "cgroup.subtree_control")).split())
        missing = [c for c in WANTED_CONTROLLERS if c in available and c not in enabled]
        if missing:
            write(os.path.join(directory, "cgroup.subtree_control"), " ".join("+" + c for c in missing))

    @staticmethod
    def _apply(path: str, limits: Limits) -> None:
        if limits.memory_bytes:
            write(os.path.join(path, "memory.max"), str(limits.memory_bytes))
            if os.path.exists(os.path.join(path, "memory.swap.max")):
                write(os.path.join(path, "memory.swap.max"), "0")
        if limits.cpu_millis:
            write(os.path.join(path, "cpu.max"), f"{limits.cpu_quota_us()} {CPU_PERIOD_US}")
        if limits.cpu_shares:
            write(os.path.join(path, "cpu.weight"), str(shares_to_weight(limits.cpu_shares)))
        if limits.pids_limit:
            write(os.path.join(path, "pids.max"), str(limits.pids_limit))

    def procs_files(self, name: str) -> list[str]:
        return [os.path.join(self._path(name), "cgroup.procs")]

    def stats(self, name: str) -> CgroupStats:
        path = self._path(name)
        inactive = read_keyed(os.path.join(path, "memory.stat")).get("inactive_file", 0)
        usage = read_int(os.path.join(path, "memory.current"))
        return CgroupStats(
            cpu_seconds=read_keyed(os.path.join(path, "cpu.stat")).get("usage_usec", 0) / 1e6,
            memory_usage_bytes=max(usage - inactive, 0),
            memory_limit_bytes=read_int(os.path.join(path, "memory.max")),
            pids_current=read_int(os.path.join(path, "pids.current")),
            pids_limit=read_int(os.path.join(path, "pids.max")),
        )

    def oom_kills(self, name: str) -> int:
        return read_keyed(os.path.join(self._path(name), "memory.events")).get("oom_kill", 0)

    def remove(self, name: str) -> None:
        path = self._path(name)
        kill_and_rmdir(path, kill_file=os.path.join(path, "cgroup.kill"))

    def exists(self, name: str) -> bool:
        return os.path.isdir(self._path(name))

    def remove_parent(self) -> None:
        rmdir_if_empty(os.path.join(self._root, self._parent))

    def make_spare(self) -> bool:
        return False  # cgroup v2 refuses to rename a cgroup (no rename in its kernfs operations)

    def make_spare_holding(self, pid: int) -> str:
        return ""

    def take_spare(self, spare: str, name: str, limits: Limits) -> bool:
        return False  # it has none

    def locate(self, name: str, pid: int) -> None:
        pass

    def spare_count(self) -> int:
        return 0

    def remove_spares(self) -> None:
        pass
