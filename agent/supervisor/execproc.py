"""Running another process inside a running container (`clusterctl exec`).

The supervisor points its own pid_for_children at the container's PID namespace, forks, and points
it back (setns(2) to one's own active namespace is allowed), so the new process is a direct child
of the supervisor inside the container: no intermediate process. The child joins the container's
cgroups first, then its cgroup, IPC, UTS, network and finally mount namespace (which also moves
its root and cwd), and execs like the container's init would.
With a terminal, the pty comes from the container's own devpts instance (TIOCGPTPEER), so `tty`
inside the container names a device that exists there.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
from dataclasses import dataclass
from typing import Any

from agent.supervisor import identity
from agent.supervisor import syscalls as sc

NS_ORDER = ("cgroup", "ipc", "uts", "net", "mnt")
TIOCGPTPEER = 0x5441
TIOCSPTLCK = 0x40045431


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecSpec:
    argv: list[str]
    env: list[str]
    cwd: str
    user: str
    tty: bool = False
    rows: int = 0
    cols: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExecSpec:
        return cls(**data)


def _open_pty(container_pid: int, rows: int, cols: int) -> tuple[int, int]:
    try:
        master = os.open(f"/proc/{container_pid}/root/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        master, slave = os.openpty()
    if rows and cols:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return master, slave


def spawn(container_pid: int, cgroup_procs_fds: list[int], spec: ExecSpec) -> tuple[int, list[int]]:
    """Starts the process; returns its host PID and the caller's ends: [terminal] or [stdin, stdout, stderr]."""
    ns_fds = {ns: os.open(f"/proc/{container_pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC) for ns in NS_ORDER}
    ns_fds["pid"] = os.open(f"/proc/{container_pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    if spec.tty:
        master, slave = _open_pty(container_pid, spec.rows, spec.cols)
        child_ends, ours = (slave, slave, slave), [master]
    else:
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
        stdout_r, stdout_w = os.pipe2(os.O_CLOEXEC)
        stderr_r, stderr_w = os.pipe2(os.O_CLOEXEC)
        child_ends, ours = (stdin_r, stdout_w, stderr_w), [stdin_w, stdout_r, stderr_r]
    error_r, error_w = os.pipe2(os.O_CLOEXEC)
    try:
        sc.setns(ns_fds["pid"], sc.CLONE_NEWPID)
        try:
            pid = os.fork()
        except BaseException:
            sc.setns(own_pid_ns, sc.CLONE_NEWPID)
            raise
        if pid == 0:  # whatever happens, the child must never return into the supervisor's loop
            try:
                _child(ns_fds, cgroup_procs_fds, child_ends, spec, error_w)
            finally:
                os._exit(127)
        sc.setns(own_pid_ns, sc.CLONE_NEWPID)
        os.close(error_w)
        with os.fdopen(error_r, "rb") as pipe:
            report = pipe.read()
        if report:
            os.waitpid(pid, 0)
            for fd in ours:
                os.close(fd)
            raise OSError(report.decode(errors="replace"))
        return pid, ours
    finally:
        for fd in [*ns_fds.values(), own_pid_ns, *set(child_ends)]:
            os.close(fd)


def _child(ns_fds: dict[str, int], cgroup_fds: list[int], ends: tuple[int, int, int], spec: ExecSpec,
           error_w: int) -> None:
    try:
        os.setsid()
        if spec.tty:
            fcntl.ioctl(ends[0], termios.TIOCSCTTY, 0)
        for target, fd in enumerate(ends):
            os.dup2(fd, target)
        for fd in cgroup_fds:
            os.write(fd, b"0")
        for ns in NS_ORDER:
            sc.setns(ns_fds[ns])
        identity.exec_command(spec.argv, spec.env, spec.cwd, spec.user)
    except FileNotFoundError:
        os.write(error_w, f'exec: "{spec.argv[0]}": executable file not found in $PATH'.encode())
    except BaseException as e:
        os.write(error_w, f"exec: {e}".encode()[:4000])
    os._exit(127)
