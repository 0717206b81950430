"""The container's filesystem: the plan (pure, a list of steps) and the code that applies it.

Everything but the overlay is mounted *after* pivot_root, so paths inside the container resolve
through the image's own symlinks within the new root and can never reach the host (an image whose
`/proc` is a symlink to `../../etc` only points at its own /etc). Host-side sources (volumes, the
generated /etc files) are opened as O_PATH descriptors before the pivot and mounted through
/proc/self/fd. The old root stays attached under PUT_OLD until those binds are made: the kernel
refuses to bind from a mount that is no longer in the namespace (EINVAL).
References: mount(2), pivot_root(2), proc(5), and Docker's
masked/read-only path lists (moby `oci/defaults.go`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from agent.supervisor import syscalls as sc

# Docker's defaults: hidden (a file gets /dev/null, a directory an empty read-only tmpfs) ...
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
# ... and read-only.
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# /dev is a fresh tmpfs with these nodes (name, major, minor), mode 0666.
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"), ("core", "/proc/kcore"))

NOSUID_NODEV_NOEXEC = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC


@dataclass(frozen=True, slots=True)
class MountStep:
    """One mount inside the new root. `source_fd_index` refers to the host paths opened before the pivot."""

    target: str
    fstype: str | None = None
    source: str = "none"
    flags: int = 0
    data: str | None = None
    source_fd_index: int = -1
    is_file: bool = False
    read_only: bool = False


# The kernel's filesystems every container gets, in mount order.
KERNEL_MOUNTS = (
    MountStep("/proc", "proc", "proc", NOSUID_NODEV_NOEXEC),
    MountStep("/dev", "tmpfs", "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k"),
    MountStep("/dev/pts", "devpts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"),
    MountStep("/dev/shm", "tmpfs", "shm", NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k"),
    MountStep("/dev/mqueue", "mqueue", "mqueue", NOSUID_NODEV_NOEXEC),
    MountStep("/sys", "sysfs", "sysfs", NOSUID_NODEV_NOEXEC | sc.MS_RDONLY),
)
_ATTRIBUTES = {sc.MS_RDONLY: sc.MOUNT_ATTR_RDONLY, sc.MS_NOSUID: sc.MOUNT_ATTR_NOSUID, sc.MS_NODEV: sc.MOUNT_ATTR_NODEV,
               sc.MS_NOEXEC: sc.MOUNT_ATTR_NOEXEC, sc.MS_STRICTATIME: sc.MOUNT_ATTR_STRICTATIME}


def plan_mounts(binds: list[tuple[str, str, bool]]) -> tuple[list[str], list[MountStep]]:
    """Returns the host paths to open before the pivot and the mounts to make after it.

    binds: (host source, container destination, read-only), the generated /etc files included.
    """
    steps = list(KERNEL_MOUNTS)
    sources: list[str] = []
    for source, destination, read_only in binds:
        steps.append(MountStep(destination, None, flags=sc.MS_BIND | sc.MS_REC, source_fd_index=len(sources),
                               is_file=not os.path.isdir(source), read_only=read_only))
        sources.append(source)
    return sources, steps


def open_sources(paths: list[str]) -> list[int]:
    return [os.open(path, os.O_PATH | os.O_CLOEXEC) for path in paths]


def _make_target(path: str, is_file: bool) -> None:
    if is_file:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.lexists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    else:
        os.makedirs(path, exist_ok=True)


def make_kernel_mounts() -> dict[str, int]:
    """KERNEL_MOUNTS as detached mounts, /dev populated: a pooled init makes them while it waits for
    a container (they belong to its PID, IPC and network namespaces, which it has already), and
    after the pivot they are only moved into place. Returns {target: mount descriptor}; raises
    OSError (ENOSYS before Linux 5.2)."""
    made: dict[str, int] = {}
    try:
        for step in KERNEL_MOUNTS:
            options: dict[str, str | None] = {"source": step.source}
            options.update((key, value or None) for key, _, value in
                           (option.partition("=") for option in (step.data or "").split(",") if option))
            attributes = sum(attribute for flag, attribute in _ATTRIBUTES.items() if step.flags & flag)
            made[step.target] = sc.new_mount(str(step.fstype), options, attributes)
        populate_dev(made["/dev"])
        for name in ("pts", "shm", "mqueue"):
            os.mkdir(name, 0o755, dir_fd=made["/dev"])
    except BaseException:
        for fd in made.values():
            os.close(fd)
        raise
    return made


def apply_steps(steps: list[MountStep], source_fds: list[int], made: dict[str, int]) -> None:
    """Mounts the steps, moving into place those made ahead (`made`, whose descriptors it closes)."""
    for step in steps:
        _make_target(step.target, step.is_file)
        if step.target in made:
            mount_fd = made.pop(step.target)
            sc.move_mount(mount_fd, step.target)
            os.close(mount_fd)
            continue
        source = f"/proc/self/fd/{source_fds[step.source_fd_index]}" if step.source_fd_index >= 0 else step.source
        sc.mount(source, step.target, step.fstype, step.flags, step.data)
        if step.read_only:
            sc.mount(step.target, step.target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)
        if step.target == "/dev":
            dev = os.open("/dev", os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                populate_dev(dev)
            finally:
                os.close(dev)


def populate_dev(dev: int) -> None:
    """The device nodes and links of a fresh /dev (the directory descriptor `dev`)."""
    old_umask = os.umask(0)
    try:
        for name, major, minor in DEVICES:
            os.mknod(name, 0o666 | 0o020000, os.makedev(major, minor), dir_fd=dev)
        for name, target in DEV_LINKS:
            os.symlink(target, name, dir_fd=dev)
    finally:
        os.umask(old_umask)


PUT_OLD = ".shoal-oldroot"


def pivot_into(rootfs: str) -> None:
    """pivot_root into rootfs, keeping the old root at /PUT_OLD until detach_old_root()."""
    os.chdir(rootfs)
    if os.path.islink(PUT_OLD) or (os.path.lexists(PUT_OLD) and not os.path.isdir(PUT_OLD)):
        raise OSError(f"the image has /{PUT_OLD}, which Shoal needs for pivot_root")
    os.makedirs(PUT_OLD, mode=0o700, exist_ok=True)
    sc.pivot_root(".", PUT_OLD)
    os.chdir("/")


def detach_old_root() -> None:
    sc.umount2("/" + PUT_OLD, sc.MNT_DETACH)
    os.rmdir("/" + PUT_OLD)


def mask_paths() -> None:
    for path in MASKED_PATHS:
        if os.path.isdir(path) and not os.path.islink(path):
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY)
        elif os.path.exists(path):
            sc.mount("/dev/null", path, None, sc.MS_BIND)
    for path in READONLY_PATHS:
        if os.path.exists(path):
            sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
            sc.mount(path, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC | NOSUID_NODEV_NOEXEC)


MOUNT_DATA_LIMIT = 4000  # the kernel copies at most one page of mount(2) data


def overlay_options(layers_dir: str, lower: list[str], upper: str, work: str) -> tuple[str, bool]:
    """Returns the overlay mount options, and whether they name the lower dirs relative to layers_dir.

    Absolute lower paths mount faster (measured here: 0.3 ms against 1.2 ms with relative names
    after a chdir), so relative names are used only when absolute ones would pass the one-page
    limit, which happens past about 45 layers.
    """
    tail = f",upperdir={upper},workdir={work},volatile"
    absolute = ":".join(os.path.join(layers_dir, name) for name in lower)
    if len(absolute) + len(tail) + len("lowerdir=") < MOUNT_DATA_LIMIT:
        return f"lowerdir={absolute}{tail}", False
    return f"lowerdir={':'.join(lower)}{tail}", True


def reset_volatile_workdir(work: str) -> None:
    """Makes an overlay workdir reusable after a `volatile` mount (overlayfs.rst, "Volatile mount").

    The kernel leaves work/incompat/volatile behind and refuses the workdir until it is emptied.
    The previous mount died with the container's mount namespace, so the upper directory is
    consistent unless the host crashed meanwhile; containers' writable layers are scratch space,
    and this trade (no syncfs of the whole upper filesystem on every exit) is documented.
    """
    if os.path.exists(os.path.join(work, "work", "incompat")):
        for entry in os.listdir(work):
            shutil.rmtree(os.path.join(work, entry), ignore_errors=True)
