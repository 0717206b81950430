"""The supervisor's pure pieces: framing, log format and rotation, mount plan, user resolution, imports."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.containers import logs
from agent.containers.logs import log_files, parse_line, read_tail
from agent.supervisor import protocol
from agent.supervisor.identity import UserError, find_executable, resolve_user
from agent.supervisor.logs import MAX_PARTIAL, LineSplitter, LogFile
from agent.supervisor.mounts import overlay_options, plan_mounts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_supervisor_imports_only_the_standard_library() -> None:
    code = ("import sys, agent.supervisor.server as s; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('grpc', 'google', 'asyncio', 'yaml', 'shoal')]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ROOT}).stdout
    assert out.strip() == "[]"


def test_frames_round_trip_in_pieces() -> None:
    data = protocol.encode({"op": "start", "req": 1}) + protocol.encode({"event": "exited", "id": "x"})
    buffer = bytearray()
    messages = []
    for byte in data:
        buffer.append(byte)
        messages += protocol.decode_frames(buffer)
    assert messages == [{"op": "start", "req": 1}, {"event": "exited", "id": "x"}]
    assert buffer == bytearray()


def test_oversized_frame_is_refused() -> None:
    with pytest.raises(protocol.ProtocolError, match="limit"):
        protocol.decode_frames(bytearray(protocol.HEADER.pack(protocol.MAX_FRAME + 1)))


def test_splitter_keeps_partial_lines_and_bounds_them() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"one\ntw") == [(b"one", True)]
    assert splitter.feed(b"o\n") == [(b"two", True)]
    long = splitter.feed(b"x" * (MAX_PARTIAL * 2 + 5))
    assert [complete for _, complete in long] == [False, False]
    assert splitter.flush() == [(b"xxxxx", False)]


def test_log_file_format_and_rotation(tmp_path: Path) -> None:
    path = str(tmp_path / "container.log")
    log = LogFile(path, max_bytes=200, max_files=3)
    for index in range(20):
        log.write(b"stdout" if index % 2 else b"stderr", [(f"line {index}".encode(), True)])
    log.write(b"stdout", [(b"tail without newline", False)])
    log.close()
    assert sorted(os.listdir(tmp_path)) == ["container.log", "container.log.1", "container.log.2"]
    lines, handle = read_tail(path, -1)
    assert handle is not None
    handle.close()
    assert lines[-1].data == b"tail without newline" and lines[-1].stream == "stdout"
    assert lines[-2].data == b"line 19\n"
    assert [int(line.data.split()[1]) for line in lines[:-1]] == list(range(20 - len(lines) + 1, 20))
    assert read_tail(path, 2)[0][0].data == b"line 19\n"


def test_cri_line_parsing() -> None:
    line = parse_line(b"2026-11-28T10:00:01.123456789Z stderr F hello world\n")
    assert line is not None
    assert (line.stream, line.data, line.time_ns % 1_000_000_000) == ("stderr", b"hello world\n", 123456789)


def test_mount_plan_orders_kernel_filesystems_before_binds(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    sources, steps = plan_mounts([(str(tmp_path), "/data", True), (str(tmp_path / "file"), "/etc/hosts", False)])
    assert [s.target for s in steps[:6]] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]
    assert sources == [str(tmp_path), str(tmp_path / "file")]
    assert steps[6].read_only and not steps[6].is_file and steps[7].is_file


def test_overlay_options_are_absolute_unless_too_long() -> None:
    expected = "lowerdir=/l/b:/l/a,upperdir=/u,workdir=/w,volatile"
    assert overlay_options("/l", ["b", "a"], "/u", "/w") == (expected, False)
    many = [f"{i:064x}" for i in range(60)]
    options, relative = overlay_options("/var/lib/shoal/agent/images/layers", many, "/u", "/w")
    assert relative and options.startswith("lowerdir=" + many[0] + ":") and len(options) < 4096


def test_user_resolution(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "group").write_text("root:x:0:\napp:x:1000:\nwheel:x:10:app,other\n")
    app = resolve_user("app", str(tmp_path))
    assert (app.uid, app.gid, app.groups, app.home) == (1000, 1000, (10,), "/home/app")
    assert resolve_user("1000:wheel", str(tmp_path)).gid == 10
    assert resolve_user("4242:4242", str(tmp_path)).uid == 4242
    assert resolve_user("", str(tmp_path)).uid == 0
    with pytest.raises(UserError, match="unable to find user ghost"):
        resolve_user("ghost", str(tmp_path))
    with pytest.raises(UserError, match="unable to find group nogroup"):
        resolve_user("app:nogroup", str(tmp_path))


def test_the_executable_is_found_as_execvpe_would(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "tool").write_text("not executable")
    (second / "tool").write_text("#!/bin/sh\n")
    (second / "tool").chmod(0o755)
    environment = {"PATH": f"{first}:{second}"}
    assert find_executable("tool", environment) == str(second / "tool")  # the unexecutable one is passed over
    assert find_executable(str(second / "tool"), {}) == str(second / "tool")
    with pytest.raises(PermissionError):
        find_executable(str(first / "tool"), environment)
    with pytest.raises(PermissionError):  # found, but nowhere executable: execvpe's EACCES
        find_executable("tool", {"PATH": str(first)})
    with pytest.raises(FileNotFoundError):
        find_executable("ghost", environment)


def test_follow_reads_what_was_written_between_its_read_and_the_rotation(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer adds lines to the followed file and rotates it between the follower's read and
    its rotation check (a fast writer, as an attached `run` of a chatty container meets)."""
    path = str(tmp_path / "container.log")
    log = LogFile(path, max_bytes=1 << 20, max_files=2)
    log.write(b"stdout", [(b"before", True)])
    seen, handle = read_tail(path, -1)
    real_rotated = logs._rotated

    def rotated_meanwhile(followed: str, followed_handle: Any) -> bool:
        if len(log_files(path)) == 1:
            log.write(b"stdout", [(b"late in the old file", True)])
            log._rotate()
            log.write(b"stdout", [(b"in the new file", True)])
        return real_rotated(followed, followed_handle)

    monkeypatch.setattr(logs, "_rotated", rotated_meanwhile)
    states = iter([True, True, False, False])

    async def changed(timeout: float) -> None:
        pass

    async def followed() -> list[bytes]:
        return [line.data async for batch in logs.follow(path, handle, lambda: next(states), changed)
                for line in batch]

    assert [line.data for line in seen] == [b"before\n"]
    assert asyncio.run(followed()) == [b"late in the old file\n", b"in the new file\n"]
    log.close()


def test_a_torn_line_is_skipped_not_fatal() -> None:
    assert parse_line(b"06T20:22:58.1Z stdout F torn\n") is None
