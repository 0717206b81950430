"""asyncio client for the runtime supervisor (protocol: agent/supervisor/protocol.py).

One connection carries requests and the supervisor's events. The supervisor is started when its
socket does not answer, in a session of its own, so it and its containers outlive the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import agent
from agent.errors import Conflict, Failed, InvalidSpec, NotFound, Unavailable
from agent.supervisor import protocol

log = logging.getLogger(__name__)


class Unprepared(Failed):
    """The supervisor has no init waiting for the container (it restarted since the create): the
    start is to be sent again with the container's launch spec."""


ERRORS: dict[str, Callable[[str], Exception]] = {
    "not_found": NotFound, "conflict": Conflict, "failed": Failed, "unprepared": Unprepared,
    "invalid": lambda message: InvalidSpec("request", message),
}
SPAWN_TIMEOUT = 10.0
RECONNECT_BACKOFF = (0.1, 1.0)
RECONNECT_WAIT = 10.0  # seconds a request waits for a lost supervisor connection to be repaired


def supervisor_command(state_dir: str, cgroup_parent: str, socket_path: str) -> list[str]:
    return [sys.executable, "-S", "-m", "agent.supervisor", "--state-dir", state_dir,
            "--cgroup-parent", cgroup_parent, "--socket", socket_path]


class SupervisorClient:
    def __init__(self, state_dir: str, cgroup_parent: str) -> None:
        self.state_dir = state_dir
        self.cgroup_parent = cgroup_parent
        self.socket_path = os.path.join(state_dir, "supervisor.sock")
        self._on_event: Callable[[dict[str, Any]], None] = lambda _event: None
        self._on_reconnect: Callable[[], Awaitable[None]] | None = None
        self._closing = False
        self._established = False
        self._generation = 0
        self._reconnecting: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_req = 0
        self.supervisor_pid = 0

    def set_event_handler(self, handler: Callable[[dict[str, Any]], None],
                          on_reconnect: Callable[[], Awaitable[None]] | None = None) -> None:
        """Where exit events go (set before connect() so none is missed), and what to run after a
        lost supervisor connection has been re-established (the caller re-reads the supervisor's view)."""
        self._on_event = handler
        self._on_reconnect = on_reconnect

    async def connect(self) -> None:
        """Connects to the running supervisor, starting one first when none answers."""
        try:
            await self._open()
        except OSError:
            spawned = self._spawn()
            deadline = asyncio.get_running_loop().time() + SPAWN_TIMEOUT
            while True:
                await asyncio.sleep(0.02)
                try:
                    await self._open()
                    break
                except OSError:
                    # One that exited at start is not waited for: the caller's next try spawns anew.
                    if spawned.poll() is not None or asyncio.get_running_loop().time() > deadline:
                        raise Unavailable(f"the runtime supervisor did not start: see "
                                          f"{os.path.join(self.state_dir, 'supervisor.log')}") from None
        try:
            hello = await self.call("hello")
            self.supervisor_pid = int(hello["pid"])
            await self.call("subscribe")
        except BaseException:
            self._drop()
            raise
        self._established = True  # from now on a lost connection is repaired in the background

    def _spawn(self) -> subprocess.Popen[bytes]:
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(agent.__file__)))
        env = {**os.environ, "PYTHONPATH": package_root}
        with open(os.path.join(self.state_dir, "supervisor.log"), "ab") as log_file:
            return subprocess.Popen(supervisor_command(self.state_dir, self.cgroup_parent, self.socket_path),
                                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env,
                                    start_new_session=True, close_fds=True)

    async def _open(self) -> None:
        reader, writer = await asyncio.open_unix_connection(self.socket_path)
        self._generation += 1
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read(reader, self._generation))

    def _drop(self) -> None:
        """Abandons a half-open connection (its handshake failed); its reader must not reconnect."""
        self._generation += 1
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def _read(self, reader: asyncio.StreamReader, generation: int) -> None:
        buffer = bytearray()
        try:
            while data := await reader.read(65536):
                buffer.extend(data)
                for message in protocol.decode_frames(buffer):
                    if "event" in message:
                        self._on_event(message)
                    else:
                        future = self._pending.pop(int(message.get("req", -1)), None)
                        if future and not future.done():
                            future.set_result(message)
        except (OSError, protocol.ProtocolError) as e:
            log.error("lost the runtime supervisor connection: %s", e)
        finally:
            if generation == self._generation:  # this is the live connection, not an abandoned one
                pending, self._pending = self._pending, {}
                for future in pending.values():
                    if not future.done():
                        future.set_exception(Unavailable("the runtime supervisor connection closed"))
                self._writer = None
                established, self._established = self._established, False
                if established and not self._closing:
                    log.error("the runtime supervisor went away; reconnecting (containers keep running)")
                    self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        """Reconnects, starting a new supervisor if the old one died (its containers live on and the
        new one adopts them), then lets the owner reconcile."""
        delay = RECONNECT_BACKOFF[0]
        while not self._closing:
            try:
                await self.connect()
            except (OSError, Unavailable, Failed) as e:
                log.warning("runtime supervisor not reachable yet (%s); retrying in %.1fs", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_BACKOFF[1])
                continue
            log.info("reconnected to the runtime supervisor (pid %d)", self.supervisor_pid)
            if self._on_reconnect is not None:
                await self._on_reconnect()
            return

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        return await self.send(op, **fields)

    def send(self, op: str, **fields: Any) -> Coroutine[Any, Any, dict[str, Any]]:
        """Writes the request at once and returns its reply to await: the caller can do its own
        work (a record's write) while the supervisor does the request's."""
        if self._writer is None:
            if self._reconnecting is None or self._reconnecting.done():
                raise Unavailable("the runtime supervisor is not connected")
            return self._send_once_reconnected(op, fields)
        self._next_req += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_req] = future
        self._writer.write(protocol.encode({"op": op, "req": self._next_req, **fields}))
        return _checked(future)

    async def _send_once_reconnected(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A request made while a lost connection is being repaired (a supervisor that died is
        replaced within a second) waits for the new one and its reconciliation, for a while,
        instead of failing a create or a start that a moment later would have worked."""
        assert self._reconnecting is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._reconnecting), RECONNECT_WAIT)
        except TimeoutError:
            raise Unavailable(f"the runtime supervisor is not connected (still reconnecting after "
                              f"{RECONNECT_WAIT:.0f}s: see {os.path.join(self.state_dir, 'supervisor.log')})") from None
        return await self.send(op, **fields)

    def exec_blocking(self, container_id: str, spec: dict[str, Any]) -> tuple[int, list[int]]:
        """Starts an exec'd process; returns its id and our ends of its stdio (passed as SCM_RIGHTS)."""
        reply, fds = protocol.call_blocking(self.socket_path, {"op": "exec", "id": container_id, "exec": spec},
                                            max_fds=3)
        if not reply.get("ok"):
            for fd in fds:
                os.close(fd)
            raise ERRORS.get(str(reply.get("kind")), Failed)(str(reply.get("error")))
        return int(reply["exec_id"]), fds

    async def close(self) -> None:
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)


async def _checked(future: asyncio.Future[dict[str, Any]]) -> dict[str, Any]:
    reply = await future
    if not reply.get("ok"):
        raise ERRORS.get(str(reply.get("kind")), Failed)(str(reply.get("error")))
    return reply
