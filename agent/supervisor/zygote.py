"""The zygote: a small process that clones containers' inits ahead of time, so the supervisor never forks.

Cloning from the supervisor puts the clone on every start's path, and more than the clone itself:
the network namespace (about 1 ms of kernel time here), the copy of the supervisor's page tables,
and copy-on-write faults afterwards in both processes (about 400 in the supervisor and 500 in the
child per container, measured: Python's reference counts write to every page it touches). The
supervisor forks the zygote once, at its start; the zygote clones each pooled init with
CLONE_PARENT, so the init is still the supervisor's child (it reaps it and collects its exit
status as before), while the zygote pays the clone, on the other core, between requests.

The zygote also puts each init in a spare cgroup of its own (`make_spare_holding`), which the
create renames to the container's: moving a process between cgroups waits out an RCU grace period
whenever no move happened recently (5-10 ms here), and that wait is the zygote's, between
requests, instead of the create's. Where cgroups cannot be renamed (v2), or placing one failed
once, inits wait in the zygote's cgroups and are moved at create.

Protocol on a SOCK_SEQPACKET pair: the supervisor sends one byte per init it wants; the zygote
answers each with "PID SPARE" (SPARE may be empty) and, as SCM_RIGHTS, the supervisor's ends of
its four pipes (`launch.Spawned`), or with `!` and the reason when it could not make it. The
zygote exits when the supervisor's end closes, and a pooled init when its pipe from the supervisor
closes, so a killed supervisor leaves neither behind; spare cgroups left empty are removed by the
next supervisor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys

from agent.cgroups import CgroupManager
from agent.supervisor import launch, warm
from agent.supervisor import syscalls as sc

POOL_SIZE = 2  # inits cloned ahead: one for the next start, one on its way (a burst falls back to a clone)


class InitPool:
    """The inits the zygote has cloned ahead, as the supervisor keeps them: a start on its own
    network takes one, more are asked for when the supervisor is idle, and one that dies waiting
    is forgotten. Without the zygote (it died), the inits already made are still handed out."""

    def __init__(self, zygote: Zygote, cgroups: CgroupManager, spares: str) -> None:
        self.zygote: Zygote | None = zygote
        self.cgroups = cgroups
        self.spares = spares  # the spare writable layers of warm inits (warm.py)
        self.ready: dict[int, launch.Spawned] = {}
        self.requested = 0
        self.image: launch.LaunchSpec | None = None  # the last create's: inits wait in its root

    @property
    def sock(self) -> socket.socket | None:
        return self.zygote.sock if self.zygote is not None else None

    def _wants_inits(self) -> bool:
        return self.zygote is not None and len(self.ready) + self.requested < POOL_SIZE

    def short(self) -> bool:
        """Whether there is work for an idle moment: inits to ask for, or to warm."""
        return self._wants_inits() or (self.image is not None and any(s.warm is None for s in self.ready.values()))

    def refill(self) -> None:
        while self._wants_inits():
            assert self.zygote is not None
            self.zygote.request()
            self.requested += 1
        if self.image is not None:
            for spawned in self.ready.values():
                if spawned.warm is None:
                    self._warm(spawned, self.image)

    def sweep(self) -> None:
        warm.sweep(self.spares)

    def take(self, spec: launch.LaunchSpec, create: bool) -> launch.Spawned | None:
        """An init for this container: at a create, one waiting in its image's root if there is one
        (its spare layer renamed onto the container's), else one that waits unset."""
        if create:
            self._aim(spec)
            for pid, spawned in list(self.ready.items()):
                if spawned.warm is not None and warm.serves(spawned.warm, spec) and self._warmed(spawned):
                    del self.ready[pid]
                    try:
                        warm.hand_over(spawned.warm, spec)
                    except OSError as e:
                        print(f"handing pooled init {pid} its container's layer failed: {e}", file=sys.stderr)
                        self.discard(spawned)
                        continue
                    return spawned
        plain = next((pid for pid, spawned in self.ready.items() if spawned.warm is None), None)
        return self.ready.pop(plain) if plain is not None else None

    def _aim(self, spec: launch.LaunchSpec) -> None:
        """Inits are warmed for the image of the latest create from now on; those waiting in another
        image's root (or in layers unpacked again since) are discarded, so the pool refills for it."""
        self.image = spec
        for pid, spawned in list(self.ready.items()):
            if spawned.warm is not None and not warm.same_image(spawned.warm, spec):
                del self.ready[pid]
                self.discard(spawned)

    def _warm(self, spawned: launch.Spawned, image: launch.LaunchSpec) -> None:
        """Sends it into the image's root; stops warming until the next create when that cannot be
        done (the image's layers are gone, or the spare layer cannot be made)."""
        try:
            root = warm.root_for(image, os.path.join(self.spares, str(spawned.pid)))
        except OSError as e:
            print(f"making a spare layer for pooled init {spawned.pid} failed: {e}", file=sys.stderr)
            root = None
        if root is None:
            self.image = None
            return
        launch.send_warm(spawned, root)
        if spawned.warm is None:  # it died: reaped and forgotten soon
            warm.remove_spare(root)

    def _warmed(self, spawned: launch.Spawned) -> bool:
        """Whether it reported WARMED (read without waiting: one still mounting is not handed out)."""
        if not spawned.warmed:
            os.set_blocking(spawned.error_r, False)
            try:
                report = os.read(spawned.error_r, 4096)
            except BlockingIOError:
                return False
            finally:
                os.set_blocking(spawned.error_r, True)
            spawned.warmed = report == launch.WARMED
            if not spawned.warmed:  # it failed while warming, and says why
                print(f"pooled init {spawned.pid} could not wait in its image's root: "
                      f"{report.decode(errors='replace')}", file=sys.stderr)
        return spawned.warmed

    def receive(self, keep: bool) -> str:
        """The zygote's next answer (kept, or discarded when the supervisor is stopping); returns
        what went wrong, for the supervisor's log."""
        assert self.zygote is not None
        try:
            made = self.zygote.receive()
        except (OSError, EOFError) as e:  # it died: starts clone directly once the pool is empty
            self.zygote.close()
            self.zygote = None
            return f"the zygote is gone ({e}); containers are cloned by the supervisor itself"
        self.requested -= 1
        if isinstance(made, str):  # not retried until the next start takes from the pool
            return f"the zygote could not clone an init: {made}"
        if keep:
            self.ready[made.pid] = made
        else:
            self.discard(made)
        return ""

    def discard(self, spawned: launch.Spawned) -> None:
        """An init that will never be handed a container, and the spare cgroup (and layer) it waits in."""
        launch.discard(spawned)
        self._remove_spares(spawned)

    def _remove_spares(self, spawned: launch.Spawned) -> None:
        """Its spare cgroup and, if it was warmed, its spare layer."""
        self.remove_spare(spawned)
        if spawned.warm is not None:
            warm.remove_spare(spawned.warm)

    def remove_spare(self, spawned: launch.Spawned) -> None:
        if spawned.cgroup:
            try:
                self.cgroups.remove(spawned.cgroup)
            except OSError as e:  # left for the next supervisor's start (remove_spares)
                print(f"removing spare cgroup {spawned.cgroup} failed: {e}", file=sys.stderr)
            spawned.cgroup = ""

    def forget(self, pid: int, code: int) -> None:
        """A pooled init died waiting (killed by hand, or its set-up failed: its report says why);
        the next start clones anew."""
        gone = self.ready.pop(pid, None)
        if gone is not None:
            report = launch.read_report(gone.error_r).decode(errors="replace")
            print(f"pooled init {pid} ended while waiting (status {code}){': ' + report if report else ''}",
                  file=sys.stderr)
            gone.close()
            self._remove_spares(gone)

    def close(self) -> None:
        for spawned in self.ready.values():
            self.discard(spawned)
        self.ready.clear()
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None


class Zygote:
    """The supervisor's side."""

    def __init__(self, cgroups: CgroupManager) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.pid = os.fork()
        if self.pid == 0:
            try:
                ours.close()
                _serve(theirs, cgroups)
            finally:
                os._exit(0)
        theirs.close()
        ours.set_inheritable(False)
        self.sock = ours

    def request(self) -> None:
        self.sock.send(b"c")

    def receive(self) -> launch.Spawned | str:
        """The next pooled init, or why the zygote could not make it."""
        data, fds, _flags, _address = socket.recv_fds(self.sock, 4096, 4, socket.MSG_CMSG_CLOEXEC)
        if not data:
            raise EOFError("the zygote exited")
        if data.startswith(b"!") or len(fds) != 4:
            for fd in fds:
                os.close(fd)
            return data[1:].decode(errors="replace") or "the zygote answered without the init's pipes"
        error_r, joined_w, stdout_r, stderr_r = fds
        pid, _, spare = data.decode().partition(" ")
        return launch.Spawned(int(pid), error_r, joined_w, stdout_r, stderr_r, cgroup=spare)

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _serve(sock: socket.socket, cgroups: CgroupManager) -> None:
    """The zygote's loop: one pooled init per byte received, until the supervisor goes away."""
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    keep = sock.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
    devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    place_in_spares = True
    while True:
        try:
            wanted = sock.recv(64)
        except InterruptedError:
            continue
        if not wanted:
            return
        for _ in wanted:
            try:
                spawned = launch.clone_pooled(devnull, sc.CLONE_PARENT)
            except OSError as e:
                sock.send(f"!cloning an init: {e}".encode())
                continue
            try:
                spare = cgroups.make_spare_holding(spawned.pid) if place_in_spares else ""
            except OSError as e:  # it may be in no cgroup of its own, or killed: not handed out
                place_in_spares = False
                launch.discard(spawned)
                sock.send(f"!placing an init in a spare cgroup: {e}; inits are moved at create from now on".encode())
                continue
            try:
                socket.send_fds(sock, [f"{spawned.pid} {spare}".encode()], spawned.fds)
            finally:
                spawned.close()
