"""Bridges an Exec gRPC stream to the process's stdio descriptors passed by the supervisor.

Output is read until EOF on every descriptor (a terminal answers EIO once its last user closes
it, which counts as EOF); only then is the exit code sent, so no output is lost behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios
from collections.abc import AsyncIterator

from shoal.agent.v1 import agent_pb2 as apb

READ_SIZE = 32 * 1024


async def _pump_output(fd: int, field: str, queue: asyncio.Queue[apb.ExecResponse | None]) -> None:
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    os.set_blocking(fd, False)
    loop.add_reader(fd, readable.set)
    try:
        while True:
            await readable.wait()
            readable.clear()
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                continue
            except OSError:  # EIO from a terminal whose last user closed it
                data = b""
            if not data:
                return
            await queue.put(apb.ExecResponse(stdout=data) if field == "stdout" else apb.ExecResponse(stderr=data))
    finally:
        loop.remove_reader(fd)


async def _pump_input(requests: AsyncIterator[apb.ExecRequest], stdin: int | None, tty: int | None) -> None:
    async for request in requests:
        kind = request.WhichOneof("request")
        if kind == "stdin" and stdin is not None:
            await asyncio.to_thread(os.write, stdin, request.stdin)
        elif kind == "close_stdin" and stdin is not None and tty is None:
            os.close(stdin)
            stdin = None
        elif kind == "resize" and tty is not None:
            fcntl.ioctl(tty, termios.TIOCSWINSZ, struct.pack("HHHH", request.resize.rows, request.resize.cols, 0, 0))


async def bridge(fds: list[int], tty: bool, requests: AsyncIterator[apb.ExecRequest],
                 exit_code: asyncio.Future[int]) -> AsyncIterator[apb.ExecResponse]:
    queue: asyncio.Queue[apb.ExecResponse | None] = asyncio.Queue(maxsize=64)
    if tty:
        outputs = [(fds[0], "stdout")]
        input_task = asyncio.create_task(_pump_input(requests, fds[0], fds[0]))
    else:
        outputs = [(fds[1], "stdout"), (fds[2], "stderr")]
        input_task = asyncio.create_task(_pump_input(requests, fds[0], None))
    readers = [asyncio.create_task(_pump_output(fd, field, queue)) for fd, field in outputs]

    async def finish() -> None:
        await asyncio.gather(*readers)
        await queue.put(None)

    finisher = asyncio.create_task(finish())
    try:
        while (item := await queue.get()) is not None:
            yield item
        yield apb.ExecResponse(exit_code=await exit_code)
    finally:
        for task in (input_task, finisher, *readers):
            task.cancel()
        for fd in set(fds):
            with contextlib.suppress(OSError):
                os.close(fd)
