"""Starting a container: an init with every namespace, its setup, then execve.

The init is either cloned ahead by the zygote (`clone_pooled`: own PID, UTS, IPC and network
namespaces, loopback up, waiting for a container; zygote.py says why) and handed its container by
`activate`, or, when none is ready or the container uses the host's network, cloned on the spot
with one clone(2) carrying every namespace flag (`spawn`).
The child reports a failed step on a close-on-exec pipe and exits 127; once set up it writes
READY there, and a successful execve closes the pipe. Setup order, and why:
  1. the *supervisor* makes the container's cgroups and moves the child into them (pre-opened
     cgroup.procs files) while the child sets up its mounts: a cgroup migration waits out an RCU
     grace period (~7 ms here) whenever none happened recently, and this way that wait, like
     the making of the cgroups, overlaps the child's own work;
  2. the child makes every mount private, mounts the overlay (inside its own mount namespace: the
     host's mount table never changes per container; a pooled init unshares it only when handed
     its container, so it copies the mounts of that moment), opens host-side sources, pivots;
  3. /proc, /dev, /sys and binds inside the new root; then masked and read-only paths;
  4. hostname (loopback is up already, in its own network namespace only); the user, working
     dir and executable are resolved in the image (identity.prepare_command), then READY;
  5. it waits for the supervisor's go message (`spawn` and `activate` run at create;
     the veth pair, whose peer lands in the child's namespace as eth0, is made at create when
     the bridge is known then, else by `release`, at start, which sends the message, with eth0's
     address; a container given its address at create is told when eth0 exists, and configures
     it before the go message), then gives eth0 its address and default route,
     and unshares the cgroup namespace (its cgroup root must be its own cgroup, so only after
     joining);
  6. user, capabilities, no_new_privs, execve. The start's answer does not wait for it: an
     exec that fails (rare: everything it needs was checked before READY) is the container's
     exit, with the child's report as its error.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import struct
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.supervisor import identity, mounts, netlink
from agent.supervisor import syscalls as sc

NAMESPACES = sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC
POOLED_NAMESPACES = sc.CLONE_NEWPID | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWNET
FRAME = struct.Struct(">I")
READY = b"\0"  # on the report pipe: the child waits for its go message, with nothing left to fail
WARMED = b"W"  # on the report pipe, before READY: a pooled init waits inside its image's root (warm.py)
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeLink:
    """The bridge a container's veth goes on (its host end; the peer is its eth0)."""

    bridge: str
    mtu: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeAttachment(BridgeLink):
    """The container's place on the host's bridge: its link and eth0's address."""

    address: str
    prefix: int
    gateway: str


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
    bridge: BridgeAttachment | None = None  # at start, for a container on the bridge
    link: BridgeLink | None = None  # at create, when the bridge is known: the veth is made then

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LaunchSpec:
        binds = [(str(s), str(d), bool(ro)) for s, d, ro in data.pop("binds", [])]
        bridge, link = data.pop("bridge", None), data.pop("link", None)
        return cls(binds=binds, bridge=BridgeAttachment(**bridge) if bridge else None,
                   link=BridgeLink(**link) if link else None, **data)


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmRoot:
    """An image's root filesystem that a pooled init mounts and pivots into while it waits (warm.py
    says why): the overlay of `lower` on a spare writable layer under `spare`, mounted at `rootfs`,
    with the spare's files (`files`: name, destination, read-only) bound where a container's own
    /etc files go."""

    layers_dir: str
    lower: list[str]
    rootfs: str
    spare: str
    files: list[tuple[str, str, bool]]
    identity: list[tuple[int, int]]  # (st_dev, st_ino) of each lower dir: a layer unpacked again differs


class StartError(Exception):
    pass


@dataclass(slots=True)
class Spawned:
    """A container's init: cloned, in its cgroups, setting itself up, and then waiting to be
    released. Spawning at create and releasing at start lets the child's mounts run while the
    agent answers the create and the start request travels (runc's create/start split does the
    same with its exec fifo)."""

    pid: int
    error_r: int  # the child's failure report, or EOF when it has exec'd
    joined_w: int  # the release message goes here
    stdout_r: int
    stderr_r: int
    failed: str = ""  # the supervisor's own step that failed, if any
    veth: str = ""  # the host end of its veth pair, once made
    configured: bool = False  # its spec carried its address, and it was told its eth0 exists
    cgroup: str = ""  # the spare cgroup a pooled init waits in (CgroupManager.make_spare_holding)
    warm: WarmRoot | None = None  # the image root a pooled init was asked to wait in
    warmed: bool = False  # and it reported that it does (WARMED)

    @property
    def fds(self) -> list[int]:
        return [self.error_r, self.joined_w, self.stdout_r, self.stderr_r]

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def spawn(spec: LaunchSpec, devnull: int) -> Spawned:
    """Clones the container's init with every namespace flag; it sets itself up at once."""
    pipes = ChildPipes.make()
    flags = NAMESPACES | (0 if spec.host_network else sc.CLONE_NEWNET)
    pid = sc.clone(flags)
    if pid == 0:  # the child: whatever happens, it must never return into the supervisor's loop
        try:
            _child(spec, pipes.child_side(), devnull)
        finally:
            os._exit(127)
    return pipes.parent_side(pid)


