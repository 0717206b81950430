"""`clusterctl image import` for a whole cluster: one archive in, streamed to every target node's agent.

The archive is never stored by the control plane: each chunk is handed to every node's upload as
it arrives, so memory stays at a few chunks per node and the slowest node sets the pace. A node
whose import fails stops receiving chunks; the others carry on, and each node's outcome is
reported on its own (one bad node must not hide that the others have the image).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from shoal.agent.v1 import agent_pb2 as apb
from shoal.controlplane.v1 import image_service_pb2 as pb
from shoal.state.v1 import records_pb2 as rpb

from controlplane import agents
from controlplane.agents import AgentDirectory
from controlplane.errors import AgentCallFailed, ControlPlaneError, InvalidSpec, NotReady

QUEUED_CHUNKS = 4


@dataclass
class _Upload:
    node: rpb.NodeRecord
    queue: asyncio.Queue[apb.ImportImageRequest | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUED_CHUNKS))
    task: asyncio.Task[pb.NodeImport] | None = None

    async def requests(self) -> AsyncIterator[apb.ImportImageRequest]:
        while (item := await self.queue.get()) is not None:
            yield item

    async def offer(self, item: apb.ImportImageRequest | None) -> None:
        """Queues the next piece unless this node's import already ended (then it would never be read)."""
        assert self.task is not None
        if self.task.done():
            return
        put = asyncio.ensure_future(self.queue.put(item))
        await asyncio.wait({put, self.task}, return_when=asyncio.FIRST_COMPLETED)
        put.cancel()


class ImageDistributor:
    def __init__(self, directory: AgentDirectory) -> None:
        self.directory = directory

    async def targets(self, wanted: list[str]) -> list[rpb.NodeRecord]:
        nodes = await self.directory.nodes()
        if wanted:
            chosen = []
            for ref in wanted:
                match = next(((n, ready) for n, ready in nodes if ref in (n.id, n.name)), None)
                if match is None:
                    raise InvalidSpec("nodes", f"no such node: {ref}")
                if not match[1]:
                    raise NotReady(f"node {match[0].name} is down")
                chosen.append(match[0])
            return chosen
        ready = [node for node, is_ready in nodes if is_ready]
        if not ready:
            raise NotReady("no node is ready to receive the image")
        return ready

    async def import_archive(self, requests: AsyncIterator[pb.ClusterImportRequest]) -> list[pb.NodeImport]:
        first = await anext(requests, None)
        if first is None or first.WhichOneof("request") != "header":
            raise InvalidSpec("header", "the first message of an import must be the header")
        header = apb.ImportImageRequest(header=apb.ImportImageHeader(tag=first.header.tag,
                                                                     filename=first.header.filename))
        uploads = [_Upload(node) for node in await self.targets(list(first.header.nodes))]
        for upload in uploads:
            upload.task = asyncio.create_task(self._send(upload))
        try:
            for upload in uploads:
                await upload.offer(header)
            async for request in requests:
                chunk = apb.ImportImageRequest(chunk=request.chunk)
                await asyncio.gather(*(upload.offer(chunk) for upload in uploads))
            await asyncio.gather(*(upload.offer(None) for upload in uploads))
            return list(await asyncio.gather(*(u.task for u in uploads if u.task is not None)))
        finally:
            for upload in uploads:
                if upload.task is not None:
                    upload.task.cancel()

    async def _send(self, upload: _Upload) -> pb.NodeImport:
        try:
            stub = self.directory.stub(upload.node)
            reply = await agents.call(upload.node, stub.ImportImage(upload.requests()))
        except AgentCallFailed as e:
            return pb.NodeImport(node=upload.node.name, error=e.details)
        except ControlPlaneError as e:
            return pb.NodeImport(node=upload.node.name, error=str(e))
        return pb.NodeImport(node=upload.node.name, images=reply.images)
