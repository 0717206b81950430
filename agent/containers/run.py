"""`docker run` in one call: create, start, follow to the exit, and the auto-removal.

Docker's client makes five requests for an attached `run --rm` (create, attach, wait, start and
the removal by the daemon); each is a gRPC round trip here, about a millisecond between two
Python processes on a small host (README, "Performance"), a tenth of a container's whole life.
One stream carries the same steps. The steps themselves are the service's own create, start,
logs and remove, so `run` behaves exactly as the separate calls do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agent.containers.logs import LogLine
from agent.containers.model import Container, ContainerSpec, State
from agent.containers.service import ContainerService
from agent.errors import ShoalError


@dataclass(frozen=True, slots=True)
class RunStep:
    kind: str  # started | exited
    container: Container


async def run(service: ContainerService, spec: ContainerSpec, *, attach: bool,
              detach: bool) -> AsyncIterator[RunStep | list[LogLine]]:
    """Steps of one run, as they happen; output batches (lists of lines) only with `attach`.

    An auto-remove container followed to its exit is removed here, after its output has been read
    (the service's own auto-removal would race the reader for the log file); a client that leaves
    early hands the removal back to the service.

    Each message costs the stream a write and the client a wake-up, as much as a round trip: so
    there is no message for the create alone (a failed start leaves the container listed, as
    StartContainer does, unless it is an auto-remove one).
    """
    created = await service.create(spec)
    removes_here = spec.auto_remove and not detach
    if removes_here:
        service.removal_held.add(created.id)
    try:
        try:
            started = await service.start(created.id)
        except ShoalError:
            if spec.auto_remove:
                await service.remove(created.id, force=True)
            raise
        yield RunStep("started", started)
        if detach:
            return
        if attach:
            async for batch in service.logs(created.id, follow=True, tail=-1):
                yield batch
        exited = await service.wait(created.id)
        if removes_here:
            service.removal_held.discard(created.id)
            await service.remove(created.id, force=False)
        yield RunStep("exited", exited)
    finally:
        if created.id in service.removal_held:  # the client left before the exit, or the start failed
            service.removal_held.discard(created.id)
            current = service.containers.get(created.id)
            if current is not None and current.state is State.EXITED:
                asyncio.get_running_loop().create_task(service.auto_remove(created.id))