def clone_pooled(devnull: int, extra_flags: int = 0) -> Spawned:
    """Clones an init ahead of any request, with its own PID, UTS, IPC and network namespaces (the
    network namespace is the dearest part of a clone): it brings its loopback up and waits for a
    container (`activate`). Its mount namespace is made only then, so it copies the host's mounts
    as they are at that moment."""
    pipes = ChildPipes.make()
    pid = sc.clone(POOLED_NAMESPACES | extra_flags)
    if pid == 0:
        try:
            _child(None, pipes.child_side(), devnull)
        finally:
            os._exit(127)
    return pipes.parent_side(pid)


def send_warm(spawned: Spawned, root: WarmRoot) -> None:
    """Asks a pooled init to mount and pivot into an image's root while it waits (it reports WARMED)."""
    body = json.dumps({"warm": asdict(root)}).encode()
    try:
        os.write(spawned.joined_w, FRAME.pack(len(body)) + body)
        spawned.warm = root
    except OSError:  # it died waiting: the supervisor forgets it when it reaps it
        pass


def activate(spawned: Spawned, spec: LaunchSpec) -> None:
    """Gives a pooled init its container (one frame on its pipe); it sets itself up at once."""
    body = json.dumps(asdict(spec)).encode()
    try:
        os.write(spawned.joined_w, FRAME.pack(len(body)) + body)
    except OSError as e:  # it died waiting: the supervisor clones a new child instead
        spawned.failed = f"handing the container to its init: {e}"


def join_cgroups(spawned: Spawned, cgroup_procs_fds: list[int]) -> None:
    """Moves the child into its cgroups while it sets itself up: it execs only after `release`."""
    if spawned.failed:
        return
    try:
        for fd in cgroup_procs_fds:
            os.write(fd, str(spawned.pid).encode())
    except OSError as e:  # the child may already have failed (ESRCH): its report says why
        spawned.failed = f"joining the cgroups: {e}"
        with contextlib.suppress(ProcessLookupError):
            os.kill(spawned.pid, 9)  # it must not run outside its cgroups


@dataclass(frozen=True, slots=True)
class ChildPipes:
    """The four pipes between the supervisor and a container's init (all close-on-exec)."""

    error: tuple[int, int]
    joined: tuple[int, int]
    stdout: tuple[int, int]
    stderr: tuple[int, int]

    @classmethod
    def make(cls) -> ChildPipes:
        return cls(*(os.pipe2(os.O_CLOEXEC) for _ in range(4)))

    def child_side(self) -> tuple[int, int, int, int]:
        """In the child: closes the parent's ends; returns (error_w, joined_r, stdout_w, stderr_w)."""
        for fd in (self.error[0], self.joined[1], self.stdout[0], self.stderr[0]):
            os.close(fd)
        return self.error[1], self.joined[0], self.stdout[1], self.stderr[1]

    def parent_side(self, pid: int) -> Spawned:
        for fd in (self.error[1], self.joined[0], self.stdout[1], self.stderr[1]):
            os.close(fd)
        return Spawned(pid, self.error[0], self.joined[1], self.stdout[0], self.stderr[0])


def attach_veth(spawned: Spawned, veth: str, link: BridgeLink) -> None:
    """Makes the child's veth pair: the host end on the bridge, the peer in its network namespace
    as eth0 (it gets its address from the child at start)."""
    if spawned.failed or spawned.veth:
        return
    try:
        netlink.create_veth(veth, socket.if_nametoindex(link.bridge), spawned.pid, link.mtu)
        spawned.veth = veth
    except OSError as e:  # the child may already have failed (ESRCH): its report says why
        spawned.failed = f"attaching to the bridge: {e}"
        with contextlib.suppress(ProcessLookupError):
            os.kill(spawned.pid, 9)  # it must not run half set up


