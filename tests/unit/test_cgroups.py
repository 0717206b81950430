"""The cgroup managers against fake hierarchies in temp dirs (no root: plain files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.cgroups import CgroupMode, Limits, detect_mode, manager_for
from agent.cgroups.v1 import find_hierarchies
from agent.cgroups.v2 import shares_to_weight

V1 = ["cpu,cpuacct", "memory", "pids", "cpuset", "devices", "systemd"]


def fake_v1(root: Path, hybrid: bool = False) -> None:
    for name in V1:
        (root / name).mkdir()
        (root / name / "tasks").write_text("")
    (root / "cpu").symlink_to("cpu,cpuacct")
    (root / "cpuset" / "cpuset.cpus").write_text("0-3\n")
    (root / "cpuset" / "cpuset.mems").write_text("0\n")
    if hybrid:
        (root / "unified").mkdir()
        (root / "unified" / "cgroup.controllers").write_text("hugetlb\n")


def test_detection(tmp_path: Path) -> None:
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "v1").mkdir()
    fake_v1(tmp_path / "v1")
    (tmp_path / "hy").mkdir()
    fake_v1(tmp_path / "hy", hybrid=True)
    assert detect_mode(str(tmp_path / "v2")) is CgroupMode.UNIFIED
    assert detect_mode(str(tmp_path / "v1")) is CgroupMode.LEGACY
    assert detect_mode(str(tmp_path / "hy")) is CgroupMode.HYBRID


def test_v1_hierarchies_skip_symlinks_and_unified(tmp_path: Path) -> None:
    fake_v1(tmp_path, hybrid=True)
    found = find_hierarchies(str(tmp_path))
    assert found["cpu"] == found["cpuacct"] == str(tmp_path / "cpu,cpuacct")
    assert "unified" not in found and set(found) >= {"memory", "pids", "systemd"}


def test_v1_create_writes_limits_and_inherits_cpuset(tmp_path: Path) -> None:
    fake_v1(tmp_path, hybrid=True)
    manager = manager_for("shoal", root=str(tmp_path))
    manager.create("c1", Limits(memory_bytes=64 << 20, cpu_millis=500, cpu_shares=512, pids_limit=9))
    assert (tmp_path / "memory/shoal/c1/memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (tmp_path / "cpu,cpuacct/shoal/c1/cpu.cfs_quota_us").read_text() == "50000"
    assert (tmp_path / "cpu,cpuacct/shoal/c1/cpu.shares").read_text() == "512"
    assert (tmp_path / "pids/shoal/c1/pids.max").read_text() == "9"
    assert (tmp_path / "cpuset/shoal/cpuset.cpus").read_text() == "0-3"
    assert (tmp_path / "cpuset/shoal/c1/cpuset.mems").read_text() == "0"
    # The device rules go on the parent once; a v1 devices cgroup starts with a copy of its parent's.
    assert (tmp_path / "devices/shoal/devices.allow").read_text() == "c 136:* rwm"  # the last rule written
    assert not (tmp_path / "devices/shoal/c1/devices.allow").exists()
    procs = manager.procs_files("c1")
    assert str(tmp_path / "unified/shoal/c1/cgroup.procs") in procs  # hybrid: joins cgroup2 as well
    assert len(procs) == len(set(os.path.dirname(os.path.dirname(os.path.dirname(p))) for p in procs))


def test_v1_device_rules_go_per_container_under_a_parent_that_has_other_rules_and_children(
        tmp_path: Path) -> None:
    """The kernel refuses to change the default of a devices cgroup with children: a parent left
    without Shoal's rules while holding containers keeps them, and each container gets the rules."""
    fake_v1(tmp_path)
    (tmp_path / "devices/shoal/older").mkdir(parents=True)
    (tmp_path / "devices/shoal/devices.list").write_text("a *:* rwm\n")
    manager_for("shoal", root=str(tmp_path)).create("c1", Limits())
    assert not (tmp_path / "devices/shoal/devices.deny").exists()
    assert (tmp_path / "devices/shoal/c1/devices.deny").read_text() == "a"


