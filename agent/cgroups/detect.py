"""Which cgroup layout the host has, and the manager for it.

Hybrid hosts (v1 controllers plus a cgroup2 mount at `unified`, as on this project's machines,
where cgroup2 holds only hugetlb) are handled rather than refused: limits go to the v1
hierarchies and the container also joins the cgroup2 hierarchy, as runc does.
"""

from __future__ import annotations

import enum
import os

from agent.cgroups.base import CgroupManager, CgroupStats, Limits, read_text, rmdir_if_empty, write
from agent.cgroups.v1 import SPARE_PREFIX, CgroupV1Manager, find_hierarchies
from agent.cgroups.v2 import CgroupV2Manager


class CgroupMode(enum.Enum):
    UNIFIED = "unified"
    LEGACY = "legacy"
    HYBRID = "hybrid"


def detect_mode(root: str = "/sys/fs/cgroup") -> CgroupMode:
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return CgroupMode.UNIFIED
    if os.path.exists(os.path.join(root, "unified", "cgroup.controllers")):
        return CgroupMode.HYBRID
    return CgroupMode.LEGACY


class HybridManager:
    """v1 for every controller, plus membership in the cgroup2 hierarchy.

    cgroup2 cannot rename a cgroup, so a container whose init waited in a spare (make_spare_holding)
    keeps the spare's name there (`parent/spare-…`): the v1 hierarchies, where its limits and
    statistics are, carry its id. Which cgroup2 directory a container has is remembered here, and
    relearnt from its init's /proc/PID/cgroup by a supervisor that adopts it (`locate`).
    """

    def __init__(self, root: str, parent: str) -> None:
        self._v1 = CgroupV1Manager(root, parent)
        self._v2 = CgroupV2Manager(os.path.join(root, "unified"), parent, delegate_controllers=False)
        self._v2_names: dict[str, str] = {}  # container -> its cgroup2 directory, where that is not its name

    def _v2_name(self, name: str) -> str:
        return self._v2_names.get(name, name)

    def create(self, name: str, limits: Limits) -> None:
        """Makes what is missing: a container restarted by a new supervisor may have its v1
        cgroups but not its cgroup2 one (an empty spare directory is removed at start)."""
        made_v1 = not self._v1.exists(name)
        if made_v1:
            self._v1.create(name, limits)
        try:
            if not self._v2.exists(self._v2_name(name)):
                self._v2_names.pop(name, None)
                self._v2.create(name, limits)
        except BaseException:
            if made_v1:
                self._v1.remove(name)
            raise

    def procs_files(self, name: str) -> list[str]:
        return self._v1.procs_files(name) + self._v2.procs_files(self._v2_name(name))

    def stats(self, name: str) -> CgroupStats:
        return self._v1.stats(name)

    def oom_kills(self, name: str) -> int:
        return self._v1.oom_kills(name)

    def remove(self, name: str) -> None:
        self._v1.remove(name)
        self._v2.remove(self._v2_names.pop(name, name))

    def exists(self, name: str) -> bool:
        return self._v1.exists(name) and self._v2.exists(self._v2_name(name))

    def remove_parent(self) -> None:
        self._v1.remove_parent()
        self.remove_spares()
        self._v2.remove_parent()

    def make_spare(self) -> bool:
        """The v1 hierarchies are renamed; the cgroup2 one, which holds no controller here, is a mkdir."""
        return self._v1.make_spare()

    def spare_count(self) -> int:
        return self._v1.spare_count()

    def make_spare_holding(self, pid: int) -> str:
        spare = self._v1.make_spare_holding(pid)
        try:
            self._v2.create(spare, Limits())
            write(self._v2.procs_files(spare)[0], str(pid))
        except BaseException:
            self._v1.remove(spare)
            self._v2.remove(spare)
            raise
        return spare

    def take_spare(self, spare: str, name: str, limits: Limits) -> bool:
        try:
            if not self._v1.take_spare(spare, name, limits):
                return False
        except BaseException:
            self._v2.remove(spare)
            raise
        self._v2_names[name] = spare
        return True

    def locate(self, name: str, pid: int) -> None:
        for line in read_text(f"/proc/{pid}/cgroup").splitlines():
            if line.startswith("0::"):
                directory = os.path.basename(line[3:])
                if directory.startswith(SPARE_PREFIX):
                    self._v2_names[name] = directory

    def remove_spares(self) -> None:
        """The v1 spares, and the cgroup2 directories named after spares that hold nothing: those
        of pooled inits and of containers that are running are not empty, and stay."""
        self._v1.remove_spares()
        parent = self._v2.parent_path
        for entry in os.listdir(parent) if os.path.isdir(parent) else []:
            if entry.startswith(SPARE_PREFIX) and entry not in self._v2_names.values():
                rmdir_if_empty(os.path.join(parent, entry))


class NoCgroups(RuntimeError):
    """No cgroup hierarchy is mounted: containers would run without limits, so Shoal refuses."""


def manager_for(parent: str, root: str = "/sys/fs/cgroup") -> CgroupManager:
    mode = detect_mode(root)
    if mode is CgroupMode.LEGACY and not find_hierarchies(root):
        raise NoCgroups(f"no cgroup hierarchy is mounted under {root} (a fresh sysfs on /sys hides it, as "
                        "`ip netns exec` does): containers would run without limits")
    if mode is CgroupMode.UNIFIED:
        return CgroupV2Manager(root, parent)
    if mode is CgroupMode.HYBRID:
        return HybridManager(root, parent)
    return CgroupV1Manager(root, parent)
