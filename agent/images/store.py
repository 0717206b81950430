"""The content-addressed image store.

Layout under <state>/images/:
  blobs/sha256/<hex>        manifests, configs and layer blobs, exactly as imported (verified)
  layers/<diff_id hex>/     each layer unpacked once, an overlayfs lower directory shared by every
                            container of every image that has it; <hex>.json holds its size
  records/<image id hex>.json   what the agent needs to run the image
  tags.json                 name:tag → image id
An import writes everything under temporary names and renames only verified content into place;
a failure removes whatever that import added, so a bad archive stores nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import IO

from agent.errors import Conflict, Failed, InvalidSpec, NotFound
from agent.images import reference, save
from agent.images.archive import ArchiveError, ArchiveImage, LayerBlob, read_archive, sha256_digest
from agent.images.compression import UnsupportedCompression, decompressed
from agent.images.extract import LayerError, extract_layer
from agent.images.model import ImageConfig, ImageRecord

IN_FLIGHT_GRACE = 5.0  # an image imported, pulled or used this recently is never collected
COPY_CHUNK = 1 << 20
PARALLEL_LAYERS = 3  # Docker's default max-concurrent-downloads


class _HashingReader:
    """Counts and hashes what a consumer reads, so a layer is verified in the same pass that unpacks it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hash.update(data)
        return data

    def drain(self) -> str:
        while self.read(COPY_CHUNK):
            pass
        return "sha256:" + self.hash.hexdigest()


