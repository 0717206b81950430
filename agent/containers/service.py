"""The container service: every container operation of the agent, over the runtime supervisor.

Per-container operations are serialised by a lock per container. State changes go through
`state.transition` and are persisted before callers see them. Exits arrive as supervisor events
(`on_event`) and drive the restart policy; after an agent restart, `recover` rebuilds everything
from the records on disk and the supervisor's view, so running containers are re-adopted and
exits that happened meanwhile are still reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import asdict
from typing import Any, Protocol, TypeVar

from agent.cgroups import CgroupManager, CgroupStats
from agent.containers import logs, naming, restart, runspec
from agent.containers.model import Container, ContainerSpec, NetworkMode, State
from agent.containers.records import ContainerRecords
from agent.containers.state import transition, with_unrecorded_run
from agent.containers.validate import validate
from agent.errors import AlreadyExists, Conflict, InvalidSpec, NotFound, ShoalError
from agent.images.store import ImageStore
from agent.network.manager import NetworkManager
from agent.runtime.client import SupervisorClient, Unprepared

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_STOP_TIMEOUT = 10
MANUAL_SIGNALS = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}


class LifecycleObserver(Protocol):
    """What the metrics layer learns from the service (declared here, where it is consumed)."""

    def container_started(self, seconds: float) -> None: ...

    def container_restarted(self, container_id: str) -> None: ...


async def _even_if_the_caller_leaves(work: Coroutine[Any, Any, T]) -> T:
    """Runs `work` to its end even if its caller is cancelled (a client's deadline or cancel)."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved, if orphaned
    return await asyncio.shield(task)


def parse_signal(value: str) -> signal.Signals:
    text = value.strip().upper() or "SIGKILL"
    try:
        return signal.Signals(int(text)) if text.isdigit() else signal.Signals[
            text if text.startswith("SIG") else "SIG" + text]
    except (KeyError, ValueError):
        raise InvalidSpec("signal", f"{value!r} is not a signal name (TERM, SIGKILL) or number") from None


class ContainerService:
    def __init__(self, *, state_dir: str, images: ImageStore, supervisor: SupervisorClient,
                 cgroups: CgroupManager, network: NetworkManager, observer: LifecycleObserver,
                 log_max_bytes: int = 10 << 20, log_max_files: int = 3) -> None:
        self.state_dir = state_dir
        self.network = network
        self.records = ContainerRecords(state_dir)
        self.images = images
        self.supervisor = supervisor
        self.cgroups = cgroups
        self.observer = observer
        self.log_max_bytes = log_max_bytes
        self.log_max_files = log_max_files
        # One mountpoint serves every container: each mounts its overlay there inside its own mount
        # namespace, so the host never sees it and no directory is made per container.
        self.rootfs_mountpoint = os.path.join(state_dir, "rootfs")
        os.makedirs(self.rootfs_mountpoint, exist_ok=True)
        self.containers: dict[str, Container] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._next_exit: dict[str, asyncio.Future[Container]] = {}
        self._early_exits: dict[str, dict[str, Any]] = {}
        self._restarts: dict[str, asyncio.Task[None]] = {}
        self._exec_waiters: dict[int, asyncio.Future[int]] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self._exec_early: dict[int, int] = {}
        # Auto-remove containers that a `run` following them removes itself (agent/containers/run.py).
        self.removal_held: set[str] = set()
        images.set_in_use_check(self.users_of_image)
        supervisor.set_event_handler(self.on_event, on_reconnect=self.reconcile)

    # ---- lookup ---------------------------------------------------------------------------------
    def resolve(self, ref: str) -> Container:
        if not ref:
            raise InvalidSpec("container", "a container id, id prefix or name")
        if ref in self.containers:
            return self.containers[ref]
        by_name = [c for c in self.containers.values() if c.name == ref]
        if by_name:
            return by_name[0]
        matches = [c for c in self.containers.values() if c.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidSpec("container", f"id prefix {ref!r} matches {len(matches)} containers; give more")
        raise NotFound(f"no such container: {ref}")

    def containers_list(self, include_stopped: bool) -> list[Container]:
        found = [c for c in self.containers.values() if include_stopped or c.is_active]
        return sorted(found, key=lambda c: c.created_at, reverse=True)

    def users_of_image(self, image_id: str) -> list[str]:
        return sorted(c.name for c in self.containers.values() if c.image_id == image_id)

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self._locks.setdefault(container_id, asyncio.Lock())

    def _commit(self, container: Container) -> Container:
        self.records.save(container)
        self.containers[container.id] = container
        return container

    # ---- create ---------------------------------------------------------------------------------
    async def create(self, spec: ContainerSpec) -> Container:
        validate(spec)
        image = self.images.resolve(spec.image)
        self.images.mark_used(image.id)
        taken = {c.name: c.id for c in self.containers.values()}
        if spec.name in taken:
            raise AlreadyExists(f"container name {spec.name!r} is already in use by container {taken[spec.name][:12]}")
        container_id = secrets.token_hex(32)
        name = spec.name or naming.generate(set(taken))
        container = Container(id=container_id, name=name, spec=spec, image_id=image.id, argv=(),
                              created_at=time.time_ns())
        container = container.evolve(argv=runspec.process_for(spec, image.config, container.hostname).argv)
        directory = self.records.directory(container_id)
        bridged = spec.network is NetworkMode.BRIDGE and self.network.ready
        try:
            # A bridged container gets its address now, as a Kubernetes pod sandbox does, so its
            # eth0 is set up before the start; one that publishes ports is attached at start, which
            # is where Docker reports a port already taken.
            attachment = await self.network.attach(container_id, name, ()) if bridged and not spec.ports else None
            container = container.evolve(address=attachment.address) if attachment else container
            for sub in ("upper", "work"):
                os.makedirs(os.path.join(directory, sub))
            self.records.write_etc_files(container, container.address, attachment.nameserver if attachment else "")
            # The supervisor spawns the init now: it sets itself up while the record is written,
            # this reply and the start request travel, and `start` only releases it. (An init
            # spawned for a record that a crash kept from being written is released by the next
            # agent's recovery.)
            prepared = self.supervisor.send("prepare", id=container_id, limits=asdict(spec.resources),
                                            launch=self._launch(container, attachment.launch if attachment else None,
                                                                self.network.link() if bridged else None))
            try:
                self._commit(container)
            except BaseException:
                prepared.close()
                raise
            await prepared
        except BaseException:
            self.network.detach(container_id)
            self.containers.pop(container_id, None)
            shutil.rmtree(directory, ignore_errors=True)
            with contextlib.suppress(Exception):
                await self.supervisor.call("release", id=container_id)
            raise
        return container

    # ---- start ----------------------------------------------------------------------------------
    async def start(self, ref: str) -> Container:
        """A caller that goes away (a client's deadline, Ctrl-C during `run`) does not cut a start
        short: the supervisor would run the container while its record still said created."""
        container = self.resolve(ref)
        return await _even_if_the_caller_leaves(self._start_unless_active(container.id))

    async def _start_unless_active(self, container_id: str) -> Container:
        async with self._lock(container_id):
            container = self.containers[container_id]
            if container.is_active:
                raise Conflict(f"container {container.name} is already {container.state.value}")
            return await self._start(container, restart_count=container.restart_count)

    def _launch(self, container: Container, bridge: dict[str, Any] | None,
                link: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the supervisor needs to start the container. `bridge` wires it to the bridge with
        its address (at create, or at start); `link` (at create) only names the bridge, for the veth."""
        image = self.images.resolve(container.image_id)
        spec = container.spec
        process = runspec.process_for(spec, image.config, container.hostname)
        directory = self.records.directory(container.id)
        binds = [(m.source, m.destination, m.read_only) for m in spec.mounts]
        binds += self.records.etc_binds(container.id)
        return {
            "argv": list(process.argv), "env": list(process.env), "cwd": process.cwd, "user": process.user,
            "hostname": container.hostname, "rootfs": self.rootfs_mountpoint,
            "layers_dir": self.images.layers_dir, "lower": self.images.lower_dirs(image),
            "upper": os.path.join(directory, "upper"), "work": os.path.join(directory, "work"),
            "binds": binds, "host_network": spec.network is NetworkMode.HOST,
            "log_path": self.log_path(container), "log_max_bytes": self.log_max_bytes,
            "log_max_files": self.log_max_files, "bridge": bridge, "link": link,
        }

    def log_path(self, container: Container) -> str:
        return os.path.join(self.records.directory(container.id), "container.log")

    async def _start(self, container: Container, restart_count: int) -> Container:
        began = time.perf_counter()
        bridge, address = None, ""
        try:
            if container.spec.network is NetworkMode.BRIDGE:
                attachment = self.network.attachment_of(container.id) if container.address else None
                if attachment is None:  # not attached at create, or a restart
                    attachment = await self.network.attach(container.id, container.name, container.spec.ports)
                    self.records.write_etc_files(container, attachment.address, attachment.nameserver)
                bridge, address = attachment.launch, attachment.address
            reply = await self._release(container, bridge)
        except ShoalError as e:
            self.network.detach(container.id)
            failed = container.evolve(error=str(e), exit_code=127 if "not found" in str(e) else 126, address="")
            if failed.state is State.RESTARTING:
                failed = transition(failed, State.EXITED, finished_at=time.time_ns())
            self._commit(failed)
            self._notify_exit(failed)
            raise
        self.observer.container_started(time.perf_counter() - began)
        started = transition(container, State.RUNNING, pid=int(reply["pid"]), generation=int(reply["generation"]),
                             started_at=int(reply["started_at"]), error="", oom_killed=False,
                             stopped_by_user=False, restart_count=restart_count, address=address)
        self._commit(started)
        early = self._early_exits.pop(container.id, None)
        if early and int(early["generation"]) == started.generation:
            self._apply_exit(started, early)
        return self.containers[container.id]

    async def _release(self, container: Container, bridge: dict[str, Any] | None) -> dict[str, Any]:
        """Starts the init spawned at create, which has its launch spec already; a restart, a start
        after an exit, or one whose init a new supervisor does not have, sends the spec for a new one."""
        if container.state is State.CREATED:
            with contextlib.suppress(Unprepared):
                return await self.supervisor.call("start", id=container.id, bridge=bridge)
        launch, limits = self._launch(container, bridge), asdict(container.spec.resources)
        return await self.supervisor.call("start", id=container.id, bridge=bridge, launch=launch, limits=limits)

    # ---- exits and restarts ---------------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "exec_exited":
            exec_id, code = int(event["exec_id"]), int(event["exit_code"])
            waiter = self._exec_waiters.pop(exec_id, None)
            if waiter and not waiter.done():
                waiter.set_result(code)
            else:
                self._exec_early[exec_id] = code
            return
        if event.get("event") != "exited":
            return
        container = self.containers.get(str(event["id"]))
        if container is None:
            return
        generation = int(event["generation"])
        if generation > container.generation:
            self._early_exits[container.id] = event  # the start reply has not been processed yet
        elif generation == container.generation and container.state is State.RUNNING:
            self._apply_exit(container, event)

    def _apply_exit(self, container: Container, event: dict[str, Any]) -> None:
        finished_at = int(event.get("finished_at") or time.time_ns())
        exit_code = int(event["exit_code"])
        decision = restart.decide(container.spec.restart_policy, exit_code=exit_code,
                                  restart_count=container.restart_count, backoff_step=container.backoff_step,
                                  ran_for=(finished_at - container.started_at) / 1e9,
                                  stopped_by_user=container.stopped_by_user)
        changes = {"pid": 0, "exit_code": exit_code, "oom_killed": bool(event.get("oom_killed")),
                   "finished_at": finished_at, "error": str(event.get("error") or ""), "address": ""}
        self.network.detach(container.id)
        if decision.restart:
            exited = transition(container, State.RESTARTING, backoff_step=decision.next_backoff_step, **changes)
            self._restarts[container.id] = asyncio.get_running_loop().create_task(
                self._restart_after(container.id, decision.delay))
        else:
            exited = transition(container, State.EXITED, **changes)
        self._commit(exited)
        self._notify_exit(exited)
        if exited.state is State.EXITED and exited.spec.auto_remove and exited.id not in self.removal_held:
            asyncio.get_running_loop().create_task(self.auto_remove(exited.id))

    async def _restart_after(self, container_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self._lock(container_id):
            self._restarts.pop(container_id, None)
            container = self.containers.get(container_id)
            if container is None or container.state is not State.RESTARTING:
                return
            with contextlib.suppress(ShoalError):
                await self._start(container, restart_count=container.restart_count + 1)
                self.observer.container_restarted(container_id)

    async def auto_remove(self, container_id: str) -> None:
        with contextlib.suppress(NotFound, Conflict):
            await self.remove(container_id, force=False)

    def _notify_exit(self, container: Container) -> None:
        waiter = self._next_exit.pop(container.id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(container)

    def _exit_future(self, container_id: str) -> asyncio.Future[Container]:
        """The one future for the container's next exit, shared by every waiter (await it shielded:
        a cancelled caller must not cancel it for the others)."""
        future = self._next_exit.get(container_id)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._next_exit[container_id] = future
        return future

    async def wait(self, ref: str) -> Container:
        container = self.resolve(ref)
        if container.state is State.CREATED or not container.is_active:
            return container
        return await asyncio.shield(self._exit_future(container.id))

    # ---- stop, kill, remove ---------------------------------------------------------------------
    async def stop(self, ref: str, timeout: int) -> Container:
        container = self.resolve(ref)
        async with self._lock(container.id):
            container = self.containers[container.id]
            if container.state is State.RESTARTING:
                self._cancel_restart(container.id)
                return self._commit(transition(container, State.EXITED, stopped_by_user=True))
            if container.state is not State.RUNNING:
                return container
            exited = self._exit_future(container.id)
            self._commit(container.evolve(stopped_by_user=True))
            image = self.images.resolve(container.image_id)
            stop_signal = parse_signal(image.config.stop_signal or "SIGTERM")
            await self._signal(container, stop_signal)
            grace = DEFAULT_STOP_TIMEOUT if timeout < 0 else timeout
            try:
                return await asyncio.wait_for(asyncio.shield(exited), grace)
            except TimeoutError:
                await self._signal(container, signal.SIGKILL)
                return await asyncio.shield(exited)

    async def _signal(self, container: Container, sig: signal.Signals) -> None:
        with contextlib.suppress(Conflict):  # it may exit between our check and the signal
            await self.supervisor.call("signal", id=container.id, signal=int(sig))

    async def kill(self, ref: str, signal_name: str) -> None:
        sig = parse_signal(signal_name)
        container = self.resolve(ref)
        async with self._lock(container.id):
            container = self.containers[container.id]
            if container.state is not State.RUNNING:
                raise Conflict(f"container {container.name} is not running")
            if sig in MANUAL_SIGNALS:
                self._commit(container.evolve(stopped_by_user=True))
            await self.supervisor.call("signal", id=container.id, signal=int(sig))

    def _cancel_restart(self, container_id: str) -> None:
        task = self._restarts.pop(container_id, None)
        if task:
            task.cancel()

    async def remove(self, ref: str, force: bool) -> None:
        """Ends even if the caller leaves mid-kill: else the record stays under a name it thinks free."""
        container = self.resolve(ref)
        await _even_if_the_caller_leaves(self._remove(container, force))

    async def _remove(self, container: Container, force: bool) -> None:
        if container.state is State.RUNNING:
            if not force:
                raise Conflict(f"container {container.name} is running: stop it first or remove with force")
            exited = self._exit_future(container.id)
            await self.kill(container.id, "SIGKILL")
            await asyncio.shield(exited)
        async with self._lock(container.id):
            self._cancel_restart(container.id)
            trashed = self.records.discard(container.id)
            self.containers.pop(container.id, None)
            self._locks.pop(container.id, None)
            self._next_exit.pop(container.id, None)
        self.network.detach(container.id)  # a container created on the bridge and never started holds an address
        self._clean_up_later(container.id, trashed)

    def _clean_up_later(self, container_id: str, directory: str) -> None:
        """The name and the record are gone at once; releasing the cgroups and deleting the writable
        layer (milliseconds on ext4) happen off the caller's path. drain() waits for them."""
        task = asyncio.get_running_loop().create_task(self._clean_up(container_id, directory))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _clean_up(self, container_id: str, directory: str) -> None:
        try:
            await self.supervisor.call("release", id=container_id)
        except Exception as e:  # the trash is retried on the next start; nothing else depends on it
            log.warning("releasing the cgroups of removed container %s failed: %s", container_id[:12], e)
            return
        await asyncio.to_thread(shutil.rmtree, directory, True)

    async def drain(self) -> None:
        """Waits for pending cleanups (the agent's shutdown)."""
        if self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)

    # ---- logs, stats ----------------------------------------------------------------------------
    async def logs(self, ref: str, follow: bool, tail: int) -> AsyncIterator[list[logs.LogLine]]:
        container = self.resolve(ref)
        path = self.log_path(container)
        lines, handle = await asyncio.to_thread(logs.read_tail, path, tail)
        if lines:
            yield lines
        if not follow:
            if handle:
                handle.close()
            return

        def active() -> bool:
            current = self.containers.get(container.id)
            return current is not None and current.is_active

        async def changed(timeout: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._exit_future(container.id)), timeout)

        async for batch in logs.follow(path, handle, active, changed):
            yield batch

    def stats(self, refs: list[str]) -> list[tuple[Container, CgroupStats]]:
        targets = [self.resolve(r) for r in refs] if refs else self.containers_list(include_stopped=False)
        return [(c, self.cgroups.stats(c.id)) for c in targets if c.state is State.RUNNING]

    # ---- exec -----------------------------------------------------------------------------------
    async def exec(self, ref: str, argv: list[str], *, tty: bool, env: list[str], user: str, working_dir: str,
                   rows: int, cols: int) -> tuple[int, list[int]]:
        """Starts a process in the container; returns its exec id and our ends of its stdio."""
        container = self.resolve(ref)
        if container.state is not State.RUNNING:
            raise Conflict(f"container {container.name} is not running")
        if not argv:
            raise InvalidSpec("command", "a command to run is required")
        image = self.images.resolve(container.image_id)
        process = runspec.process_for(container.spec, image.config, container.hostname)
        extra = (("TERM=xterm",) if tty else ()) + tuple(env)
        spec = {"argv": argv, "env": list(runspec.merge_env(process.env, extra)), "cwd": working_dir or process.cwd,
                "user": user or process.user, "tty": tty, "rows": rows, "cols": cols}
        return await asyncio.to_thread(self.supervisor.exec_blocking, container.id, spec)

    async def exec_exit_code(self, exec_id: int) -> int:
        if exec_id in self._exec_early:
            return self._exec_early.pop(exec_id)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._exec_waiters[exec_id] = future
        return await future

    # ---- recovery -------------------------------------------------------------------------------
    async def recover(self) -> None:
        """Rebuilds in-memory state from disk and the supervisor, after the agent (re)starts."""
        for container_id in self.records.discarded():
            self._clean_up_later(container_id, os.path.join(self.records.trash, container_id))
        for container_id in self.records.unrecorded():
            self._clean_up_later(container_id, self.records.discard(container_id))
        for container in self.records.load_all():
            self.containers[container.id] = container
            if container.state is State.CREATED and container.address:  # attached at create
                self.network.adopt(container.id, container.name, container.address, container.spec.ports)
        await self.reconcile()

    async def reconcile(self) -> None:
        """Aligns running/restarting containers with the supervisor's view (after a (re)connect),
        and releases inits it spawned for containers this agent has no record of."""
        reply = await self.supervisor.call("status")
        for container_id in reply.get("prepared", []):
            if container_id not in self.containers:
                with contextlib.suppress(ShoalError):
                    await self.supervisor.call("release", id=container_id)
        status = reply["containers"]
        for container in list(self.containers.values()):
            if not container.is_active:  # unless the supervisor started a run that its record missed
                run_record = self.records.read_supervisor_record(container.id, "run.json")
                container = with_unrecorded_run(container, run_record)
                if not container.is_active:
                    continue
            running = status.get(container.id)
            if running and int(running["generation"]) == container.generation:
                self._commit(container.evolve(state=State.RUNNING, pid=int(running["pid"])))
                self.network.adopt(container.id, container.name, container.address, container.spec.ports)
                continue
            exit_record = self.records.read_supervisor_record(container.id, "exit.json")
            if container.state is State.RUNNING and exit_record and \
                    int(str(exit_record["generation"])) == container.generation:
                self._apply_exit(container, exit_record)
            elif container.state is State.RESTARTING:
                self._restarts[container.id] = asyncio.get_running_loop().create_task(
                    self._restart_after(container.id, 0))
            else:
                self._commit(transition(container, State.EXITED, pid=0, exit_code=-1, address="",
                                        error="exit status unknown: the runtime supervisor lost the container"))
