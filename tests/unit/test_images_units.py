"""Archive parsing and references (no extraction: that needs root and lives in integration)."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from make_busybox_image import Entry, layer_tar, write_docker_archive, write_oci_layout

from agent.images import reference
from agent.images.archive import ArchiveError, read_archive
from agent.images.compression import GzipReader, UnsupportedCompression, decompressed


@pytest.mark.parametrize(("ref", "normal"), [("busybox", "busybox:latest"),
                                             ("library/busybox:1.36", "library/busybox:1.36"),
                                             ("localhost:5000/app:v1", "localhost:5000/app:v1"),
                                             ("ghcr.io/org/app", "ghcr.io/org/app:latest")])
def test_references(ref: str, normal: str) -> None:
    assert reference.normalize(ref) == normal


@pytest.mark.parametrize("ref", ["UPPER:1", "bad name", "x:" + "t" * 200, "a//b"])
def test_bad_references(ref: str) -> None:
    with pytest.raises(reference.ReferenceError):
        reference.normalize(ref)


def test_oci_layout_and_docker_archive_read_the_same_image(tmp_path: Path) -> None:
    layers = [layer_tar([Entry("a", b"1")]), layer_tar([Entry("b", b"2")])]
    oci = write_oci_layout(str(tmp_path / "oci.tar"), layers, {"Cmd": ["x"]}, name="app:1")
    docker = write_docker_archive(str(tmp_path / "docker.tar"), layers, {"Cmd": ["x"]}, name="app:1")
    assert oci == docker  # same config, same image id
    for name in ("oci.tar", "docker.tar"):
        images, close = read_archive(str(tmp_path / name), name)
        try:
            [image] = images
            assert image.names == ("app:1",)
            assert [layer.diff_id for layer in image.layers] == image.config_json["rootfs"]["diff_ids"]
        finally:
            close()


def test_wrong_media_type_and_missing_blobs_are_named(tmp_path: Path) -> None:
    path = tmp_path / "oci.tar"
    write_oci_layout(str(path), [layer_tar([Entry("a", b"1")])], name="x:1")
    with tarfile.open(path) as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    index["manifests"][0]["mediaType"] = "application/x-nonsense"
    broken = tmp_path / "broken.tar"
    with tarfile.open(broken, "w") as tar:
        import io

        data = json.dumps(index).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        layout = tarfile.TarInfo("oci-layout")
        tar.addfile(layout, io.BytesIO(b""))
    with pytest.raises(ArchiveError, match=r"broken\.tar: index\.json manifests\[0\]: unsupported media type"):
        read_archive(str(broken), "broken.tar")
    (tmp_path / "neither.tar").write_bytes(b"")
    with tarfile.open(tmp_path / "neither.tar", "w"):
        pass
    with pytest.raises(ArchiveError, match="neither an OCI image layout"):
        read_archive(str(tmp_path / "neither.tar"), "neither.tar")


def _gunzip_all(data: bytes, piece: int) -> bytes:
    reader = GzipReader(io.BytesIO(data))
    return b"".join(iter(lambda: reader.read(piece), b""))


@pytest.mark.parametrize("piece", [1, 7, 1 << 20])
def test_gzip_reader_reads_members_and_padding_as_gzip_does(piece: int) -> None:
    first, second = os.urandom(70_000), b"tar content " * 5000
    stream = gzip.compress(first) + gzip.compress(second) + b"\0" * 1024  # `cat a.gz b.gz`, then padding
    assert _gunzip_all(stream, piece) == gzip.decompress(stream) == first + second
    assert GzipReader(io.BytesIO(stream)).read() == first + second


def test_gzip_reader_refuses_truncated_and_corrupt_layers() -> None:
    stream = gzip.compress(os.urandom(50_000))
    with pytest.raises(EOFError, match="truncated"):
        _gunzip_all(stream[:-100], 4096)
    corrupt = bytearray(stream)
    corrupt[-8] ^= 0xFF  # the CRC-32 in the trailer
    with pytest.raises(gzip.BadGzipFile, match="corrupt gzip data"):
        _gunzip_all(bytes(corrupt), 4096)


def test_layer_compression_is_told_by_its_first_bytes() -> None:
    plain = layer_tar([Entry("a", b"1")])
    assert decompressed(io.BytesIO(gzip.compress(plain))).read() == plain
    assert decompressed(io.BytesIO(plain)).read() == plain
    with pytest.raises(UnsupportedCompression, match="zstd"):
        decompressed(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"\0" * 10))
