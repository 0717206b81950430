"""Writing images out of the store as archives other tools load: `docker save`'s format (Docker
image spec v1.2: manifest.json, <id>.json configs, <diff_id>/layer.tar) or an OCI image layout
(oci-layout, index.json, blobs/sha256/...). `clusterctl image import` reads both back.

The OCI layout carries the blobs exactly as stored, so every digest is unchanged. The docker
format stores layers uncompressed, as `docker save` does, so a compressed blob is expanded to a
temporary file first (a tar member's size must be known before its data).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable

from agent.images.archive import OCI_MANIFEST
from agent.images.compression import CHUNK, GZIP_MAGIC, decompressed
from agent.images.model import ImageRecord

FORMATS = ("docker", "oci")


def save(path: str, records: list[ImageRecord], fmt: str, blob_path: Callable[[str], str],
         manifest: Callable[[ImageRecord], bytes], scratch: str) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        if fmt == "oci":
            _oci_layout(tar, records, blob_path, manifest)
        else:
            _docker_archive(tar, records, blob_path, manifest, scratch)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, source: str) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = os.path.getsize(source), 0o644
    with open(source, "rb") as f:
        tar.addfile(info, f)


def _oci_layout(tar: tarfile.TarFile, records: list[ImageRecord], blob_path: Callable[[str], str],
                manifest: Callable[[ImageRecord], bytes]) -> None:
    descriptors = []
    written: set[str] = set()
    for record in records:
        data = manifest(record)
        media_type = json.loads(data).get("mediaType") or OCI_MANIFEST
        for digest in (record.manifest_digest, record.id, *record.layer_digests):
            if digest not in written:
                written.add(digest)
                _add_file(tar, f"blobs/sha256/{digest.removeprefix('sha256:')}", blob_path(digest))
        for name in record.repo_tags or ("",):
            annotations = ({"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rpartition(":")[2]} if name else {})
            descriptors.append({"mediaType": media_type, "digest": record.manifest_digest, "size": len(data),
                                **({"annotations": annotations} if annotations else {})})
    _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descriptors}
    _add_bytes(tar, "index.json", json.dumps(index).encode())


def _docker_archive(tar: tarfile.TarFile, records: list[ImageRecord], blob_path: Callable[[str], str],
                    manifest: Callable[[ImageRecord], bytes], scratch: str) -> None:
    entries = []
    written: set[str] = set()
    for record in records:
        config_name = record.id.removeprefix("sha256:") + ".json"
        if config_name not in written:
            written.add(config_name)
            _add_file(tar, config_name, blob_path(record.id))
        layers = []
        for digest, diff_id in zip(record.layer_digests, record.diff_ids, strict=True):
            name = f"{diff_id.removeprefix('sha256:')}/layer.tar"
            layers.append(name)
            if name not in written:
                written.add(name)
                _add_layer(tar, name, blob_path(digest), scratch)
        entries.append({"Config": config_name, "RepoTags": list(record.repo_tags), "Layers": layers})
    _add_bytes(tar, "manifest.json", json.dumps(entries).encode())


def _add_layer(tar: tarfile.TarFile, name: str, blob: str, scratch: str) -> None:
    with open(blob, "rb") as f:
        compressed = f.read(2) == GZIP_MAGIC
    if not compressed:
        _add_file(tar, name, blob)
        return
    fd, expanded = tempfile.mkstemp(dir=scratch, suffix=".tar")
    try:
        with os.fdopen(fd, "wb") as out, open(blob, "rb") as raw:
            shutil.copyfileobj(decompressed(raw), out, CHUNK)
        _add_file(tar, name, expanded)
    finally:
        os.unlink(expanded)
