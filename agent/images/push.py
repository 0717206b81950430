"""Pushing an image from the store to a registry (OCI distribution spec, "Pushing blobs" and
"Pushing manifests").

Blobs the registry already has (HEAD answers 200) are skipped; a blob the registry holds in
another repository of the image's names is mounted from there rather than uploaded. Blobs up to
CHUNK are uploaded in one PUT (monolithic); larger ones in PATCHes of CHUNK bytes, then a closing
PUT with the digest, so memory stays at one chunk whatever the layer's size. The manifest goes
last, byte for byte as stored, so its digest does not change.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Callable

from agent.images.archive import OCI_MANIFEST
from agent.images.reference import RemoteReference
from agent.images.registry import RegistryClient, RegistryError

CHUNK = 8 << 20
Progress = Callable[[str, int, int], None]  # (blob digest, bytes sent, total)


def push(client: RegistryClient, ref: RemoteReference, manifest: bytes, blob_path: Callable[[str], str],
         mount_from: tuple[str, ...] = (), progress: Progress | None = None, chunk: int = CHUNK) -> None:
    """`blob_path(digest)` finds a blob in the store; `mount_from` lists other repositories of the same
    registry that may already hold the blobs."""
    document = json.loads(manifest)
    blobs = [document["config"], *document.get("layers", [])]
    scope = f"repository:{ref.repository}:pull,push"
    for descriptor in blobs:
        digest, size = str(descriptor["digest"]), int(descriptor.get("size", 0))
        if _exists(client, ref.repository, digest, scope) or _mount(client, ref.repository, digest, mount_from, scope):
            if progress:
                progress(digest, size, size)
            continue
        _upload(client, ref.repository, digest, blob_path(digest), scope, progress, chunk)
    media_type = str(document.get("mediaType") or OCI_MANIFEST)
    client.request("PUT", f"/v2/{ref.repository}/manifests/{ref.manifest_ref}", scope,
                   {"Content-Type": media_type}, manifest, expect=(201, 200)).read()


def _exists(client: RegistryClient, repository: str, digest: str, scope: str) -> bool:
    response = client.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope, expect=(200, 404))
    response.read()
    return response.status == 200


def _mount(client: RegistryClient, repository: str, digest: str, sources: tuple[str, ...], scope: str) -> bool:
    for source in sources:
        query = urllib.parse.urlencode({"mount": digest, "from": source})
        response = client.request("POST", f"/v2/{repository}/blobs/uploads/?{query}", scope,
                                  {"Content-Length": "0"}, b"", expect=(201, 202))
        response.read()
        if response.status == 201:
            return True
        _cancel(client, response.getheader("Location", ""), scope)  # 202: an upload was opened instead
    return False


def _cancel(client: RegistryClient, location: str, scope: str) -> None:
    if location:
        client.request("DELETE", _absolute(client, location), scope, expect=(204, 200, 404)).read()


def _absolute(client: RegistryClient, location: str) -> str:
    return location if location.startswith(("http://", "https://")) else f"{client.scheme}://{client.host}{location}"


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})


def _upload(client: RegistryClient, repository: str, digest: str, path: str, scope: str,
            progress: Progress | None, chunk: int) -> None:
    size = os.path.getsize(path)
    response = client.request("POST", f"/v2/{repository}/blobs/uploads/", scope, {"Content-Length": "0"}, b"",
                              expect=(202,))
    response.read()
    location = _absolute(client, response.getheader("Location", ""))
    if not response.getheader("Location"):
        raise RegistryError("invalid", f"registry {client.host}: an upload was opened without a Location")
    with open(path, "rb") as f:
        if size <= chunk:
            data = f.read()
            client.request("PUT", _with_digest(location, digest), scope,
                           {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}, data,
                           expect=(201,)).read()
            if progress:
                progress(digest, size, size)
            return
        sent = 0
        while data := f.read(chunk):
            response = client.request("PATCH", location, scope, {
                "Content-Type": "application/octet-stream", "Content-Length": str(len(data)),
                "Content-Range": f"{sent}-{sent + len(data) - 1}"}, data, expect=(202,))
            response.read()
            sent += len(data)
            location = _absolute(client, response.getheader("Location", "") or location)
            if progress:
                progress(digest, sent, size)
    client.request("PUT", _with_digest(location, digest), scope, {"Content-Length": "0"}, b"",
                   expect=(201,)).read()
