"""Reading image archives: an OCI image layout in a tar, or a `docker save` archive.

Neither is ever unpacked to disk: entries are read by name from the (possibly compressed) outer
tar. Manifests and configs are verified against their digests here; layer blobs are verified by
the store while it copies them. References: OCI image spec (image-layout.md, image-index.md,
manifest.md, config.md) and Docker's image spec v1.2 (`docker save` layout).
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import posixpath
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from agent.images import reference

INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"}
MANIFEST_TYPES = {"application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json"}
LAYER_TYPES = {"application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
               "application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.docker.image.rootfs.diff.tar.gzip",
               "application/vnd.docker.image.rootfs.diff.tar"}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


class ArchiveError(Exception):
    """The archive is malformed or unsupported; the message names the file and what is wrong."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class LayerBlob:
    digest: str  # of the blob as stored (compressed or not)
    diff_id: str  # of the uncompressed tar, from the image config
    media_type: str
    open: Callable[[], IO[bytes]]


@dataclass(frozen=True, slots=True)
class ArchiveImage:
    names: tuple[str, ...]
    manifest: bytes
    config: bytes
    layers: tuple[LayerBlob, ...]

    @property
    def manifest_digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def config_json(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.config)
        return loaded


def host_platform() -> tuple[str, str]:
    return "linux", ARCHITECTURES.get(platform.machine(), platform.machine())


def platform_manifest(index: dict[str, Any]) -> dict[str, Any] | None:
    """The descriptor in an image index (manifest list) for this host's platform, if any."""
    wanted_os, wanted_arch = host_platform()
    for candidate in index.get("manifests") or []:
        plat = candidate.get("platform") or {}
        if plat.get("os") == wanted_os and plat.get("architecture") == wanted_arch:
            return candidate  # type: ignore[no-any-return]
    return None


class _Tar:
    def __init__(self, path: str, label: str) -> None:
        self.label = label
        try:
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 — closed by close()
            self.members = {self._clean(m.name): m for m in self.tar.getmembers()}
        except (tarfile.TarError, EOFError, OSError) as e:
            # tarfile lists every compression it tried, one per line: the last line is the plain-tar reason.
            reason = str(e).strip().splitlines()[-1].lstrip("- ") if str(e).strip() else type(e).__name__
            raise ArchiveError(f"{label}: not a readable tar archive ({reason})") from None

    @staticmethod
    def _clean(name: str) -> str:
        return posixpath.normpath(name.lstrip("/")).removeprefix("./")

    def has(self, name: str) -> bool:
        return self._clean(name) in self.members

    def _member(self, name: str, depth: int = 0) -> tarfile.TarInfo:
        member = self.members.get(self._clean(name))
        if member is None:
            raise ArchiveError(f"{self.label}: {name} is missing from the archive")
        if member.issym() and depth < 8:  # newer `docker save` links duplicate layers
            return self._member(posixpath.join(posixpath.dirname(self._clean(name)), member.linkname), depth + 1)
        if not member.isreg():
            raise ArchiveError(f"{self.label}: {name} is not a regular file")
        return member

    def open(self, name: str) -> IO[bytes]:
        handle = self.tar.extractfile(self._member(name))
        assert handle is not None
        return handle

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def read_json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as e:
            raise ArchiveError(f"{self.label}: {name} is not valid JSON: {e}") from None

    def close(self) -> None:
        self.tar.close()


def read_archive(path: str, label: str) -> tuple[list[ArchiveImage], Callable[[], None]]:
    """Returns the images in the archive and a function that closes it (call after copying layers)."""
    tar = _Tar(path, label)
    try:
        if tar.has("index.json") and tar.has("oci-layout"):
            images = _read_oci_layout(tar)
        elif tar.has("manifest.json"):
            images = _read_docker_save(tar)
        else:
            raise ArchiveError(f"{label}: neither an OCI image layout (index.json, oci-layout) "
                               "nor a docker save archive (manifest.json)")
    except BaseException:
        tar.close()
        raise
    return images, tar.close


def _blob_path(digest: str, where: str, tar: _Tar) -> str:
    algorithm, _, encoded = digest.partition(":")
    if algorithm != "sha256" or not reference.DIGEST.match(digest):
        raise ArchiveError(f"{tar.label}: {where}: unsupported or malformed digest {digest!r} "
                           "(expected sha256:<64 hex>)")
    return f"blobs/sha256/{encoded}"


def _verified_blob(tar: _Tar, descriptor: dict[str, Any], where: str) -> bytes:
    digest = descriptor.get("digest", "")
    data = tar.read(_blob_path(digest, where, tar))
    if sha256_digest(data) != digest:
        raise ArchiveError(f"{tar.label}: {where}: content does not match its digest {digest}")
    return data