def test_v1_stats_and_oom(tmp_path: Path) -> None:
    fake_v1(tmp_path)
    manager = manager_for("shoal", root=str(tmp_path))
    manager.create("c1", Limits())
    base = tmp_path / "memory/shoal/c1"
    (base / "memory.usage_in_bytes").write_text("3000\n")
    (base / "memory.stat").write_text("cache 10\ntotal_inactive_file 1000\n")
    (base / "memory.limit_in_bytes").write_text(str(1 << 63) + "\n")
    (base / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (tmp_path / "cpu,cpuacct/shoal/c1/cpuacct.usage").write_text("2500000000\n")
    (tmp_path / "pids/shoal/c1/pids.current").write_text("4\n")
    (tmp_path / "pids/shoal/c1/pids.max").write_text("max\n")
    stats = manager.stats("c1")
    assert (stats.cpu_seconds, stats.memory_usage_bytes, stats.memory_limit_bytes) == (2.5, 2000, 0)
    assert (stats.pids_current, stats.pids_limit) == (4, 0)
    assert manager.oom_kills("c1") == 2


def test_v2_enables_controllers_and_writes_limits(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    manager = manager_for("shoal", root=str(tmp_path))
    (tmp_path / "shoal").mkdir()
    (tmp_path / "shoal" / "cgroup.controllers").write_text("cpu memory pids\n")
    manager.create("c1", Limits(memory_bytes=1 << 30, cpu_millis=1500, cpu_shares=1024, pids_limit=5))
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu +memory +pids +io +cpuset"
    assert (tmp_path / "shoal/c1/memory.max").read_text() == str(1 << 30)
    assert (tmp_path / "shoal/c1/cpu.max").read_text() == "150000 100000"
    assert (tmp_path / "shoal/c1/cpu.weight").read_text() == str(shares_to_weight(1024))
    (tmp_path / "shoal/c1/memory.events").write_text("low 0\noom 1\noom_kill 1\n")
    assert manager.oom_kills("c1") == 1


def test_v1_spares_are_made_ahead_and_renamed_at_create(tmp_path: Path) -> None:
    fake_v1(tmp_path, hybrid=True)
    manager = manager_for("shoal", root=str(tmp_path))
    assert manager.make_spare() and manager.make_spare() and manager.spare_count() == 2
    [spare, _] = sorted(p.name for p in (tmp_path / "memory/shoal").iterdir() if p.name.startswith("spare-"))
    assert (tmp_path / "cpuset/shoal" / spare / "cpuset.cpus").read_text() == "0-3"  # ready to be joined
    manager.create("c1", Limits(memory_bytes=64 << 20))
    assert manager.spare_count() == 1
    assert (tmp_path / "memory/shoal/c1/memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (tmp_path / "cpuset/shoal/c1/cpuset.cpus").read_text() == "0-3"
    assert (tmp_path / "unified/shoal/c1").is_dir()  # cgroup2 cannot rename: made at create
    assert len([p for p in (tmp_path / "pids/shoal").iterdir() if p.name.startswith("spare-")]) == 1
    manager.remove_spares()  # also what a new supervisor does with a stopped one's
    # (A fake cpuset directory holds files, which rmdir on a real cgroupfs does not mind.)
    assert not any(p.name.startswith("spare-") for h in ("memory", "pids") for p in (tmp_path / h / "shoal").iterdir())


def test_v1_a_spare_that_cannot_be_renamed_is_dropped_and_the_cgroup_made(tmp_path: Path) -> None:
    fake_v1(tmp_path)
    manager = manager_for("shoal", root=str(tmp_path))
    manager.make_spare()
    [spare] = [p.name for p in (tmp_path / "pids/shoal").iterdir()]
    (tmp_path / "pids/shoal" / spare).rmdir()  # gone in one hierarchy: its rename fails
    manager.create("c1", Limits(pids_limit=3))
    assert (tmp_path / "pids/shoal/c1/pids.max").read_text() == "3"
    assert sorted(p.name for p in (tmp_path / "memory/shoal").iterdir()) == ["c1"]


def test_v2_has_no_spares(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    manager = manager_for("shoal", root=str(tmp_path))
    assert manager.make_spare() is False and manager.spare_count() == 0


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (1024, 39), (262144, 10000)])
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert shares_to_weight(shares) == weight


def test_failed_create_leaves_nothing(tmp_path: Path) -> None:
    fake_v1(tmp_path)
    (tmp_path / "pids" / "shoal").mkdir()
    (tmp_path / "pids" / "shoal" / "c1").mkdir()
    (tmp_path / "pids" / "shoal" / "c1" / "pids.max").mkdir()  # writing the limit will fail
    manager = manager_for("shoal", root=str(tmp_path))
    with pytest.raises(OSError):
        manager.create("c1", Limits(pids_limit=3))
    assert not (tmp_path / "memory" / "shoal").exists()


def test_no_hierarchy_at_all_is_refused(tmp_path: Path) -> None:
    from agent.cgroups import NoCgroups

    with pytest.raises(NoCgroups, match="containers would run without limits"):
        manager_for("shoal", root=str(tmp_path))


NO_SUCH_PID = 4194304 + 7  # beyond pid_max: a kill in a cleanup finds nothing


def test_hybrid_a_spare_holding_a_process_becomes_the_container_cgroup(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pooled init waits in a spare of its own; the create renames the v1 cgroups, where the
    limits go, and the cgroup2 directory (no rename there) keeps the spare's name."""
    fake_v1(tmp_path, hybrid=True)
    manager = manager_for("shoal", root=str(tmp_path))
    spare = manager.make_spare_holding(NO_SUCH_PID)
    assert spare.startswith("spare-")
    for hierarchy in ("memory", "pids", "cpu,cpuacct", "systemd", "unified"):
        assert (tmp_path / hierarchy / "shoal" / spare / "cgroup.procs").read_text() == str(NO_SUCH_PID)
    assert manager.spare_count() == 0  # not one for the supervisor's own creates
    assert manager.take_spare(spare, "c1", Limits(memory_bytes=32 << 20, pids_limit=5))
    assert (tmp_path / "memory/shoal/c1/memory.limit_in_bytes").read_text() == str(32 << 20)
    assert (tmp_path / "pids/shoal/c1/pids.max").read_text() == "5"
    assert not (tmp_path / "memory/shoal" / spare).exists() and (tmp_path / "unified/shoal" / spare).is_dir()
    assert str(tmp_path / "unified/shoal" / spare / "cgroup.procs") in manager.procs_files("c1")
    assert manager.exists("c1")
    # A new supervisor learns the cgroup2 directory from the init's /proc/PID/cgroup.
    fresh = manager_for("shoal", root=str(tmp_path))
    assert str(tmp_path / "unified/shoal/c1/cgroup.procs") in fresh.procs_files("c1") and not fresh.exists("c1")
    monkeypatch.setattr("agent.cgroups.detect.read_text",
                        lambda path: f"4:memory:/shoal/c1\n0::/shoal/{spare}\n" if path == "/proc/42/cgroup" else "")
    fresh.locate("c1", 42)
    assert str(tmp_path / "unified/shoal" / spare / "cgroup.procs") in fresh.procs_files("c1") and fresh.exists("c1")


def test_hybrid_a_restarted_container_gets_back_a_missing_cgroup2_directory(tmp_path: Path) -> None:
    """A new supervisor removes empty spare-named cgroup2 directories (an exited container's among
    them); restarting that container makes one named after it, leaving its v1 cgroups as they are."""
    fake_v1(tmp_path, hybrid=True)
    manager = manager_for("shoal", root=str(tmp_path))
    spare = manager.make_spare_holding(NO_SUCH_PID)
    assert manager.take_spare(spare, "c1", Limits(pids_limit=5))
    (tmp_path / "unified/shoal" / spare / "cgroup.procs").unlink()  # the container exited: empty
    fresh = manager_for("shoal", root=str(tmp_path))
    fresh.remove_spares()
    assert not (tmp_path / "unified/shoal" / spare).exists() and not fresh.exists("c1")
    fresh.create("c1", Limits(pids_limit=9))
    assert (tmp_path / "unified/shoal/c1").is_dir() and fresh.exists("c1")
    assert (tmp_path / "pids/shoal/c1/pids.max").read_text() == "5"  # the v1 cgroup was kept
    # An init from a spare, for a container that has cgroups already: the spare is left as it is,
    # and the supervisor moves the init.
    another = fresh.make_spare_holding(NO_SUCH_PID)
    assert not fresh.take_spare(another, "c1", Limits())
    assert (tmp_path / "memory/shoal" / another).is_dir() and (tmp_path / "unified/shoal" / another).is_dir()


def test_v2_inits_wait_in_no_spare(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    manager = manager_for("shoal", root=str(tmp_path))
    assert manager.make_spare_holding(NO_SUCH_PID) == "" and not (tmp_path / "shoal").exists()
