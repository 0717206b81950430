"""Which cgroup layout the host has, and the manager for it.

Hybrid hosts (v1 controllers plus a cgroup2 mount at `unified`, as on this project's machines,
where cgroup2 holds only hugetlb) are handled rather than refused: limits go to the v1
hierarchies and the container also joins the cgroup2 hierarchy, as runc does.
"""

from __future__ import annotations

import enum
import os

from agent.cgroups.base import CgroupManager, CgroupStats, Limits
from agent.cgroups.v1 import CgroupV1Manager, find_hierarchies
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
    """v1 for every controller, plus membership in the cgroup2 hierarchy."""

    def __init__(self, root: str, parent: str) -> None:
        self._v1 = CgroupV1Manager(root, parent)
        self._v2 = CgroupV2Manager(os.path.join(root, "unified"), parent, delegate_controllers=False)

    def create(self, name: str, limits: Limits) -> None:
        self._v1.create(name, limits)
        try:
            self._v2.create(name, limits)
        except BaseException:
            self._v1.remove(name)
            raise

    def procs_files(self, name: str) -> list[str]:
        return self._v1.procs_files(name) + self._v2.procs_files(name)

    def stats(self, name: str) -> CgroupStats:
        return self._v1.stats(name)

    def oom_kills(self, name: str) -> int:
        return self._v1.oom_kills(name)

    def remove(self, name: str) -> None:
        self._v1.remove(name)
        self._v2.remove(name)

    def exists(self, name: str) -> bool:
        return self._v1.exists(name) or self._v2.exists(name)

    def remove_parent(self) -> None:
        self._v1.remove_parent()
        self._v2.remove_parent()

    def make_spare(self) -> bool:
        """The v1 hierarchies are renamed; the cgroup2 one, which holds no controller here, is a mkdir."""
        return self._v1.make_spare()

    def spare_count(self) -> int:
        return self._v1.spare_count()

    def remove_spares(self) -> None:
        self._v1.remove_spares()


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