def announce_link(spawned: Spawned) -> None:
    """Tells a child whose spec carries its address that its eth0 exists: it configures it while
    it waits to be started, so the start does not wait for that."""
    if spawned.failed or not spawned.veth:
        return
    try:
        os.write(spawned.joined_w, b"L")
        spawned.configured = True
    except OSError as e:  # it may have died meanwhile: its report says why
        spawned.failed = f"attaching to the bridge: {e}"


def release(spawned: Spawned, bridge: BridgeAttachment | None, veth: str) -> None:
    """Attaches the child to the bridge unless that was done at create (`attach_veth`, named veth),
    waits until the child is ready (set up, its command found: nothing about the image is left to
    fail), and sends it the go message (with its address, unless it has configured eth0 already);
    StartError otherwise. It does not wait for the execve: the reply to the start travels while
    the child execs. What fails after the go message (the exec itself, rarely) is reported when
    the child exits, from its report pipe, which the caller then owns (`Spawned.error_r`)."""
    if bridge is not None:
        attach_veth(spawned, veth, bridge)
    failed = spawned.failed
    report = b""  # the child's own, when it failed first
    go = b"1" + (json.dumps(asdict(bridge)).encode() if bridge and not spawned.configured else b"")
    try:
        if not failed:
            first = os.read(spawned.error_r, len(READY))  # at once, unless the child is still setting up
            if first != READY:  # it failed, and says why (or it died)
                report, failed = first, "the container's init ended while setting up"
        if not failed:
            try:
                os.write(spawned.joined_w, go)
            except OSError as e:  # the child may have been killed meanwhile
                failed = f"starting: {e}"
    finally:
        os.close(spawned.joined_w)  # without the message, a waiting child gives up and reports
    if failed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(spawned.pid, 9)  # it may be waiting for the message: it must not run half set up
        report += read_report(spawned.error_r)
        os.close(spawned.error_r)
        with contextlib.suppress(ChildProcessError):  # the supervisor's loop may have reaped it already
            os.waitpid(spawned.pid, 0)
        # The child's own report says why when it failed first (our step then only found it gone).
        raise StartError(report.decode(errors="replace") if report else failed)


