"""The Agent gRPC service: proto → domain, await the service, domain → proto. Nothing else."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from shoal.agent.v1 import agent_pb2 as apb
from shoal.agent.v1 import agent_pb2_grpc

from agent.api import convert, exec_stream
from agent.build.builder import Builder
from agent.containers import run
from agent.containers.service import ContainerService
from agent.errors import InvalidSpec
from agent.images.registry import Credentials
from agent.images.service import ImageService

Context = Any  # grpc.aio.ServicerContext


class AgentServicer(agent_pb2_grpc.AgentServicer):
    def __init__(self, containers: ContainerService, images: ImageService, builder: Builder) -> None:
        self.containers = containers
        self.images = images
        self.builder = builder

    async def CreateContainer(self, request: apb.CreateContainerRequest, context: Context) -> Any:
        container = await self.containers.create(convert.spec_from_pb(request.spec))
        return apb.CreateContainerResponse(container=convert.container_to_pb(container))

    async def StartContainer(self, request: apb.StartContainerRequest, context: Context) -> Any:
        container = await self.containers.start(request.container)
        return apb.StartContainerResponse(container=convert.container_to_pb(container))

    async def StopContainer(self, request: apb.StopContainerRequest, context: Context) -> Any:
        container = await self.containers.stop(request.container, request.timeout_seconds)
        return apb.StopContainerResponse(container=convert.container_to_pb(container))

    async def KillContainer(self, request: apb.KillContainerRequest, context: Context) -> Any:
        await self.containers.kill(request.container, request.signal)
        return apb.KillContainerResponse()

    async def RemoveContainer(self, request: apb.RemoveContainerRequest, context: Context) -> Any:
        await self.containers.remove(request.container, request.force)
        return apb.RemoveContainerResponse()

    async def ListContainers(self, request: apb.ListContainersRequest, context: Context) -> Any:
        found = self.containers.containers_list(include_stopped=request.all)
        return apb.ListContainersResponse(containers=[convert.container_to_pb(c) for c in found])

    async def InspectContainer(self, request: apb.InspectContainerRequest, context: Context) -> Any:
        container = self.containers.resolve(request.container)
        return apb.InspectContainerResponse(container=convert.container_to_pb(container))

    async def WaitContainer(self, request: apb.WaitContainerRequest, context: Context) -> Any:
        container = await self.containers.wait(request.container)
        return apb.WaitContainerResponse(container=convert.container_to_pb(container))

    async def RunContainer(self, request: apb.RunContainerRequest, context: Context) -> AsyncIterator[Any]:
        if request.attach and request.detach:
            raise InvalidSpec("detach", "a run either follows its container (attach) or leaves it (detach), not both")
        async for step in run.run(self.containers, convert.spec_from_pb(request.spec),
                                  attach=request.attach, detach=request.detach):
            if isinstance(step, run.RunStep):
                container = convert.container_to_pb(step.container)
                yield (apb.RunContainerResponse(started=container) if step.kind == "started"
                       else apb.RunContainerResponse(exited=container))
            else:
                yield apb.RunContainerResponse(output=apb.ContainerLogsResponse(
                    entries=[convert.log_line_to_pb(line) for line in step]))

    async def ContainerLogs(self, request: apb.ContainerLogsRequest, context: Context) -> AsyncIterator[Any]:
        async for batch in self.containers.logs(request.container, request.follow, request.tail):
            yield apb.ContainerLogsResponse(entries=[convert.log_line_to_pb(line) for line in batch])

    async def Exec(self, request_iterator: AsyncIterator[apb.ExecRequest], context: Context) -> AsyncIterator[Any]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("request") != "start":
            raise InvalidSpec("start", "the first Exec message must carry ExecStart")
        start = first.start
        exec_id, fds = await self.containers.exec(
            start.container, list(start.command), tty=start.tty, env=list(start.env), user=start.user,
            working_dir=start.working_dir, rows=start.rows, cols=start.cols)
        exit_code = asyncio.ensure_future(self.containers.exec_exit_code(exec_id))
        async for response in exec_stream.bridge(fds, start.tty, request_iterator, exit_code):
            yield response

    async def ContainerStats(self, request: apb.ContainerStatsRequest, context: Context) -> Any:
        stats = self.containers.stats(list(request.containers))
        return apb.ContainerStatsResponse(stats=[convert.stats_to_pb(c, s) for c, s in stats])

    async def ImportImage(self, request_iterator: AsyncIterator[apb.ImportImageRequest], context: Context) -> Any:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("request") != "header":
            raise InvalidSpec("header", "the first ImportImage message must carry the header")

        async def chunks() -> AsyncIterator[bytes]:
            async for request in request_iterator:
                yield request.chunk

        records = await self.images.import_stream(chunks(), first.header.filename, first.header.tag)
        return apb.ImportImageResponse(images=[convert.image_to_pb(r) for r in records])

    async def PullImage(self, request: apb.PullImageRequest, context: Context) -> Any:
        async for update in _with_progress(lambda progress: self.images.pull(
                request.reference, _credentials(request), progress)):
            if isinstance(update, tuple):
                yield apb.PullImageProgress(layer=update[0], current=update[1], total=update[2])
            else:
                yield apb.PullImageProgress(image=convert.image_to_pb(update))

    async def PushImage(self, request: apb.PushImageRequest, context: Context) -> Any:
        async for update in _with_progress(lambda progress: self.images.push(
                request.reference, _credentials(request), progress)):
            if isinstance(update, tuple):
                yield apb.PushImageProgress(layer=update[0], current=update[1], total=update[2])
            else:
                yield apb.PushImageProgress(manifest_digest=update)

    async def SaveImage(self, request: apb.SaveImageRequest, context: Context) -> Any:
        async for chunk in self.images.save(list(request.images), request.format or "docker"):
            yield apb.SaveImageChunk(data=chunk)

    async def PruneImages(self, request: apb.PruneImagesRequest, context: Context) -> Any:
        deleted, reclaimed = await self.images.prune(request.all)
        return apb.PruneImagesResponse(deleted=[convert.image_to_pb(r) for r in deleted], reclaimed_bytes=reclaimed)

    async def PinImage(self, request: apb.PinImageRequest, context: Context) -> Any:
        return apb.PinImageResponse(image=convert.image_to_pb(await self.images.pin(request.image, request.pinned)))

    async def Build(self, request_iterator: AsyncIterator[apb.BuildRequest], context: Context) -> Any:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("request") != "header":
            raise InvalidSpec("header", "the first Build message must carry the header")
        header = first.header

        async def chunks() -> AsyncIterator[bytes]:
            async for request in request_iterator:
                yield request.chunk

        lines: asyncio.Queue[str] = asyncio.Queue()

        async def emit(line: str) -> None:
            await lines.put(line)

        building = asyncio.ensure_future(self.builder.build_context(
            chunks(), header.dockerfile, list(header.tags), dict(header.build_args), header.target, header.no_cache,
            emit))
        try:
            while not building.done() or not lines.empty():
                getter = asyncio.ensure_future(lines.get())
                await asyncio.wait({building, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield apb.BuildEvent(line=getter.result())
                else:
                    getter.cancel()
            yield apb.BuildEvent(image=convert.image_to_pb(building.result()))
        finally:
            if not building.done():
                building.cancel()

    async def TagImage(self, request: apb.TagImageRequest, context: Context) -> Any:
        return apb.TagImageResponse(image=convert.image_to_pb(await self.images.tag(request.image, request.name)))

    async def ListImages(self, request: apb.ListImagesRequest, context: Context) -> Any:
        cache = set() if request.all else self.builder.cache.image_ids()
        return apb.ListImagesResponse(images=[convert.image_to_pb(r) for r in self.images.images_list()
                                              if r.repo_tags or r.id not in cache])

    async def InspectImage(self, request: apb.InspectImageRequest, context: Context) -> Any:
        return apb.InspectImageResponse(image=convert.image_to_pb(self.images.inspect(request.image)))

    async def RemoveImage(self, request: apb.RemoveImageRequest, context: Context) -> Any:
        untagged, deleted = await self.images.remove(request.image)
        return apb.RemoveImageResponse(untagged=untagged, deleted=deleted)


def _credentials(request: apb.PullImageRequest | apb.PushImageRequest) -> Credentials | None:
    auth = request.auth if request.HasField("auth") else None
    return Credentials(auth.username, auth.password) if auth and auth.username else None


T = TypeVar("T")
PROGRESS_INTERVAL = 0.1  # seconds between a transfer's progress updates: ten a second is plenty for a bar


async def _with_progress(start: Callable[[Callable[[str, int, int], None]], Awaitable[T]],
                         ) -> AsyncIterator[tuple[str, int, int] | T]:
    """Runs a transfer, yielding (blob, done, total) as it goes, then its result. Progress from the
    transfer's threads is handed to the event loop at most once per PROGRESS_INTERVAL, with only
    the latest figure of each blob: a slow client never holds the transfer back, and a fast
    transfer does not spend its time waking the event loop (a 50 MiB pull on loopback sent 45
    updates in 0.15 s)."""
    loop = asyncio.get_running_loop()
    latest: dict[str, tuple[int, int]] = {}
    guard = threading.Lock()
    changed = asyncio.Event()

    def progress(blob: str, current: int, total: int) -> None:
        with guard:
            wake = not latest
            latest[blob] = (current, total)
        if wake:
            loop.call_soon_threadsafe(changed.set)

    def taken() -> list[tuple[str, tuple[int, int]]]:
        with guard:
            items = list(latest.items())
            latest.clear()
        return items

    transfer = asyncio.ensure_future(start(progress))
    try:
        while not transfer.done():
            waiter = asyncio.ensure_future(changed.wait())
            await asyncio.wait({transfer, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            changed.clear()
            for blob, (current, total) in taken():
                yield blob, current, total
            await asyncio.wait({transfer}, timeout=PROGRESS_INTERVAL)
        for blob, (current, total) in taken():  # what came in just before the end
            yield blob, current, total
        yield transfer.result()
    finally:
        if not transfer.done():
            transfer.cancel()
