"""Image operations as the API offers them, over the store (blocking work moved off the event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator

from agent.errors import InvalidSpec
from agent.images.model import ImageRecord
from agent.images.store import ImageStore


class ImageService:
    def __init__(self, store: ImageStore, spool_dir: str) -> None:
        self.store = store
        self.spool_dir = spool_dir
        os.makedirs(spool_dir, exist_ok=True)

    async def import_stream(self, chunks: AsyncIterator[bytes], filename: str, tag: str) -> list[ImageRecord]:
        """Spools the streamed archive to disk (tar readers need to seek), then imports it."""
        fd, path = tempfile.mkstemp(dir=self.spool_dir, suffix=".tar")
        try:
            with os.fdopen(fd, "wb") as spool:
                async for chunk in chunks:
                    await asyncio.to_thread(spool.write, chunk)
            if os.path.getsize(path) == 0:
                raise InvalidSpec("archive", f"{filename or 'the upload'} is empty")
            return await asyncio.to_thread(self.store.import_archive, path, filename or "archive", tag)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def images_list(self) -> list[ImageRecord]:
        return self.store.images_list()

    def inspect(self, ref: str) -> ImageRecord:
        return self.store.resolve(ref)

    async def remove(self, ref: str) -> tuple[list[str], list[str]]:
        return await asyncio.to_thread(self.store.remove, ref)
