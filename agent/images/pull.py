"""Pulling an image from a registry into the shape the store imports (the same as an archive's).

Manifests are followed from an index (manifest list) to this host's platform, and checked against
the digest they were asked by; the config is fetched and verified here; layer blobs are opened
lazily, so the store never downloads a layer it already has, and verifies each one (digest and
diff_id) while copying it in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Any

from agent.images.archive import (
    INDEX_TYPES,
    LAYER_TYPES,
    MANIFEST_TYPES,
    ArchiveImage,
    LayerBlob,
    host_platform,
    platform_manifest,
    sha256_digest,
)
from agent.images.reference import RemoteReference
from agent.images.registry import RegistryClient, RegistryError

MAX_CONFIG = 8 << 20
Progress = Callable[[str, int, int], None]  # (layer digest, bytes so far, total)


def fetch(client: RegistryClient, ref: RemoteReference, progress: Progress | None = None,
          stored: Callable[[str], bytes | None] = lambda _digest: None) -> ArchiveImage:
    """`stored(digest)` gives a blob the store already has (the config of an image pulled before is
    then not downloaded again; nor are its layers, which the store skips)."""
    repository = ref.repository
    body, media_type = client.manifest(repository, ref.manifest_ref)
    wanted = ref.digest
    for _ in range(3):  # an index may point at an index, though nothing publishes that
        if wanted and sha256_digest(body) != wanted:
            raise RegistryError("invalid", f"{ref}: manifest does not match its digest {wanted}")
        if media_type not in INDEX_TYPES:
            break
        descriptor = platform_manifest(_json(body, ref))
        if descriptor is None:
            raise RegistryError("not_found", f"{ref}: no image for platform {'/'.join(host_platform())}")
        wanted = str(descriptor.get("digest", ""))
        body, media_type = client.manifest(repository, wanted)
    if media_type not in MANIFEST_TYPES:
        raise RegistryError("invalid", f"{ref}: unsupported manifest media type {media_type!r} (expected an OCI or "
                                       "Docker schema 2 manifest)")
    manifest = _json(body, ref)
    config_digest = str((manifest.get("config") or {}).get("digest", ""))
    config = stored(config_digest)
    if config is None:
        with client.blob(repository, config_digest) as stream:
            config = stream.read(MAX_CONFIG + 1)
    if sha256_digest(config) != config_digest:
        raise RegistryError("invalid", f"{ref}: image config does not match its digest {config_digest}")
    diff_ids = (_json(config, ref).get("rootfs") or {}).get("diff_ids") or []
    descriptors = manifest.get("layers") or []
    if len(diff_ids) != len(descriptors):
        raise RegistryError("invalid", f"{ref}: {len(descriptors)} layers but {len(diff_ids)} diff_ids in its config")
    layers = []
    for descriptor, diff_id in zip(descriptors, diff_ids, strict=True):
        layer_type = str(descriptor.get("mediaType", ""))
        if layer_type not in LAYER_TYPES:
            raise RegistryError("invalid", f"{ref}: layer {descriptor.get('digest')}: unsupported media type "
                                           f"{layer_type!r}")
        digest, size = str(descriptor.get("digest", "")), int(descriptor.get("size", 0))
        layers.append(LayerBlob(digest=digest, diff_id=str(diff_id), media_type=layer_type,
                                open=_opener(client, repository, digest, size, progress)))
    names = (f"{ref.familiar_name}:{ref.tag}",) if ref.tag else ()
    return ArchiveImage(names=names, manifest=body, config=config, layers=tuple(layers))


def _json(data: bytes, ref: RemoteReference) -> dict[str, Any]:
    try:
        loaded = json.loads(data)
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict):
        raise RegistryError("invalid", f"{ref}: the registry sent something that is not a JSON document")
    return loaded


def _opener(client: RegistryClient, repository: str, digest: str, size: int,
            progress: Progress | None) -> Callable[[], IO[bytes]]:
    def open_blob() -> IO[bytes]:
        stream = client.blob(repository, digest)
        return _Counting(stream, digest, size, progress) if progress else stream  # type: ignore[return-value]

    return open_blob


class _Counting:
    """Reports download progress as the store reads the blob."""

    def __init__(self, stream: Any, digest: str, total: int, progress: Progress) -> None:
        self.stream, self.digest, self.total, self.progress = stream, digest, total, progress
        self.done = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.stream.read(size)
        self.done += len(data)
        self.progress(self.digest, self.done, self.total)
        return data

    def __enter__(self) -> _Counting:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.__exit__(*exc)


