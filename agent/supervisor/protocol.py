"""The agent ⇄ supervisor protocol: length-prefixed JSON over a unix stream socket.

Frame: 4-byte big-endian length, then that many bytes of UTF-8 JSON (an object).
Requests carry `op` and a client-chosen `req` number; the reply echoes `req` with `ok: true` and
the op's fields, or `ok: false` with `error` (one line) and `kind` (`not_found`, `conflict`,
`invalid`, `failed`, `unprepared`). Events carry `event` instead of `req` and go to connections that sent
`subscribe`. Ops:

- `hello` → `version`, `pid`.
- `subscribe` → later events `exited` {id, generation, exit_code, oom_killed, finished_at, error}
  and `exec_exited` {exec_id, exit_code}.
- `prepare` {id, limits, launch?} → the container's cgroups made (and their procs files opened
  ahead); with `launch`, its init spawned as well, setting itself up until `start` releases it.
- `start` {id, bridge, launch?, limits?} → {pid, generation, started_at} once the container's
  process is set up and told to exec, or an error naming the setup step that failed; an exec that
  fails after that is its `exited` event, with the error. The process is the one spawned at
  `prepare`, which has its launch spec already (`bridge`, the address a container attached at
  start gets, is the only news), else a new one spawned from `launch` and `limits`: without them,
  `unprepared` (a new supervisor has no init waiting for a container created under the old one).
- `signal` {id, signal} → delivered to the container's init.
- `exec` {id, exec} → {exec_id, pid}, with the caller's ends of stdin/stdout/stderr (or one
  terminal) passed as SCM_RIGHTS on the reply frame.
- `status` → {containers: {id: {pid, generation} }} for every running container, and
  {prepared: [id]}, the containers whose spawned init waits for its start.
- `release` {id} → its spawned init (if never started) killed, its cgroups removed (it must not
  be running).
- `shutdown` → the supervisor exits; refused while containers run.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 16 << 20
VERSION = 1


class ProtocolError(Exception):
    pass


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


def decode_frames(buffer: bytearray) -> list[dict[str, Any]]:
    """Removes every complete frame from the front of buffer and returns the decoded messages."""
    messages = []
    while len(buffer) >= HEADER.size:
        (length,) = HEADER.unpack_from(buffer)
        if length > MAX_FRAME:
            raise ProtocolError(f"frame of {length} bytes exceeds the {MAX_FRAME}-byte limit")
        if len(buffer) < HEADER.size + length:
            break
        body = bytes(buffer[HEADER.size:HEADER.size + length])
        del buffer[:HEADER.size + length]
        message = json.loads(body)
        if not isinstance(message, dict):
            raise ProtocolError("a frame must hold a JSON object")
        messages.append(message)
    return messages


def call_blocking(path: str, message: dict[str, Any], timeout: float = 30.0,
                  max_fds: int = 0) -> tuple[dict[str, Any], list[int]]:
    """One request on a fresh connection, for callers that need passed fds (exec) or no event loop."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(encode({**message, "req": 1}))
        buffer = bytearray()
        fds: list[int] = []
        while True:
            if max_fds:
                data, new_fds, _flags, _addr = socket.recv_fds(sock, 65536, max_fds)
                fds.extend(new_fds)
            else:
                data = sock.recv(65536)
            if not data:
                raise ProtocolError("the supervisor closed the connection before answering")
            buffer.extend(data)
            for reply in decode_frames(buffer):
                if reply.get("req") == 1:
                    return reply, fds


def listen(socket_path: str) -> socket.socket:
    """The supervisor's socket (owner only), unless another supervisor answers on it."""
    if _answers(socket_path):
        raise SystemExit(f"another supervisor is serving {socket_path}; not starting a second one")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    listener.bind(socket_path)
    os.chmod(socket_path, 0o600)
    listener.listen(64)
    listener.setblocking(False)
    return listener


def _answers(socket_path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(socket_path)
        except OSError:
            return False
    return True