def _read_oci_layout(tar: _Tar) -> list[ArchiveImage]:
    index = tar.read_json("index.json")
    images = []
    for position, descriptor in enumerate(index.get("manifests") or []):
        where = f"index.json manifests[{position}]"
        names = _names(descriptor.get("annotations") or {})
        descriptor = _resolve_index(tar, descriptor, where)
        manifest = _verified_blob(tar, descriptor, where)
        images.append(_from_manifest(tar, manifest, where, names))
    if not images:
        raise ArchiveError(f"{tar.label}: index.json lists no manifests")
    return images


def _names(annotations: dict[str, str]) -> tuple[str, ...]:
    for key in NAME_ANNOTATIONS:
        value = annotations.get(key, "")
        if ":" in value or "/" in value:  # a bare tag (`v1`) names no repository
            try:
                return (reference.normalize(value),)
            except reference.ReferenceError:
                continue
    return ()


def _resolve_index(tar: _Tar, descriptor: dict[str, Any], where: str, depth: int = 0) -> dict[str, Any]:
    """Follows image indexes (manifest lists) down to the manifest for this host's platform."""
    media_type = descriptor.get("mediaType", "")
    if media_type in MANIFEST_TYPES:
        return descriptor
    if media_type not in INDEX_TYPES or depth > 4:
        raise ArchiveError(f"{tar.label}: {where}: unsupported media type {media_type!r}")
    index = json.loads(_verified_blob(tar, descriptor, where))
    candidate = platform_manifest(index)
    if candidate is None:
        raise ArchiveError(f"{tar.label}: {where}: no manifest for platform {'/'.join(host_platform())}")
    return _resolve_index(tar, candidate, f"{where} ({'/'.join(host_platform())})", depth + 1)


def _from_manifest(tar: _Tar, manifest_bytes: bytes, where: str, names: tuple[str, ...]) -> ArchiveImage:
    manifest = json.loads(manifest_bytes)
    config = _verified_blob(tar, manifest.get("config") or {}, f"{where} config")
    diff_ids = _diff_ids(json.loads(config), tar.label)
    layer_descriptors = manifest.get("layers") or []
    if len(layer_descriptors) != len(diff_ids):
        raise ArchiveError(f"{tar.label}: {where}: {len(layer_descriptors)} layers but the config lists "
                           f"{len(diff_ids)} diff_ids")
    layers = []
    for position, (descriptor, diff_id) in enumerate(zip(layer_descriptors, diff_ids, strict=True)):
        media_type = descriptor.get("mediaType", "")
        if media_type not in LAYER_TYPES:
            raise ArchiveError(f"{tar.label}: {where} layers[{position}]: unsupported media type {media_type!r}")
        path = _blob_path(descriptor.get("digest", ""), f"{where} layers[{position}]", tar)
        layers.append(LayerBlob(descriptor["digest"], diff_id, media_type, functools.partial(tar.open, path)))
    return ArchiveImage(names, manifest_bytes, config, tuple(layers))


def _diff_ids(config: dict[str, Any], label: str) -> list[str]:
    diff_ids = (config.get("rootfs") or {}).get("diff_ids")
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) and reference.DIGEST.match(d) for d in diff_ids):
        raise ArchiveError(f"{label}: image config: rootfs.diff_ids must be a list of sha256 digests")
    return diff_ids


def _read_docker_save(tar: _Tar) -> list[ArchiveImage]:
    entries = tar.read_json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ArchiveError(f"{tar.label}: manifest.json must be a non-empty list")
    images = []
    for position, entry in enumerate(entries):
        where = f"manifest.json[{position}]"
        config = tar.read(entry.get("Config", ""))
        diff_ids = _diff_ids(json.loads(config), tar.label)
        layer_paths = entry.get("Layers") or []
        if len(layer_paths) != len(diff_ids):
            raise ArchiveError(f"{tar.label}: {where}: {len(layer_paths)} layers but the config lists "
                               f"{len(diff_ids)} diff_ids")
        layers = []
        descriptors = []
        for path, diff_id in zip(layer_paths, diff_ids, strict=True):
            # docker save layers are uncompressed tars, so their blob digest is the diff_id; a
            # compressed one is caught when the store verifies the digest.
            media_type = "application/vnd.oci.image.layer.v1.tar"
            size = tar._member(path).size
            layers.append(LayerBlob(diff_id, diff_id, media_type, functools.partial(tar.open, path)))
            descriptors.append({"mediaType": media_type, "digest": diff_id, "size": size})
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
            "layers": descriptors,
        }, separators=(",", ":")).encode()
        names = []
        for tag in entry.get("RepoTags") or []:
            try:
                names.append(reference.normalize(tag))
            except reference.ReferenceError as e:
                raise ArchiveError(f"{tar.label}: {where} RepoTags: {e}") from None
        images.append(ArchiveImage(tuple(names), manifest, config, tuple(layers)))
    return images
