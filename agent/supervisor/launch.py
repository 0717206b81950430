"""Starting a container: one clone(2) with every namespace flag, then the child's setup, then execve.

The child reports a failed step on a close-on-exec pipe and exits 127; a successful execve closes
the pipe, which is how the supervisor knows the container runs. Setup order, and why:
  1. the *supervisor* moves the child into its cgroups (pre-opened cgroup.procs files) while the
     child sets up its mounts: a cgroup migration waits out an RCU grace period (~7 ms here)
     whenever none happened recently, and this way that wait overlaps the child's own work;
  2. the child makes every mount private, mounts the overlay (inside its own mount namespace: the
     host's mount table never changes per container), opens host-side sources, pivots;
  3. /proc, /dev, /sys and binds inside the new root; then masked and read-only paths;
  4. hostname, loopback up (own network namespace only);
  5. it waits for the supervisor's "joined" byte (sent once the supervisor has also made the veth
     pair whose peer lands in the child's namespace as eth0), then gives eth0 its address and
     default route, and unshares the cgroup namespace (its cgroup root must be its own cgroup, so
     only after joining);
  6. user, capabilities, no_new_privs, execve.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import struct
import traceback
from dataclasses import dataclass, field
from typing import Any

from agent.supervisor import identity, mounts, netlink
from agent.supervisor import syscalls as sc

NAMESPACES = sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeAttachment:
    """The container's place on the host's bridge: its veth (host end) and eth0's address."""

    veth: str
    bridge: str
    address: str
    prefix: int
    gateway: str
    mtu: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchSpec:
    """What the agent sends in `start`: a container fully resolved against its image."""

    argv: list[str]
    env: list[str]
    cwd: str
    user: str
    hostname: str
    rootfs: str
    layers_dir: str
    lower: list[str]
    upper: str
    work: str
    binds: list[tuple[str, str, bool]] = field(default_factory=list)
    host_network: bool = False
    log_path: str = ""
    log_max_bytes: int = 10 << 20
    log_max_files: int = 3
    bridge: BridgeAttachment | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LaunchSpec:
        binds = [(str(s), str(d), bool(ro)) for s, d, ro in data.pop("binds", [])]
        bridge = data.pop("bridge", None)
        return cls(binds=binds, bridge=BridgeAttachment(**bridge) if bridge else None, **data)


class StartError(Exception):
    pass


def start_container(spec: LaunchSpec, cgroup_procs_fds: list[int], stdout_w: int, stderr_w: int,
                    devnull: int) -> int:
    """Clones the container's init and waits until it has exec'd; returns its host PID."""
    error_r, error_w = os.pipe2(os.O_CLOEXEC)
    joined_r, joined_w = os.pipe2(os.O_CLOEXEC)
    flags = NAMESPACES | (0 if spec.host_network else sc.CLONE_NEWNET)
    pid = sc.clone(flags)
    if pid == 0:  # the child: whatever happens, it must never return into the supervisor's loop
        try:
            os.close(error_r)
            os.close(joined_w)
            _child(spec, stdout_w, stderr_w, devnull, error_w, joined_r)
        finally:
            os._exit(127)
    os.close(error_w)
    os.close(joined_r)
    join_error = ""
    try:
        step = "joining the cgroups"
        for fd in cgroup_procs_fds:
            os.write(fd, str(pid).encode())
        if spec.bridge is not None:
            step = "attaching to the bridge"
            bridge = spec.bridge
            netlink.create_veth(bridge.veth, socket.if_nametoindex(bridge.bridge), pid, bridge.mtu)
        os.write(joined_w, b"1")
    except OSError as e:  # the child may already have failed (EPIPE, ESRCH): its report says why
        join_error = f"{step}: {e}"
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)  # it may be waiting for the byte: it must not run half set up
    finally:
        os.close(joined_w)  # without the byte, a waiting child gives up and reports
    with os.fdopen(error_r, "rb") as pipe:
        report = pipe.read()
    if report or join_error:
        os.waitpid(pid, 0)
        # The child's own report says why when it failed first (our step then only found it gone).
        raise StartError(report.decode(errors="replace") if report else join_error)
    return pid


def _child(spec: LaunchSpec, stdout_w: int, stderr_w: int, devnull: int, error_w: int, joined_r: int) -> None:
    step = "setup"
    try:
        os.setsid()
        step = "stdio"
        os.dup2(devnull, 0)
        os.dup2(stdout_w, 1)
        os.dup2(stderr_w, 2)
        step = "mounting the root filesystem"
        sc.mount("none", "/", None, sc.MS_REC | sc.MS_PRIVATE)
        options, relative = mounts.overlay_options(spec.layers_dir, spec.lower, spec.upper, spec.work)
        if relative:
            os.chdir(spec.layers_dir)
        sc.mount("overlay", spec.rootfs, "overlay", 0, options)
        sources, steps = mounts.plan_mounts(spec.binds)
        source_fds = mounts.open_sources(sources)
        mounts.pivot_into(spec.rootfs)
        step = "mounting /proc, /dev, /sys and volumes"
        mounts.apply_steps(steps, source_fds)
        mounts.detach_old_root()
        mounts.mask_paths()
        step = "setting the hostname"
        sc.sethostname(spec.hostname)
        if not spec.host_network:
            step = "bringing up loopback"
            loopback_up()
        step = "joining the cgroups"
        if os.read(joined_r, 1) != b"1":
            raise OSError("the supervisor could not set the container up")
        if spec.bridge is not None:
            step = "configuring eth0"
            netlink.configure_interface("eth0", spec.bridge.address, spec.bridge.prefix, spec.bridge.gateway)
        sc.unshare(sc.CLONE_NEWCGROUP)
        step = "starting the command"
        identity.exec_command(spec.argv, spec.env, spec.cwd, spec.user)
    except FileNotFoundError as e:
        _report(error_w, f"{step}: {e.strerror}: {e.filename or spec.argv[0]}"
                if step != "starting the command"
                else f'exec: "{spec.argv[0]}": executable file not found in $PATH')
    except BaseException as e:  # report anything, exit; the child must never return to the supervisor
        _report(error_w, f"{step}: {e}" if str(e) else f"{step}: {traceback.format_exc(limit=1)}")
    os._exit(127)


def _report(fd: int, message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, message.encode()[:4000])


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))