class ImageStore:
    def __init__(self, root: str, in_use: Callable[[str], list[str]] | None = None) -> None:
        self.root = root
        self.blobs = os.path.join(root, "blobs", "sha256")
        self.layers_dir = os.path.join(root, "layers")
        self.records = os.path.join(root, "records")
        self.tags_path = os.path.join(root, "tags.json")
        for directory in (self.blobs, self.layers_dir, self.records):
            os.makedirs(directory, exist_ok=True)
        self._in_use = in_use or (lambda _image_id: [])
        self._lock = threading.Lock()
        # The agent is the store's only writer, so the index lives in memory and is written through:
        # container create and start resolve images without touching the disk.
        self._tag_index = self._read_tags()
        self.pins_path = os.path.join(root, "pins.json")
        self._pins = self._read_pins()
        self._last_used: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._started = time.time()
        # Bumped whenever names change: whoever waits for an image (a cluster replica that could not
        # start for want of it) retries at once instead of at its next backoff step.
        self.generation = 0
        self._records = {record.id: record for record in self._read_records()}

    def set_in_use_check(self, in_use: Callable[[str], list[str]]) -> None:
        self._in_use = in_use

    # ---- reading --------------------------------------------------------------------------------
    def _read_tags(self) -> dict[str, str]:
        try:
            with open(self.tags_path) as f:
                tags: dict[str, str] = json.load(f)
                return tags
        except FileNotFoundError:
            return {}

    def _read_records(self) -> list[ImageRecord]:
        found = []
        for name in os.listdir(self.records):
            if name.endswith(".json"):
                with open(os.path.join(self.records, name)) as f:
                    found.append(ImageRecord.from_json(json.load(f), ()))
        return found

    def _tags(self) -> dict[str, str]:
        return dict(self._tag_index)

    def _write_tags(self, tags: dict[str, str]) -> None:
        temporary = self.tags_path + ".tmp"
        with open(temporary, "w") as f:
            json.dump(tags, f, indent=1, sort_keys=True)
        os.replace(temporary, self.tags_path)
        self._tag_index = dict(tags)
        self.generation += 1

    def _load(self, image_id: str, tags: dict[str, str]) -> ImageRecord:
        names = tuple(sorted(name for name, target in tags.items() if target == image_id))
        return replace(self._records[image_id], repo_tags=names, pinned=image_id in self._pins)

    # ---- garbage collection ---------------------------------------------------------------------
    def _read_pins(self) -> set[str]:
        with contextlib.suppress(FileNotFoundError), open(self.pins_path) as f:
            return set(json.load(f))
        return set()

    def pin(self, ref: str, pinned: bool) -> ImageRecord:
        with self._lock:
            record = self.resolve(ref)
            pins = (self._pins | {record.id}) if pinned else (self._pins - {record.id})
            with open(self.pins_path + ".tmp", "w") as f:
                json.dump(sorted(pins), f)
            os.replace(self.pins_path + ".tmp", self.pins_path)
            self._pins = pins
            return self._load(record.id, self._tags())

    @contextlib.contextmanager
    def hold(self, image_id: str) -> Iterator[None]:
        """While held (a build in progress uses it), an image is never collected."""
        self._held[image_id] = self._held.get(image_id, 0) + 1
        try:
            yield
        finally:
            self._held[image_id] -= 1
            if not self._held[image_id]:
                del self._held[image_id]

    def mark_used(self, image_id: str) -> None:
        """A container is being created from the image: collection removes the least recently used
        images first (kept in memory; after a restart, all count as used at start-up), and never
        one used or imported in the last IN_FLIGHT_GRACE seconds (its container may not be recorded
        yet)."""
        self._last_used[image_id] = time.time()

    def usage(self) -> tuple[int, int]:
        """(bytes used, bytes total) of the filesystem holding the store."""
        stat = os.statvfs(self.root)
        return (stat.f_blocks - stat.f_bfree) * stat.f_frsize, stat.f_blocks * stat.f_frsize

    def prune(self, everything: bool, target_bytes: int = 0) -> tuple[list[ImageRecord], int]:
        """Deletes images no container uses and nobody pinned: the untagged ones, or with
        `everything` all of them, least recently used first, stopping once `target_bytes` are
        reclaimed (0: no limit). Then deletes blobs and layers no image refers to (what an
        interrupted import or a crash left). Returns the deleted images and the bytes reclaimed."""
        with self._lock:
            tags = self._tags()
            recent = time.time() - IN_FLIGHT_GRACE
            candidates = [record for record in (self._load(i, tags) for i in self._records)
                          if (everything or not record.repo_tags) and not record.pinned
                          and not self._in_use(record.id) and record.id not in self._held
                          and self._last_used.get(record.id, 0) < recent]
            candidates.sort(key=lambda record: self._last_used.get(record.id, self._started))
            deleted, reclaimed = [], 0
            for record in candidates:
                if target_bytes and reclaimed >= target_bytes:
                    break
                for name in record.repo_tags:
                    del tags[name]
                os.unlink(os.path.join(self.records, record.id.removeprefix("sha256:") + ".json"))
                del self._records[record.id]
                reclaimed += self._collect_garbage(record)
                deleted.append(record)
            if deleted:
                self._write_tags(tags)
            return deleted, reclaimed + self._collect_orphans()

    def _collect_orphans(self) -> int:
        referenced_blobs = {d.removeprefix("sha256:") for r in self._records.values()
                            for d in (*r.layer_digests, r.id, r.manifest_digest)}
        referenced_layers = {d.removeprefix("sha256:") for r in self._records.values() for d in r.diff_ids}
        freed = 0
        for name in os.listdir(self.blobs):
            if "." in name or name not in referenced_blobs:  # a temporary name is a crash's leftover
                path = os.path.join(self.blobs, name)
                freed += os.path.getsize(path)
                os.unlink(path)
        for name in os.listdir(self.layers_dir):
            hex_id = name.removesuffix(".json")
            if hex_id not in referenced_layers:
                freed += self._remove_layer(hex_id)
        return freed

    def images_list(self) -> list[ImageRecord]:
        tags = self._tags()
        return sorted((self._load(i, tags) for i in self._records), key=lambda r: (r.repo_tags or ("~",), r.id))

    def resolve(self, ref: str) -> ImageRecord:
        """By `name:tag` (tag defaults to latest), `name@sha256:<manifest digest>`, full id, or a unique id
        prefix (with or without sha256:)."""
        tags = self._tags()
        if not ref:
            raise InvalidSpec("image", "an image reference, id or id prefix")
        _, at, digest = ref.partition("@")
        if at and reference.DIGEST.match(digest):  # as pulled: by manifest digest
            for record in self._records.values():
                if record.manifest_digest == digest:
                    return self._load(record.id, tags)
            raise NotFound(f"image {ref!r} not found: pull it first (clusterctl image pull {ref})")
        with contextlib.suppress(reference.ReferenceError):
            image_id = tags.get(reference.normalize(ref))
            if image_id:
                return self._load(image_id, tags)
        prefix = ref.removeprefix("sha256:")
        if len(prefix) >= 4 and all(c in "0123456789abcdef" for c in prefix):
            matches = [i for i in self._records if i.removeprefix("sha256:").startswith(prefix)]
            if len(matches) == 1:
                return self._load(matches[0], tags)
            if len(matches) > 1:
                raise InvalidSpec("image", f"id prefix {ref!r} matches {len(matches)} images; give more characters")
        raise NotFound(f"image {ref!r} not found: pull it (clusterctl image pull {ref}) or import it "
                       "(clusterctl image import FILE)")

    def blob_path(self, digest: str) -> str:
        return os.path.join(self.blobs, digest.removeprefix("sha256:"))

    def manifest(self, record: ImageRecord) -> bytes:
        """The image's manifest exactly as imported or pulled (its digest is the record's)."""
        with open(self.blob_path(record.manifest_digest), "rb") as f:
            return f.read()

    def save(self, refs: list[str], fmt: str, path: str, scratch: str) -> None:
        """Writes the images to an archive at `path`; no image is removed meanwhile."""
        with self._lock:
            records = [self.resolve(ref) for ref in refs]
            save.save(path, records, fmt, self.blob_path, self.manifest, scratch)

    def tag(self, ref: str, name: str) -> ImageRecord:
        """Gives an image one more name (`clusterctl image tag`), taking it from any image that had it."""
        try:
            normalized = reference.normalize(name)
        except reference.ReferenceError as e:
            raise InvalidSpec("tag", str(e)) from None
        with self._lock:
            record = self.resolve(ref)
            tags = self._tags()
            tags[normalized] = record.id
            self._write_tags(tags)
            return self._load(record.id, tags)

    def lower_dirs(self, record: ImageRecord) -> list[str]:
        """Overlay lower directories for the image, topmost first, relative to layers_dir.

        A layer the image lists twice appears once, at its topmost place: overlayfs refuses a
        directory twice (ELOOP), and the lower copy cannot show through, since every path it has
        (file, directory, whiteout) the upper copy has too, and the upper copy decides it."""
        return list(dict.fromkeys(diff_id.removeprefix("sha256:") for diff_id in reversed(record.diff_ids)))

    # ---- import ---------------------------------------------------------------------------------
    def import_archive(self, path: str, label: str, tag: str = "") -> list[ImageRecord]:
        extra_name = ""
        if tag:
            try:
                extra_name = reference.normalize(tag)
            except reference.ReferenceError as e:
                raise InvalidSpec("tag", str(e)) from None

        def read() -> tuple[list[ArchiveImage], Callable[[], None]]:
            try:
                return read_archive(path, label)
            except ArchiveError as e:
                raise Failed(str(e)) from None

        return self._import(read, label, extra_name)

    def import_image(self, image: ArchiveImage, label: str) -> ImageRecord:
        """One image whose layers are opened on demand (a pull: layers already here are not fetched)."""
        [record] = self._import(lambda: ([image], lambda: None), label, "")
        return record

    def _import(self, read: Callable[[], tuple[list[ArchiveImage], Callable[[], None]]], label: str,
                extra_name: str) -> list[ImageRecord]:
        """All or nothing: whatever a failed import added (blobs, layers, records) is removed again."""
        with self._lock:
            added: list[str] = []
            try:
                images, close = read()
                try:
                    records = [self._import_one(image, added, label) for image in images]
                finally:
                    close()
            except BaseException:
                for created in reversed(added):
                    if os.path.isdir(created):
                        shutil.rmtree(created, ignore_errors=True)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(created)
                raise
            for record in records:
                self._records.setdefault(record.id, record)
                self._last_used[record.id] = time.time()  # its user (a pull for a replica) may be on its way
            tags = self._tags()
            for record, image in zip(records, images, strict=True):
                for name in image.names:
                    tags[name] = record.id
            if extra_name and records:
                tags[extra_name] = records[0].id
            self._write_tags(tags)
            return [self._load(r.id, tags) for r in records]

    def _import_one(self, image: ArchiveImage, added: list[str], label: str) -> ImageRecord:
        config = image.config_json
        image_id = sha256_digest(image.config)
        size = sum(self._store_layers(image.layers, added, label))
        for data in (image.manifest, image.config):
            self._store_bytes(data, added)
        record = ImageRecord(
            id=image_id, manifest_digest=image.manifest_digest,
            diff_ids=tuple(layer.diff_id for layer in image.layers),
            layer_digests=tuple(layer.digest for layer in image.layers),
            config=ImageConfig.from_oci(config.get("config") or {}),
            size_bytes=size, created=str(config.get("created") or ""),
            platform=f"{config.get('os', 'linux')}/{config.get('architecture', '')}",
        )
        record_path = os.path.join(self.records, image_id.removeprefix("sha256:") + ".json")
        if not os.path.exists(record_path):
            with open(record_path + ".tmp", "w") as f:
                json.dump(record.to_json(), f)
            os.replace(record_path + ".tmp", record_path)
            added.append(record_path)
        return record

    def _store_layers(self, layers: tuple[LayerBlob, ...], added: list[str], label: str) -> list[int]:
        """Downloads (or copies) and unpacks the layers side by side, as Docker and skopeo download:
        the work is mostly writing to the page cache, hashing and inflating, which run outside the
        GIL, so two layers at once take little more than one. Every layer is finished (or has
        failed) before this returns, so a failed import knows all it added; the first failure in
        layer order is raised. A layer the image lists twice is unpacked once (a second blob of
        the same content, compressed differently, is only stored)."""
        first: dict[str, tuple[int, LayerBlob]] = {}
        for position, layer in enumerate(layers):
            first.setdefault(layer.diff_id, (position, layer))
        others = [(position, layer) for position, layer in enumerate(layers)
                  if first[layer.diff_id][1].digest != layer.digest]

        def where(position: int, layer: LayerBlob) -> str:
            return f"{label}: layer {position} ({layer.digest[:19]})"

        def store(position: int, layer: LayerBlob) -> int:
            return self._unpack(self._store_blob(layer, added, where(position, layer)), layer, added,
                                where(position, layer))

        if len(first) == 1:
            sizes = [store(*first[layers[0].diff_id])]
        else:
            with ThreadPoolExecutor(max_workers=min(len(first), PARALLEL_LAYERS), thread_name_prefix="layer") as pool:
                futures = [pool.submit(store, position, layer) for position, layer in first.values()]
            sizes = [future.result() for future in futures]
        for position, layer in others:
            self._store_blob(layer, added, where(position, layer))
        return sizes

    def _store_bytes(self, data: bytes, added: list[str]) -> None:
        path = os.path.join(self.blobs, sha256_digest(data).removeprefix("sha256:"))
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)
            added.append(path)

    def _store_blob(self, layer: LayerBlob, added: list[str], where: str) -> str:
        path = os.path.join(self.blobs, layer.digest.removeprefix("sha256:"))
        if os.path.exists(path):
            return path
        temporary = f"{path}.{uuid.uuid4().hex}.tmp"
        digest = hashlib.sha256()
        try:
            with layer.open() as source, open(temporary, "wb") as out:
                while chunk := source.read(COPY_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            if "sha256:" + digest.hexdigest() != layer.digest:
                raise Failed(f"{where}: content does not match its digest (corrupted or tampered with)")
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        added.append(path)
        return path

    def _unpack(self, blob: str, layer: LayerBlob, added: list[str], where: str) -> int:
        hex_id = layer.diff_id.removeprefix("sha256:")
        final = os.path.join(self.layers_dir, hex_id)
        meta = final + ".json"
        if os.path.isdir(final) and os.path.exists(meta):
            with open(meta) as f:
                size: int = json.load(f)["size"]
            return size
        temporary = os.path.join(self.layers_dir, f".tmp-{hex_id[:12]}-{uuid.uuid4().hex[:8]}")
        os.mkdir(temporary, 0o755)
        try:
            with open(blob, "rb") as raw:
                reader = _HashingReader(decompressed(raw))
                size = extract_layer(reader, temporary)  # type: ignore[arg-type]
                if reader.drain() != layer.diff_id:
                    raise Failed(f"{where}: uncompressed content does not match diff_id {layer.diff_id}")
            os.rename(temporary, final)
        except LayerError as e:
            raise Failed(f"{where}: refused: {e}") from None
        except UnsupportedCompression as e:
            raise Failed(f"{where}: {e}") from None
        except (OSError, EOFError) as e:
            raise Failed(f"{where}: cannot unpack: {e}") from None
        finally:
            if os.path.isdir(temporary):
                shutil.rmtree(temporary, ignore_errors=True)
        added.append(final)
        with open(meta, "w") as f:
            json.dump({"size": size}, f)
        added.append(meta)
        return size

    # ---- removal --------------------------------------------------------------------------------
    def remove(self, ref: str) -> tuple[list[str], list[str]]:
        """Untags `ref`; deletes the image when that was its last name (or ref is an id)."""
        with self._lock:
            record = self.resolve(ref)
            tags = self._tags()
            with contextlib.suppress(reference.ReferenceError):
                name = reference.normalize(ref)
                if tags.get(name) == record.id and len(record.repo_tags) > 1:
                    del tags[name]
                    self._write_tags(tags)
                    return [name], []
            users = self._in_use(record.id)
            if users:
                raise Conflict(f"image {ref!r} is in use by container(s) {', '.join(users)}: remove them first")
            for name in record.repo_tags:
                del tags[name]
            self._write_tags(tags)
            os.unlink(os.path.join(self.records, record.id.removeprefix("sha256:") + ".json"))
            del self._records[record.id]
            self._collect_garbage(record)
            return list(record.repo_tags), [record.id]

    def _collect_garbage(self, removed: ImageRecord) -> int:
        """Deletes the removed image's layers and blobs that no other image shares; returns the bytes freed."""
        still_used_layers: set[str] = set()
        still_used_blobs: set[str] = set()
        for other in self._records.values():
            still_used_layers.update(other.diff_ids)
            still_used_blobs.update(other.layer_digests)
            still_used_blobs.update({other.id, other.manifest_digest})
        freed = 0
        for diff_id in set(removed.diff_ids) - still_used_layers:
            freed += self._remove_layer(diff_id.removeprefix("sha256:"))
        for digest in {*removed.layer_digests, removed.id, removed.manifest_digest} - still_used_blobs:
            path = os.path.join(self.blobs, digest.removeprefix("sha256:"))
            with contextlib.suppress(FileNotFoundError):
                freed += os.path.getsize(path)
                os.unlink(path)
        return freed

    def _remove_layer(self, hex_id: str) -> int:
        size = 0
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError), \
                open(os.path.join(self.layers_dir, hex_id + ".json")) as f:
            size = int(json.load(f)["size"])
        shutil.rmtree(os.path.join(self.layers_dir, hex_id), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.layers_dir, hex_id + ".json"))
        return size
