"""Image operations as the API offers them, over the store (blocking work moved off the event loop)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from agent.errors import AccessDenied, Failed, InvalidSpec, NotFound, ShoalError, Unavailable
from agent.images import pull, reference
from agent.images.model import ImageRecord
from agent.images.registry import Credentials, RegistryClient, RegistryError
from agent.images.store import ImageStore

REGISTRY_ERRORS: dict[str, type[ShoalError]] = {"auth": AccessDenied, "not_found": NotFound,
                                                "network": Unavailable}
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """How this agent reaches registries (agent flags)."""

    insecure: tuple[str, ...] = ()  # host:port reached over plain HTTP (loopback ones always are)
    certs_dir: str = ""  # CERTS_DIR/<host:port>/ca.crt: an extra CA for that registry
    auth_file: str = ""  # a Docker-style config.json with `auths`, for pulls that bring no credentials

    def credentials(self, registry: str) -> Credentials | None:
        """From the auth file: `auths[registry]` (Docker Hub also under its historical URL)."""
        if not self.auth_file:
            return None
        try:
            with open(self.auth_file) as f:
                auths = json.load(f).get("auths") or {}
        except (OSError, ValueError, AttributeError) as e:
            raise InvalidSpec("--registry-auth-file", f"{self.auth_file}: cannot read it: {e}") from None
        keys = [registry] + (["https://index.docker.io/v1/", "index.docker.io"]
                             if registry == reference.DOCKER_HUB else [])
        entry = next((auths[k] for k in keys if k in auths), None)
        if not isinstance(entry, dict):
            return None
        if entry.get("username"):
            return Credentials(str(entry["username"]), str(entry.get("password", "")))
        user, _, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
        return Credentials(user, password) if user else None


class ImageService:
    def __init__(self, store: ImageStore, spool_dir: str, registries: RegistrySettings | None = None) -> None:
        self.store = store
        self.spool_dir = spool_dir
        self.registries = registries or RegistrySettings()
        self._pulls: dict[str, asyncio.Future[ImageRecord]] = {}
        os.makedirs(spool_dir, exist_ok=True)

    async def pull(self, text: str, credentials: Credentials | None = None,
                   progress: Progress | None = None) -> ImageRecord:
        """Concurrent pulls of one reference share one download (the later callers see no progress)."""
        try:
            ref = reference.parse_remote(text)
        except reference.ReferenceError as e:
            raise InvalidSpec("image", str(e)) from None
        key = str(ref)
        if key in self._pulls:
            return await asyncio.shield(self._pulls[key])
        future = asyncio.get_running_loop().create_future()
        self._pulls[key] = future
        try:
            record = await asyncio.to_thread(self._pull, ref, credentials, progress)
            future.set_result(record)
            return record
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._pulls[key]

    def _pull(self, ref: reference.RemoteReference, credentials: Credentials | None,
              progress: Progress | None) -> ImageRecord:
        client = RegistryClient(ref.api_host, insecure=ref.registry in self.registries.insecure,
                                certs_dir=self.registries.certs_dir,
                                credentials=credentials or self.registries.credentials(ref.registry))
        try:
            return self.store.import_image(pull.fetch(client, ref, progress), str(ref))
        except RegistryError as e:
            raise REGISTRY_ERRORS.get(e.kind, Failed)(f"pulling {ref}: {e}") from None

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
