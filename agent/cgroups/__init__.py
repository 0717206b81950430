"""cgroup management for containers on unified (v2), legacy (v1) and hybrid hosts.

Stdlib only: the runtime supervisor imports it. Every manager takes the hierarchy root as a
path, so tests run it against a temp directory as well as the real /sys/fs/cgroup.
Kernel reference: Documentation/admin-guide/cgroup-v2.rst and cgroup-v1/*.rst.
"""

from agent.cgroups.base import CgroupManager, CgroupStats, Limits
from agent.cgroups.detect import CgroupMode, NoCgroups, detect_mode, manager_for

__all__ = ["CgroupManager", "CgroupMode", "CgroupStats", "Limits", "NoCgroups", "detect_mode", "manager_for"]