def read_report(error_r: int) -> bytes:
    """What a child wrote on its report pipe, to EOF (its exec or its end)."""
    chunks = []
    while chunk := os.read(error_r, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


def discard(spawned: Spawned) -> None:
    """A spawned child that will never be released (its container was removed unstarted)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(spawned.pid, 9)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(spawned.pid, 0)
    spawned.close()


def _child(spec: LaunchSpec | None, pipes: tuple[int, int, int, int], devnull: int) -> None:
    """The init's setup, in the child. A pooled init (spec None) first waits for its spec."""
    error_w, joined_r, stdout_w, stderr_w = pipes
    step = "setup"
    try:
        os.setsid()
        if spec is None or not spec.host_network:
            step = "bringing up loopback"
            loopback_up()
        step = "limiting capabilities"
        identity.limit_bounding_set()  # the same for every container: a pooled init does it while it waits
        step = "mounting /proc, /dev and /sys ahead"
        made = _kernel_mounts_ahead() if spec is None else {}  # a pooled init makes them while it waits
        warm = False
        if spec is None:
            step = "waiting for a container (or mounting an image's root ahead)"
            spec, warm = _wait_for_container(joined_r, error_w, made)
        step = "stdio"
        for fd, target in ((devnull, 0), (stdout_w, 1), (stderr_w, 2)):
            os.dup2(fd, target)
        if not warm:
            step = "mounting the root filesystem"
            steps, source_fds = _enter_rootfs(spec.layers_dir, spec.lower, spec.upper, spec.work, spec.rootfs,
                                              spec.binds)
            step = "mounting /proc, /dev, /sys and volumes"
            _mount_inside(steps, source_fds, made)
        step = "setting the hostname"
        sc.sethostname(spec.hostname)
        step = "starting the command"
        prepared = identity.prepare_command(spec.argv, spec.env, spec.cwd, spec.user)
        os.write(error_w, READY)
        step = "waiting to be started"
        go = os.read(joined_r, 4096)  # writes of at most PIPE_BUF bytes: each arrives whole
        if go.startswith(b"L") and spec.bridge is not None:  # eth0 exists, and the spec says its address
            step = "configuring eth0"
            netlink.configure_interface("eth0", spec.bridge.address, spec.bridge.prefix, spec.bridge.gateway)
            step = "waiting to be started"
            go = go[1:] or os.read(joined_r, 4096)
        if not go.startswith(b"1"):
            raise OSError("the supervisor could not set the container up")
        if len(go) > 1:
            step = "configuring eth0"
            bridge = BridgeAttachment(**json.loads(go[1:]))
            netlink.configure_interface("eth0", bridge.address, bridge.prefix, bridge.gateway)
        sc.unshare(sc.CLONE_NEWCGROUP)
        step = "starting the command"
        identity.become(prepared)
    except BaseException as e:  # report anything, exit; the child must never return to the supervisor
        _report(error_w, _failure(step, e, spec.argv[0] if spec is not None else ""))
    os._exit(127)


def _enter_rootfs(layers_dir: str, lower: list[str], upper: str, work: str, rootfs: str,
                  binds: list[tuple[str, str, bool]]) -> tuple[list[mounts.MountStep], list[int]]:
    """The overlay, mounted in the child's private mount namespace, becomes its root; returns the
    mounts still to make inside it and the host-side sources they need, opened before the pivot."""
    sc.mount("none", "/", None, sc.MS_REC | sc.MS_PRIVATE)
    options, relative = mounts.overlay_options(layers_dir, lower, upper, work)
    if relative:
        os.chdir(layers_dir)
    sc.mount("overlay", rootfs, "overlay", 0, options)
    sources, steps = mounts.plan_mounts(binds)
    source_fds = mounts.open_sources(sources)
    mounts.pivot_into(rootfs)
    return steps, source_fds


def _mount_inside(steps: list[mounts.MountStep], source_fds: list[int], made: dict[str, int]) -> None:
    """The kernel filesystems and binds inside the new root, the old root detached, the masks."""
    mounts.apply_steps(steps, source_fds, made)
    mounts.detach_old_root()
    mounts.mask_paths()


def _wait_for_container(joined_r: int, error_w: int, made: dict[str, int]) -> tuple[LaunchSpec, bool]:
    """A pooled init's wait: its container's spec, after the image's root made ahead when the
    supervisor asks for that first (reported with WARMED); returns whether it was."""
    frame = json.loads(_read_frame(joined_r))
    if "warm" not in frame:
        spec = LaunchSpec.from_json(frame)
        sc.unshare(sc.CLONE_NEWNS)
        return spec, False
    _warm_up(WarmRoot(**frame["warm"]), made)
    os.write(error_w, WARMED)
    return LaunchSpec.from_json(json.loads(_read_frame(joined_r))), True


def _warm_up(root: WarmRoot, made: dict[str, int]) -> None:
    """Everything a container of the image needs mounted, done while the init waits: its own mount
    namespace, the overlay, the pivot, the kernel filesystems, the spare's files bound as its /etc
    files (the supervisor fills them at create), the old root detached (so a waiting init holds no
    copy of the host's mounts), and the masks."""
    sc.unshare(sc.CLONE_NEWNS)
    binds = [(os.path.join(root.spare, name), destination, read_only) for name, destination, read_only in root.files]
    steps, source_fds = _enter_rootfs(root.layers_dir, root.lower, os.path.join(root.spare, "upper"),
                                      os.path.join(root.spare, "work"), root.rootfs, binds)
    _mount_inside(steps, source_fds, made)


def _kernel_mounts_ahead() -> dict[str, int]:
    """A pooled init's /proc, /dev and /sys, made while it waits; none on a kernel without the new
    mount API (before 5.2), where they are mounted after the pivot as for any other init."""
    try:
        return mounts.make_kernel_mounts()
    except OSError as e:
        if e.errno != errno.ENOSYS:
            raise
        return {}


def _failure(step: str, error: BaseException, command: str) -> str:
    """The one-line report of a failed step (Docker's wording for a command that is not found)."""
    if isinstance(error, FileNotFoundError):
        return f'exec: "{command}": executable file not found in $PATH' if step == "starting the command" \
            else f"{step}: {error.strerror}: {error.filename or command}"
    return f"{step}: {error}" if str(error) else f"{step}: {traceback.format_exc(limit=1)}"


def _read_frame(fd: int) -> bytes:
    """One length-prefixed frame from a pipe (a spec can pass PIPE_BUF, so it may come in pieces)."""
    def exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = os.read(fd, size - len(data))
            if not chunk:
                raise OSError("the supervisor went away")
            data += chunk
        return data

    return exactly(FRAME.unpack(exactly(FRAME.size))[0])


def _report(fd: int, message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, message.encode()[:4000])


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))

