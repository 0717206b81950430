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
from collections.abc import Callable
from typing import Any

import agent
from agent.errors import Conflict, Failed, InvalidSpec, NotFound, Unavailable
from agent.supervisor import protocol

log = logging.getLogger(__name__)

ERRORS: dict[str, Callable[[str], Exception]] = {
    "not_found": NotFound, "conflict": Conflict, "failed": Failed,
    "invalid": lambda message: InvalidSpec("request", message),
}
SPAWN_TIMEOUT = 10.0


def supervisor_command(state_dir: str, cgroup_parent: str, socket_path: str) -> list[str]:
    return [sys.executable, "-S", "-m", "agent.supervisor", "--state-dir", state_dir,
            "--cgroup-parent", cgroup_parent, "--socket", socket_path]


class SupervisorClient:
    def __init__(self, state_dir: str, cgroup_parent: str) -> None:
        self.state_dir = state_dir
        self.cgroup_parent = cgroup_parent
        self.socket_path = os.path.join(state_dir, "supervisor.sock")
        self._on_event: Callable[[dict[str, Any]], None] = lambda _event: None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_req = 0
        self.supervisor_pid = 0

    def set_event_handler(self, handler: Callable[[dict[str, Any]], None]) -> None:
        """Where exit events go; set before connect() so none is missed."""
        self._on_event = handler

    async def connect(self) -> None:
        """Connects to the running supervisor, starting one first when none answers."""
        try:
            await self._open()
        except OSError:
            self._spawn()
            deadline = asyncio.get_running_loop().time() + SPAWN_TIMEOUT
            while True:
                await asyncio.sleep(0.02)
                try:
                    await self._open()
                    break
                except OSError:
                    if asyncio.get_running_loop().time() > deadline:
                        raise Unavailable(f"the runtime supervisor did not start: see "
                                          f"{os.path.join(self.state_dir, 'supervisor.log')}") from None
        hello = await self.call("hello")
        self.supervisor_pid = int(hello["pid"])
        await self.call("subscribe")

    def _spawn(self) -> None:
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(agent.__file__)))
        env = {**os.environ, "PYTHONPATH": package_root}
        with open(os.path.join(self.state_dir, "supervisor.log"), "ab") as log_file:
            subprocess.Popen(supervisor_command(self.state_dir, self.cgroup_parent, self.socket_path),
                             stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env,
                             start_new_session=True, close_fds=True)

    async def _open(self) -> None:
        reader, writer = await asyncio.open_unix_connection(self.socket_path)
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
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
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(Unavailable("the runtime supervisor connection closed"))
            self._pending.clear()
            self._writer = None

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        if self._writer is None:
            raise Unavailable("the runtime supervisor is not connected")
        self._next_req += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_req] = future
        self._writer.write(protocol.encode({"op": op, "req": self._next_req, **fields}))
        reply = await future
        if not reply.get("ok"):
            raise ERRORS.get(str(reply.get("kind")), Failed)(str(reply.get("error")))
        return reply

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
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)
