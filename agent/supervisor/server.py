"""The supervisor's single-threaded event loop: requests, container output, child exits."""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.cgroups import CgroupManager, Limits, manager_for
from agent.supervisor import execproc, launch, mounts, protocol, records
from agent.supervisor.logs import LineSplitter, LogFile
from agent.supervisor.zygote import InitPool


class RequestError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


IDLE_BEFORE_REFILL = 0.01
SPARE_CGROUPS = 2  # made ahead, like the inits
UNKNOWN_EXIT = 255  # what Docker reports when an exit status was lost
LOST_STATUS = "exit status unknown: the container ended while the runtime supervisor was not its parent"


@dataclass
class Running:
    """A container whose init is alive (or whose output is still being drained).

    An adopted container (found running by a restarted supervisor) has no log pipes and is watched
    through a pidfd, since it is no longer the supervisor's child and cannot be reaped.
    """

    container_id: str
    pid: int
    generation: int
    oom_before: int
    log: LogFile | None
    pipes: dict[int, tuple[bytes, LineSplitter]] = field(default_factory=dict)
    pidfd: int = -1
    report: int = -1  # the init's report pipe: what failed after its go message (launch.release)


@dataclass
class Client:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    subscribed: bool = False


class Supervisor:
    def __init__(self, state_dir: str, cgroup_parent: str, cgroups: CgroupManager | None = None,
                 pool: InitPool | None = None) -> None:
        self.state_dir = state_dir
        self.cgroups = cgroups or manager_for(cgroup_parent)
        self.selector = selectors.DefaultSelector()
        self.clients: dict[int, Client] = {}
        self.running: dict[str, Running] = {}
        self.by_pid: dict[int, Running] = {}
        self.execs: dict[int, str] = {}
        self.cgroup_fds: dict[str, list[int]] = {}
        # Created containers' inits, waiting for start, with what they were spawned for.
        self.spawned: dict[str, tuple[launch.Spawned, launch.LaunchSpec]] = {}
        self.devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        self.stopping = False
        self.pool = pool  # inits with their own network namespace, cloned ahead (zygote.py says why)
        self.spares_wanted = True  # until the layout says it cannot rename cgroups (v2)
        self.after_reply: list[Callable[[], None]] = []
        self.veths = int.from_bytes(os.urandom(1), "big")  # a serial, so a run's veth never meets its last one's

    # ---- plumbing -------------------------------------------------------------------------------
    def serve(self, socket_path: str) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        listener = protocol.listen(socket_path)
        self.selector.register(listener, selectors.EVENT_READ, ("accept", None))
        self.selector.register(wake_r, selectors.EVENT_READ, ("signal", None))
        self.cgroups.remove_spares()  # a previous supervisor's (before the zygote makes any)
        if self.pool is not None:
            self.pool.sweep()
            if self.pool.sock is not None:
                self.selector.register(self.pool.sock, selectors.EVENT_READ, ("zygote", None))
                self.pool.refill()
        self.adopt()
        while not (self.stopping and not self.running):
            events = self.selector.select(timeout=IDLE_BEFORE_REFILL if self._short() else 1.0)
            if not events:
                self._replenish()
            for key, _ in events:
                kind, payload = key.data
                if kind == "accept":
                    self._accept(listener)
                elif kind == "signal":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 4096)
                elif kind == "client":
                    self._on_client(payload)
                elif kind == "pipe":
                    self._on_pipe(payload, key.fd)
                elif kind == "pidfd":
                    self._on_adopted_exit(payload)
                elif kind == "zygote":
                    self._on_zygote()
            self._reap()
        listener.close()
        for container_id in list(self.spawned):
            self._discard(container_id)
        if self.pool is not None:
            self.pool.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)
        for fds in self.cgroup_fds.values():
            for fd in fds:
                os.close(fd)
        self.cgroups.remove_parent()

    def _accept(self, listener: socket.socket) -> None:
        with contextlib.suppress(BlockingIOError):
            sock, _ = listener.accept()
            sock.setblocking(False)
            client = Client(sock)
            self.clients[sock.fileno()] = client
            self.selector.register(sock, selectors.EVENT_READ, ("client", client))

    def _drop(self, client: Client) -> None:
        self.clients.pop(client.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(client.sock)
        client.sock.close()

    def _send(self, client: Client, message: dict[str, Any], fds: list[int] | None = None) -> None:
        data = protocol.encode(message)
        try:
            client.sock.setblocking(True)  # replies are small; the agent always reads them
            if fds:
                socket.send_fds(client.sock, [data], fds)
            else:
                client.sock.sendall(data)
            client.sock.setblocking(False)
        except OSError:
            self._drop(client)

    def _broadcast(self, event: dict[str, Any]) -> None:
        for client in [c for c in self.clients.values() if c.subscribed]:
            self._send(client, event)

    def _on_client(self, client: Client) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        client.buffer.extend(data)
        try:
            messages = protocol.decode_frames(client.buffer)
        except (protocol.ProtocolError, ValueError) as e:
            self._send(client, {"ok": False, "kind": "invalid", "error": str(e)})
            self._drop(client)
            return
        for message in messages:
            self._dispatch(client, message)

    def _dispatch(self, client: Client, message: dict[str, Any]) -> None:
        op, req = message.get("op"), message.get("req")
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            self._send(client, {"req": req, "ok": False, "kind": "invalid", "error": f"unknown op {op!r}"})
            return
        fds: list[int] = []
        try:
            reply = handler(client, message)
            fds = reply.pop("_fds", [])
            self._send(client, {"req": req, "ok": True, **reply}, fds)
        except RequestError as e:
            self._send(client, {"req": req, "ok": False, "kind": e.kind, "error": str(e)})
        except (OSError, ValueError, KeyError, TypeError) as e:
            self._send(client, {"req": req, "ok": False, "kind": "failed", "error": str(e)})
        finally:
            for fd in fds:
                os.close(fd)
        while self.after_reply:  # the next request is read only after this work is done
            self.after_reply.pop(0)()

    # ---- operations -----------------------------------------------------------------------------
    def op_hello(self, client: Client, message: dict[str, Any]) -> dict[str, Any]:
        return {"version": protocol.VERSION, "pid": os.getpid()}

    def op_subscribe(self, client: Client, message: dict[str, Any]) -> dict[str, Any]:
        client.subscribed = True
        return {}

    def op_status(self, client: Client, message: dict[str, Any]) -> dict[str, Any]:
        return {"containers": {cid: {"pid": r.pid, "generation": r.generation} for cid, r in self.running.items()},
                "prepared": sorted(self.spawned)}

    def op_prepare(self, client: Client, message: dict[str, Any]) -> dict[str, Any]:
        """The cgroups, and with `launch` the container's init, spawned to set itself up now."""
        container_id = message["id"]
        limits = Limits(**message.get("limits", {}))
        if "launch" in message and container_id not in self.running:
            self._discard(container_id)
            spec = launch.LaunchSpec.from_json(dict(message["launch"]))
            spawned, wire = self._spawn(container_id, spec, limits, create=True)
            self.spawned[container_id] = (spawned, spec)
            self.after_reply.append(wire)  # its answer need not wait for the veth and the cgroup move
        else:
            self._prepare(container_id, limits)
        return {}

    def _spawn(self, container_id: str, spec: launch.LaunchSpec, limits: Limits,
               create: bool) -> tuple[launch.Spawned, Callable[[], None]]:
        """A pooled init when the container has its own network namespace and one is ready, else a
        clone. The child sets itself up while its cgroups are made; returns it and what it needs
        before it can exec, but not yet: its veth (bridge mode) and its move into the cgroups.
        Their failures are reported by `release`, which runs after them."""
        mounts.reset_volatile_workdir(spec.work)
        spawned = self.pool.take(spec, create) if self.pool is not None and not spec.host_network else None
        if spawned is not None:
            launch.activate(spawned, spec)
            if spawned.failed:  # it died waiting, and was not reaped yet: a new child instead
                self._drop_child(spawned)
                spawned = None
        if spawned is None:
            spawned = launch.spawn(spec, self.devnull)
        try:
            cgroup_fds = self._cgroups_for(container_id, limits, spawned)
        except BaseException:
            self._drop_child(spawned)
            raise

        def wire() -> None:
            link = spec.bridge or spec.link
            if link is not None:
                launch.attach_veth(spawned, self._veth_name(container_id), link)
            if spec.bridge is not None:
                launch.announce_link(spawned)
            launch.join_cgroups(spawned, cgroup_fds)
            if self.pool is not None:  # a pooled init that joined the cgroups of a restarted container
                self.pool.remove_spare(spawned)

        return spawned, wire

    def _cgroups_for(self, container_id: str, limits: Limits, spawned: launch.Spawned) -> list[int]:
        """The container's cgroups; returns the procs files the child is still to be moved through
        (`join_cgroups`): none when it waited in a spare, which becomes the container's cgroup."""
        if spawned.cgroup and container_id not in self.cgroup_fds and \
                self.cgroups.take_spare(spawned.cgroup, container_id, limits):
            spawned.cgroup = ""
            return []
        return self._prepare(container_id, limits)  # a restart keeps its cgroups: the child is moved into them

    def _drop_child(self, spawned: launch.Spawned) -> None:
        """A child that will not be released: killed, reaped, and its spare cgroup (if pooled) removed."""
        if self.pool is not None:
            self.pool.discard(spawned)
        else:
            launch.discard(spawned)

    def _veth_name(self, container_id: str) -> str:
        """sh + 8 characters of the id + a serial: 12 characters, within IFNAMSIZ."""
        self.veths = (self.veths + 1) % 256
        return f"sh{container_id[:8]}{self.veths:02x}"

    def _short(self) -> bool:
        """Whether inits or spare cgroups are to be made once the supervisor is idle."""
        return (self.pool is not None and self.pool.short()) or \
            (self.spares_wanted and self.cgroups.spare_count() < SPARE_CGROUPS)

    def _replenish(self) -> None:
        """Inits asked for and cgroups made ahead (which creates rename on cgroup v1), while idle:
        the making is off the request path."""
        if self.pool is not None:
            self.pool.refill()
        try:
            while self.spares_wanted and self.cgroups.spare_count() < SPARE_CGROUPS:
                self.spares_wanted = self.cgroups.make_spare()
        except OSError as e:  # creates make their cgroups themselves from now on
            print(f"making spare cgroups failed ({e}); containers' cgroups are made at create", file=sys.stderr)
            self.spares_wanted = False

    def _on_zygote(self) -> None:
        assert self.pool is not None and self.pool.sock is not None
        sock = self.pool.sock
        if problem := self.pool.receive(keep=not self.stopping):
            print(problem, file=sys.stderr)
        if self.pool.sock is None:  # the zygote is gone
            self.selector.unregister(sock)

    def _discard(self, container_id: str) -> None:
        prepared = self.spawned.pop(container_id, None)
        if prepared is not None:
            launch.discard(prepared[0])

    def _prepare(self, container_id: str, limits: Limits) -> list[int]:
        """Creates the cgroups ahead of start and keeps their procs files open (a 10 ms tail otherwise)."""
        if container_id not in self.cgroup_fds and not self.cgroups.exists(container_id):
            self.cgroups.create(container_id, limits)
        return self._procs_fds(container_id)

    def _procs_fds(self, container_id: str) -> list[int]:
        """The container's cgroup.procs files, opened once: an exec joins through them."""
        if container_id not in self.cgroup_fds:
            self.cgroup_fds[container_id] = [os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                                             for path in self.cgroups.procs_files(container_id)]
        return self.cgroup_fds[container_id]

    def op_start(self, client: Client, message: dict[str, Any]) -> dict[str, Any]:
        container_id = message["id"]
        if container_id in self.running:
            raise RequestError("conflict", f"container {container_id} is already running")
        bridge = launch.BridgeAttachment(**message["bridge"]) if message.get("bridge") else None
        prepared = self.spawned.pop(container_id, None)
        if prepared is not None:
            spawned, spec = prepared
        elif "launch" in message:  # not spawned at create (a restart, or a start after an exit)
            spec = launch.LaunchSpec.from_json(dict(message["launch"]))
            spawned, wire = self._spawn(container_id, spec, Limits(**message.get("limits", {})), create=False)
            wire()
        else:
            raise RequestError("unprepared", f"container {container_id} has no init waiting: "
                                             "its start needs its launch spec")
        # The run's record and its log are made before the release: the child is often still
        # setting up when the start arrives, and once released its exit is what matters.
        oom_before = self.cgroups.oom_kills(container_id)
        out_r, err_r, pid = spawned.stdout_r, spawned.stderr_r, spawned.pid
        run: records.Run | None = None
        try:
            run = records.begin_run(self.state_dir, container_id, pid, oom_before)
            log = LogFile(spec.log_path, spec.log_max_bytes, spec.log_max_files)
        except OSError:
            launch.discard(spawned)
            if run is not None:
                run.undo()
            raise
        try:
            launch.release(spawned, bridge, self._veth_name(container_id) if bridge and not spawned.veth else "")
        except launch.StartError as e:
            log.close()
            for fd in (out_r, err_r):
                os.close(fd)
            run.undo()
            raise RequestError("failed", str(e)) from None
        running = Running(container_id, pid, run.generation, oom_before, log, report=spawned.error_r)
        for fd, stream in ((out_r, b"stdout"), (err_r, b"stderr")):
            os.set_blocking(fd, False)
            running.pipes[fd] = (stream, LineSplitter())
            self.selector.register(fd, selectors.EVENT_READ, ("pipe", running))
        self.running[container_id] = running
        self.by_pid[pid] = running
        return {"pid": pid, "generation": run.generation, "started_at": run.started_at}

    def op_signal(self, client: Client, message: dict[str, Any]) -> dict[str, Any]:
        running = self._running(message["id"])
        os.kill(running.pid, int(message["signal"]))
        return {}

    def op_exec(self, client: Client, message: dict[str, Any]) -> dict[str, Any]:
        running = self._running(message["id"])
        spec = execproc.ExecSpec.from_json(dict(message["exec"]))
        try:
            pid, fds = execproc.spawn(running.pid, self._procs_fds(running.container_id), spec)
        except OSError as e:
            raise RequestError("failed", str(e)) from None
        self.execs[pid] = running.container_id
        return {"exec_id": pid, "pid": pid, "_fds": fds}

    def op_release(self, client: Client, message: dict[str, Any]) -> dict[str, Any]:
        container_id = message["id"]
        if container_id in self.running:
            raise RequestError("conflict", f"container {container_id} is still running")
        self._discard(container_id)
        for fd in self.cgroup_fds.pop(container_id, []):
            os.close(fd)
        self.cgroups.remove(container_id)
        return {}

    def op_shutdown(self, client: Client, message: dict[str, Any]) -> dict[str, Any]:
        if self.running:
            raise RequestError("conflict", f"{len(self.running)} containers are still running")
        for container_id in list(self.spawned):
            self._discard(container_id)
        if self.pool is not None:
            self.pool.close()
        self.stopping = True
        return {}

    def _running(self, container_id: str) -> Running:
        running = self.running.get(container_id)
        if running is None:
            raise RequestError("conflict", f"container {container_id} is not running")
        return running

    # ---- container output and exits -------------------------------------------------------------
    def _on_pipe(self, running: Running, fd: int) -> None:
        stream, splitter = running.pipes[fd]
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        pieces = splitter.feed(chunk) if chunk else splitter.flush()
        if pieces and running.log is not None:  # only adopted containers have no log, and no pipes
            running.log.write(stream, pieces)
        if chunk:
            return
        self.selector.unregister(fd)
        os.close(fd)
        del running.pipes[fd]

    def _drain(self, running: Running) -> None:
        """After init's exit every process of the PID namespace is gone: read the pipes to EOF."""
        for fd in list(running.pipes):
            os.set_blocking(fd, True)
            while fd in running.pipes:
                self._on_pipe(running, fd)
        if running.log is not None:
            running.log.close()

    # ---- adoption after a supervisor restart ----------------------------------------------------
    def adopt(self) -> None:
        """Takes over containers a previous supervisor started that still run (same PID and start time).

        Their output pipes died with the old supervisor, and their exit status cannot be collected
        (they are not our children): a pidfd says when they end, and the status is reported unknown.
        Runs that ended meanwhile get an exit record saying so.
        """
        root = os.path.join(self.state_dir, "containers")
        for container_id in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            directory = records.container_dir(self.state_dir, container_id)
            run = records.read_json(os.path.join(directory, "run.json"))
            ended = records.read_json(os.path.join(directory, "exit.json"))
            if run is None or (ended is not None and ended.get("generation") == run.get("generation")):
                continue
            pid, generation = int(run["pid"]), int(run["generation"])
            if records.process_start_ticks(pid) != run.get("start_ticks"):
                self._record_exit(container_id, generation, UNKNOWN_EXIT, False, LOST_STATUS)
                continue
            running = Running(container_id, pid, generation, int(run.get("oom_before", 0)), None,
                              pidfd=os.pidfd_open(pid))
            self.selector.register(running.pidfd, selectors.EVENT_READ, ("pidfd", running))
            self.running[container_id] = running
            self.cgroups.locate(container_id, pid)  # its cgroups exist: found again for exec

    def _on_adopted_exit(self, running: Running) -> None:
        self.selector.unregister(running.pidfd)
        os.close(running.pidfd)
        self._finish(running, UNKNOWN_EXIT, LOST_STATUS)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            if pid in self.execs:
                del self.execs[pid]
                self._broadcast({"event": "exec_exited", "exec_id": pid, "exit_code": code})
            elif pid in self.by_pid:
                self._finish(self.by_pid.pop(pid), code)
            elif self.pool is not None:
                self.pool.forget(pid, code)

    def _finish(self, running: Running, code: int, error: str = "") -> None:
        if running.report >= 0:  # closed by the init's execve, or holding why it failed after the go
            error = error or launch.read_report(running.report).decode(errors="replace")
            os.close(running.report)
        self._drain(running)
        del self.running[running.container_id]
        oom = self.cgroups.oom_kills(running.container_id) > running.oom_before
        self._record_exit(running.container_id, running.generation, code, oom, error)

    def _record_exit(self, container_id: str, generation: int, code: int, oom: bool, error: str) -> None:
        event = {"id": container_id, "generation": generation, "exit_code": code, "oom_killed": oom,
                 "finished_at": time.time_ns(), "error": error}
        directory = records.container_dir(self.state_dir, container_id)
        try:
            records.write_json(os.path.join(directory, "exit.json"), event)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
        self._broadcast({"event": "exited", **event})
