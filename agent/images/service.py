"""Image operations as the API offers them, over the store (blocking work moved off the event loop)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from agent import allocator
from agent.errors import AccessDenied, Failed, InvalidSpec, NotFound, ShoalError, Unavailable
from agent.images import pull, push, reference, save
from agent.images.model import ImageRecord
from agent.images.registry import Credentials, RegistryClient, RegistryError
from agent.images.store import ImageStore

log = logging.getLogger(__name__)
REGISTRY_ERRORS: dict[str, type[ShoalError]] = {"auth": AccessDenied, "not_found": NotFound,
                                                "network": Unavailable}
Progress = Callable[[str, int, int], None]
SAVE_CHUNK = 1 << 20


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
            allocator.release()

    async def push(self, text: str, credentials: Credentials | None = None, progress: Progress | None = None) -> str:
        """Pushes the local image named `text` to the registry that name points at; returns the
        manifest digest."""
        try:
            ref = reference.parse_remote(text)
        except reference.ReferenceError as e:
            raise InvalidSpec("image", str(e)) from None
        if ref.digest:
            raise InvalidSpec("image", f"{text}: push to a tag, not a digest")
        record = self.store.resolve(f"{ref.familiar_name}:{ref.tag}")
        siblings = tuple(sorted({other.repository for other in map(reference.parse_remote, record.repo_tags)
                                 if other.registry == ref.registry and other.repository != ref.repository}))
        client = self._client(ref, credentials)
        manifest = self.store.manifest(record)
        try:
            await asyncio.to_thread(push.push, client, ref, manifest, self.store.blob_path, siblings, progress)
        except RegistryError as e:
            raise REGISTRY_ERRORS.get(e.kind, Failed)(f"pushing {ref}: {e}") from None
        return record.manifest_digest

    async def save(self, refs: list[str], fmt: str) -> AsyncIterator[bytes]:
        """The archive, spooled to disk first (it is written by a tar writer that needs files)."""
        if fmt not in save.FORMATS:
            raise InvalidSpec("format", f"{fmt!r}: expected docker or oci")
        if not refs:
            raise InvalidSpec("images", "at least one image")
        for ref in refs:
            self.store.resolve(ref)
        fd, path = tempfile.mkstemp(dir=self.spool_dir, suffix=".tar")
        os.close(fd)
        try:
            await asyncio.to_thread(self.store.save, refs, fmt, path, self.spool_dir)
            with open(path, "rb") as f:
                while chunk := await asyncio.to_thread(f.read, SAVE_CHUNK):
                    yield chunk
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    async def prune(self, everything: bool, target_bytes: int = 0) -> tuple[list[ImageRecord], int]:
        return await asyncio.to_thread(self.store.prune, everything, target_bytes)

    async def pin(self, ref: str, pinned: bool) -> ImageRecord:
        return await asyncio.to_thread(self.store.pin, ref, pinned)

    async def collect_past_high_water(self, high_percent: int, low_percent: int) -> None:
        """Kubelet's image GC: once the store's filesystem is over `high_percent` full, unused images
        go, least recently used first, until it is down to `low_percent` (or nothing more can go)."""
        used, total = self.store.usage()
        if not total or used * 100 <= total * high_percent:
            return
        target = used - total * low_percent // 100
        deleted, reclaimed = await self.prune(everything=True, target_bytes=target)
        log.warning("image store filesystem %d%% full (over %d%%): removed %d unused images, %d bytes",
                    used * 100 // total, high_percent, len(deleted), reclaimed)

    async def tag(self, ref: str, name: str) -> ImageRecord:
        return await asyncio.to_thread(self.store.tag, ref, name)

    def _stored_blob(self, digest: str) -> bytes | None:
        if not reference.DIGEST.match(digest):  # it comes from a registry's manifest: never a path
            return None
        try:
            with open(self.store.blob_path(digest), "rb") as f:
                return f.read()
        except (FileNotFoundError, ValueError):
            return None

    def _client(self, ref: reference.RemoteReference, credentials: Credentials | None) -> RegistryClient:
        return RegistryClient(ref.api_host, insecure=ref.registry in self.registries.insecure,
                              certs_dir=self.registries.certs_dir,
                              credentials=credentials or self.registries.credentials(ref.registry))

    def _pull(self, ref: reference.RemoteReference, credentials: Credentials | None,
              progress: Progress | None) -> ImageRecord:
        client = self._client(ref, credentials)
        try:
            return self.store.import_image(pull.fetch(client, ref, progress, self._stored_blob), str(ref))
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
            allocator.release()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def images_list(self) -> list[ImageRecord]:
        return self.store.images_list()

    def inspect(self, ref: str) -> ImageRecord:
        return self.store.resolve(ref)

    async def remove(self, ref: str) -> tuple[list[str], list[str]]:
        return await asyncio.to_thread(self.store.remove, ref)
