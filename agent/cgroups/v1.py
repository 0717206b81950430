"""cgroup v1 ("legacy"): one hierarchy per controller (or per co-mounted group of controllers)."""

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

# Docker's default device allow-list (cgroup-v1/devices.rst): mknod anything, use only the basics.
DEFAULT_DEVICE_RULES = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",  # null zero full random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm",  # tty console ptmx pts/*
)

UNLIMITED_MEMORY = 1 << 62  # v1 reports "no limit" as a page-rounded LONG_MAX
SPARE_PREFIX = "spare-"  # cgroups made ahead; container cgroups are named by 64-character ids


def find_hierarchies(root: str) -> dict[str, str]:
    """Maps each v1 controller (and `name=` hierarchy) to its mount directory under root.

    Co-mounted controllers (`cpu,cpuacct`) share one directory; the per-controller symlinks
    systemd makes are skipped so each hierarchy is joined once. The cgroup2 mount of a hybrid
    host (`unified`) is not a v1 hierarchy.
    """
    found: dict[str, str] = {}
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        if entry == "unified" or os.path.islink(path) or not os.path.isfile(os.path.join(path, "tasks")):
            continue
        for controller in entry.split(","):
            found[controller] = path
    return found


class CgroupV1Manager:
    def __init__(self, root: str, parent: str) -> None:
        self._hierarchies = find_hierarchies(root)
        self._parent = parent.strip("/")
        self._parent_devices_set = False
        self._spares: list[str] = []

    def _path(self, controller: str, name: str) -> str | None:
        base = self._hierarchies.get(controller)
        return os.path.join(base, self._parent, name) if base else None

    def _dirs(self, name: str) -> list[str]:
        return sorted({os.path.join(base, self._parent, name) for base in self._hierarchies.values()})

    def create(self, name: str, limits: Limits) -> None:
        if self._spares and self._take_spare(self._spares.pop(), name):
            try:
                self._apply(name, limits)
            except BaseException:
                self.remove(name)
                raise
            return
        made = self._make(name)
        try:
            self._apply(name, limits)
        except BaseException:
            _remove_made(made)
            raise

    def _make(self, name: str) -> list[str]:
        """mkdir in every hierarchy (the parents first); returns what it made, or makes nothing."""
        made: list[str] = []
        directories = self._dirs(name)
        devices_parent = os.path.dirname(self._path("devices", name) or "")
        try:
            for level in [os.path.dirname(d) for d in directories] + directories:
                if not os.path.isdir(level):
                    os.mkdir(level)
                    made.append(level)
                    self._inherit_cpuset(level)
                if level == devices_parent:
                    self._parent_devices_set = self._parent_devices_set or self._restrict_parent_devices(level)
        except BaseException:
            _remove_made(made)
            raise
        return made

    # ---- spares: a create that renames instead of making ---------------------------------------
    def make_spare(self) -> bool:
        """v1 renames a cgroup within its parent (cgroup1_rename): nine renames took 0.11 ms here,
        against 0.87 ms to make the cgroups and write their settings."""
        name = SPARE_PREFIX + os.urandom(6).hex()
        self._make(name)
        self._spares.append(name)
        return True

    def spare_count(self) -> int:
        return len(self._spares)

    def _take_spare(self, spare: str, name: str) -> bool:
        """Renames the spare to name in every hierarchy; on a failure renames back, removes the
        spare and answers False (the caller makes the cgroup instead)."""
        renamed: list[str] = []
        try:
            for base in sorted(set(self._hierarchies.values())):
                os.rename(os.path.join(base, self._parent, spare), os.path.join(base, self._parent, name))
                renamed.append(base)
            return True
        except OSError:
            for base in renamed:
                with contextlib.suppress(OSError):
                    os.rename(os.path.join(base, self._parent, name), os.path.join(base, self._parent, spare))
            for directory in self._dirs(spare):
                rmdir_if_empty(directory)
            return False

    def make_spare_holding(self, pid: int) -> str:
        """A spare cgroup with the process already in it (a pooled init waits there): its create
        is then a rename, with no move at all. On failure nothing is left and the process, if it
        got in anywhere, is killed."""
        name = SPARE_PREFIX + os.urandom(6).hex()
        made = self._make(name)
        try:
            for path in self.procs_files(name):
                write(path, str(pid))
        except BaseException:
            self.remove(name)
            _remove_made(made)
            raise
        return name

    def take_spare(self, spare: str, name: str, limits: Limits) -> bool:
        """The spare of make_spare_holding becomes the cgroup `name`, with its limits; False (and
        nothing done) when `name` exists already. On failure the cgroup is removed (under whichever
        name it has) and its process killed."""
        if self.exists(name):
            return False
        if not self._take_spare(spare, name):
            self.remove(spare)
            raise OSError(f"renaming cgroup {spare} to {name} failed")
        if not self._parent_devices_set:  # made by another process (the zygote): look at the parent
            devices = self._path("devices", name)
            self._parent_devices_set = bool(devices) and _holds_device_rules(os.path.dirname(devices or ""))
        try:
            self._apply(name, limits)
        except BaseException:
            self.remove(name)
            raise
        return True

    def locate(self, name: str, pid: int) -> None:
        pass  # every hierarchy names the cgroup after the container

    def remove_spares(self) -> None:
        for base in set(self._hierarchies.values()):
            parent = os.path.join(base, self._parent)
            for entry in os.listdir(parent) if os.path.isdir(parent) else []:
                if entry.startswith(SPARE_PREFIX):
                    rmdir_if_empty(os.path.join(parent, entry))
        self._spares.clear()

    def _inherit_cpuset(self, directory: str) -> None:
        """A v1 cpuset cgroup starts with no CPUs and no memory nodes and refuses tasks until set."""
        cpuset = self._hierarchies.get("cpuset")
        if not cpuset or not directory.startswith(cpuset + os.sep):
            return
        parent = os.path.dirname(directory)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not read_text(os.path.join(directory, name)):
                write(os.path.join(directory, name), read_text(os.path.join(parent, name)))

    def _restrict_parent_devices(self, parent: str) -> bool:
        """Whether the parent holds the device allow-list, written there if it has no child yet
        (the kernel refuses to change the default of a cgroup with children). A v1 devices cgroup
        starts with a copy of its parent's rules (devcgroup_online), which saves each container
        twelve writes; a parent left without them (by an older Shoal, say) and holding
        containers still works, with the rules written per container."""
        if _holds_device_rules(parent):
            return True
        if any(entry.is_dir() for entry in os.scandir(parent)):
            return False
        write(os.path.join(parent, "devices.deny"), "a")
        for rule in DEFAULT_DEVICE_RULES:
            write(os.path.join(parent, "devices.allow"), rule)
        return True

    def _apply(self, name: str, limits: Limits) -> None:
        memory = self._path("memory", name)
        if memory and limits.memory_bytes:
            write(os.path.join(memory, "memory.limit_in_bytes"), str(limits.memory_bytes))
        cpu = self._path("cpu", name)
        if cpu and limits.cpu_millis:
            write(os.path.join(cpu, "cpu.cfs_period_us"), str(CPU_PERIOD_US))
            write(os.path.join(cpu, "cpu.cfs_quota_us"), str(limits.cpu_quota_us()))
        if cpu and limits.cpu_shares:
            write(os.path.join(cpu, "cpu.shares"), str(limits.cpu_shares))
        pids = self._path("pids", name)
        if pids and limits.pids_limit:
            write(os.path.join(pids, "pids.max"), str(limits.pids_limit))
        devices = self._path("devices", name)
        if devices and not self._parent_devices_set:
            write(os.path.join(devices, "devices.deny"), "a")
            for rule in DEFAULT_DEVICE_RULES:
                write(os.path.join(devices, "devices.allow"), rule)

    def procs_files(self, name: str) -> list[str]:
        return [os.path.join(directory, "cgroup.procs") for directory in self._dirs(name)]

    def stats(self, name: str) -> CgroupStats:
        memory = self._path("memory", name) or ""
        cpuacct = self._path("cpuacct", name) or ""
        pids = self._path("pids", name) or ""
        usage = read_int(os.path.join(memory, "memory.usage_in_bytes"))
        inactive = read_keyed(os.path.join(memory, "memory.stat")).get("total_inactive_file", 0)
        limit = read_int(os.path.join(memory, "memory.limit_in_bytes"))
        return CgroupStats(
            cpu_seconds=read_int(os.path.join(cpuacct, "cpuacct.usage")) / 1e9,
            memory_usage_bytes=max(usage - inactive, 0),
            memory_limit_bytes=0 if limit >= UNLIMITED_MEMORY else limit,
            pids_current=read_int(os.path.join(pids, "pids.current")),
            pids_limit=read_int(os.path.join(pids, "pids.max")),
        )

    def oom_kills(self, name: str) -> int:
        memory = self._path("memory", name)
        return read_keyed(os.path.join(memory, "memory.oom_control")).get("oom_kill", 0) if memory else 0

    def remove(self, name: str) -> None:
        for directory in self._dirs(name):
            kill_and_rmdir(directory)

    def exists(self, name: str) -> bool:
        return any(os.path.isdir(directory) for directory in self._dirs(name))

    def remove_parent(self) -> None:
        self.remove_spares()
        for base in set(self._hierarchies.values()):
            rmdir_if_empty(os.path.join(base, self._parent))


def _remove_made(made: list[str]) -> None:
    """Undoes a half-made cgroup: what was made, the deepest first."""
    for directory in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def _holds_device_rules(directory: str) -> bool:
    return set(read_text(os.path.join(directory, "devices.list")).splitlines()) == set(DEFAULT_DEVICE_RULES)
