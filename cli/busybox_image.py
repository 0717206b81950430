"""Makes a small image from the host's busybox-static, offline: an OCI image layout tar or a
`docker save` archive that `clusterctl image import` loads (`clusterctl up` uses it too).

    python3 examples/make_busybox_image.py busybox.tar --tag busybox:local [--format oci|docker]

The layer holds /bin/busybox with a symlink per applet, /etc/passwd and /etc/group (root and
nobody), and empty /tmp and /root; the config runs `sh`. Tests use the same functions to build
the images they need, so nothing is ever downloaded.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


@dataclass
class Entry:
    """One tar entry: a file (data), a directory, a symlink or hardlink (link), or any raw TarInfo type."""

    name: str
    data: bytes | None = None
    mode: int = 0o644
    kind: bytes = tarfile.REGTYPE
    link: str = ""
    uid: int = 0
    gid: int = 0
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, str] = field(default_factory=dict)


def layer_tar(entries: Iterable[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.kind
            info.mode = entry.mode
            info.uid, info.gid = entry.uid, entry.gid
            info.mtime = 1_700_000_000
            info.linkname = entry.link
            info.devmajor, info.devminor = entry.devmajor, entry.devminor
            info.pax_headers = entry.pax
            data = entry.data or b""
            info.size = len(data) if entry.kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if info.size else None)
    return buffer.getvalue()


def busybox_entries() -> list[Entry]:
    with open(BUSYBOX, "rb") as f:
        binary = f.read()
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    entries = [Entry("bin", kind=tarfile.DIRTYPE, mode=0o755), Entry("bin/busybox", binary, 0o755)]
    entries += [Entry(f"bin/{a}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
                for a in sorted(set(applets)) if a != "busybox"]
    entries += [
        Entry("etc", kind=tarfile.DIRTYPE, mode=0o755),
        Entry("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        Entry("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
        Entry("tmp", kind=tarfile.DIRTYPE, mode=0o1777),
        Entry("root", kind=tarfile.DIRTYPE, mode=0o700),
    ]
    return entries


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(diff_ids: list[str], config: dict[str, object] | None = None) -> bytes:
    body = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000)),
        "architecture": ARCH, "os": "linux",
        "config": config if config is not None else {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return json.dumps(body, sort_keys=True).encode()


def write_oci_layout(path: str, layers: list[bytes], config: dict[str, object] | None = None,
                     name: str = "", compress: bool | Sequence[bool] = True) -> str:
    """Writes an OCI image layout tar; returns the image id (config digest). `compress` may be
    given per layer."""
    blobs: dict[str, bytes] = {}
    descriptors = []
    for layer, gzipped in zip(layers, [compress] * len(layers) if isinstance(compress, bool) else compress,
                              strict=True):
        blob = gzip.compress(layer, mtime=0) if gzipped else layer
        blobs[_digest(blob)] = blob
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzipped else "")
        descriptors.append({"mediaType": media, "digest": _digest(blob), "size": len(blob)})
    config_blob = image_config([_digest(layer) for layer in layers], config)
    blobs[_digest(config_blob)] = config_blob
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config_blob),
                   "size": len(config_blob)},
        "layers": descriptors}).encode()
    blobs[_digest(manifest)] = manifest
    annotations = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name} if name else {}
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(manifest),
        "size": len(manifest), "annotations": annotations}]}
    files = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
             "index.json": json.dumps(index).encode()}
    files.update({f"blobs/sha256/{d.removeprefix('sha256:')}": b for d, b in blobs.items()})
    _write_tar(path, files)
    return _digest(config_blob)


def write_docker_archive(path: str, layers: list[bytes], config: dict[str, object] | None = None,
                         name: str = "") -> str:
    """Writes a `docker save` archive (Docker image spec v1.2 layout); returns the image id."""
    config_blob = image_config([_digest(layer) for layer in layers], config)
    config_name = _digest(config_blob).removeprefix("sha256:") + ".json"
    files = {config_name: config_blob}
    layer_paths = []
    for layer in layers:
        layer_dir = _digest(layer).removeprefix("sha256:")
        files[f"{layer_dir}/layer.tar"] = layer
        layer_paths.append(f"{layer_dir}/layer.tar")
    files["manifest.json"] = json.dumps([{"Config": config_name, "RepoTags": [name] if name else [],
                                          "Layers": layer_paths}]).encode()
    _write_tar(path, files)
    return _digest(config_blob)


def _write_tar(path: str, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output")
    parser.add_argument("--tag", default="busybox:local")
    parser.add_argument("--format", choices=("oci", "docker"), default="oci")
    args = parser.parse_args()
    if not os.path.exists(BUSYBOX):
        raise SystemExit("busybox not found: install Debian's busybox-static (apt-get install busybox-static)")
    layers = [layer_tar(busybox_entries())]
    writer = write_oci_layout if args.format == "oci" else write_docker_archive
    image_id = writer(args.output, layers, name=args.tag)
    print(f"{args.output}: {args.tag} ({image_id[:19]})")


if __name__ == "__main__":
    main()
