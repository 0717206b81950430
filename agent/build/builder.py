"""Building an image from a Dockerfile, step by step, with Shoal's own runtime and a layer cache.

Each step that changes the filesystem makes one layer and is committed as an (untagged) image in
the store: RUN runs in a Shoal container from the previous image, and its overlayfs upper
directory becomes the layer; COPY and ADD write their files into a layer directly. Steps that only
change the config (ENV, WORKDIR, USER, CMD, ENTRYPOINT, EXPOSE, LABEL, ARG) make no layer.

The cache maps a chain key to the image a step committed (so a cached rebuild gives the same
image id even though each commit records its creation time): the key hashes the previous key, the
step as written (variables expanded), and for COPY/ADD the names, modes and contents of the
files copied, and for RUN the build arguments in effect. A rebuild of an unchanged Dockerfile
and context is then all cache hits, and gives the same image id. Images of a build in progress
are held, so garbage collection cannot remove them under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import json
import os
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from agent.build import imageconfig, layers
from agent.build.dockerfile import (
    Dockerfile,
    DockerfileError,
    Instruction,
    command_form,
    expand,
    parse,
    sources_and_destination,
)
from agent.containers.model import ContainerSpec, NetworkMode, State
from agent.containers.service import ContainerService
from agent.errors import BadInput, Failed, InvalidSpec, NotFound, ShoalError
from agent.images import reference
from agent.images.archive import OCI_CONFIG, OCI_MANIFEST, ArchiveImage, LayerBlob, host_platform, sha256_digest
from agent.images.compression import decompressed
from agent.images.extract import LayerError, extract_layer
from agent.images.model import ImageRecord
from agent.images.service import ImageService

Emit = Callable[[str], Awaitable[None]]
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class StageState:
    """The image a stage has built so far."""

    layers: list[tuple[str, str]] = field(default_factory=list)  # (blob digest, diff_id), bottom first
    config: dict[str, Any] = field(default_factory=dict)  # the OCI config's `config` section
    image_id: str = ""  # the last commit; "" until the first
    committed_config: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    args: dict[str, str] = field(default_factory=dict)
    name: str = ""  # the stage's, for COPY --from
    cmd_set: bool = False  # CMD given in this stage (an ENTRYPOINT then keeps it)

    def variables(self) -> dict[str, str]:
        env = dict(item.partition("=")[::2] for item in self.config.get("Env") or [])
        return {**self.args, **env}


class BuildCache:
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(path) as f:
                self.entries: dict[str, str] = json.load(f)
        except (OSError, ValueError):
            self.entries = {}

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def image_ids(self) -> set[str]:
        return set(self.entries.values())

    def put(self, key: str, image_id: str) -> None:
        self.entries[key] = image_id
        with open(self.path + ".tmp", "w") as f:
            json.dump(self.entries, f)
        os.replace(self.path + ".tmp", self.path)


class Builder:
    def __init__(self, *, images: ImageService, containers: ContainerService, state_dir: str) -> None:
        self.images = images
        self.store = images.store
        self.containers = containers
        self.scratch_root = os.path.join(state_dir, "build")
        os.makedirs(self.scratch_root, exist_ok=True)
        self.cache = BuildCache(os.path.join(state_dir, "build-cache.json"))

    async def build_context(self, chunks: AsyncIterator[bytes], dockerfile: bytes, tags: list[str],
                            build_args: dict[str, str], target: str, no_cache: bool, emit: Emit) -> ImageRecord:
        """The whole request: the context tar is unpacked (as hostile input) into a scratch directory,
        the image built from the Dockerfile and named."""
        try:
            text = dockerfile.decode()
        except UnicodeDecodeError:
            raise BadInput("Dockerfile: not UTF-8 text") from None
        for tag in tags:
            try:
                reference.normalize(tag)
            except reference.ReferenceError as e:
                raise InvalidSpec("tags", str(e)) from None
        with tempfile.TemporaryDirectory(dir=self.scratch_root) as scratch:
            archive = os.path.join(scratch, "context.tar")
            with open(archive, "wb") as spool:
                async for chunk in chunks:
                    await asyncio.to_thread(spool.write, chunk)
            context = os.path.join(scratch, "context")
            os.mkdir(context)
            try:
                with open(archive, "rb") as raw:
                    await asyncio.to_thread(extract_layer, raw, context)
            except (LayerError, tarfile.TarError, OSError) as e:
                raise BadInput(f"build context: {e}") from None
            try:
                record = await self.build(parse(text), context, build_args, target, no_cache, emit)
            except DockerfileError as e:
                raise BadInput(str(e)) from None
        for tag in tags:
            record = self.store.tag(record.id, tag)
            await emit(f"Successfully tagged {reference.normalize(tag)}")
        return record

    async def build(self, dockerfile: Dockerfile, context: str, build_args: dict[str, str], target: str,
                    no_cache: bool, emit: Emit) -> ImageRecord:
        last = dockerfile.stage(target)
        global_args = self._declare({}, dockerfile.global_args, build_args)
        done: dict[int, StageState] = {}
        steps = sum(1 + len(stage.instructions) for stage in dockerfile.stages[:last + 1])
        step = 0
        with contextlib.ExitStack() as holds:
            for stage in dockerfile.stages[:last + 1]:
                step += 1
                base = expand(stage.base, global_args, stage.line)
                await emit(f"Step {step}/{steps} : FROM {base}" + (f" AS {stage.name}" if stage.name else ""))
                state = await self._base(base, dockerfile, done, stage.line)
                state.args, state.name = {}, stage.name or str(stage.index)
                for instruction in stage.instructions:
                    step += 1
                    await emit(f"Step {step}/{steps} : {instruction.text}")
                    await self._step(state, instruction, context, build_args, global_args, done, no_cache, emit,
                                     holds)
                await self._commit_final(state, holds)
                done[stage.index] = state
            record = self.store.resolve(done[last].image_id)
        await emit(f"Successfully built {record.id.removeprefix('sha256:')[:12]}")
        return record

    # ---- stages ---------------------------------------------------------------------------------
    @staticmethod
    def _declare(variables: dict[str, str], args: list[Instruction], build_args: dict[str, str]) -> dict[str, str]:
        declared = dict(variables)
        for instruction in args:
            name, eq, default = _arg(instruction)
            declared[name] = build_args.get(name, expand(default, declared, instruction.line) if eq else "")
        return declared

    async def _base(self, base: str, dockerfile: Dockerfile, done: dict[int, StageState], line: int) -> StageState:
        if base == "scratch":
            return StageState(config={"Env": [DEFAULT_PATH]}, key=_hash("scratch"))
        for stage in dockerfile.stages:
            if stage.index in done and base.lower() in (stage.name, str(stage.index)):
                previous = done[stage.index]
                return StageState(layers=list(previous.layers), config=json.loads(json.dumps(previous.config)),
                                  image_id=previous.image_id, committed_config=previous.config, key=previous.key)
        try:
            try:
                record = self.store.resolve(base)
            except NotFound:
                record = await self.images.pull(base)  # as Docker: a base image missing here is pulled
        except ShoalError as e:
            raise Failed(f"Dockerfile:{line}: FROM {base}: {e}") from None
        with open(self.store.blob_path(record.id), "rb") as f:
            config = json.load(f).get("config") or {}
        return StageState(layers=list(zip(record.layer_digests, record.diff_ids, strict=True)), config=config,
                          image_id=record.id, committed_config=json.loads(json.dumps(config)), key=_hash(record.id))

    # ---- steps ----------------------------------------------------------------------------------
    async def _step(self, state: StageState, instruction: Instruction, context: str, build_args: dict[str, str],
                    global_args: dict[str, str], done: dict[int, StageState], no_cache: bool, emit: Emit,
                    holds: contextlib.ExitStack) -> None:
        keyword, line = instruction.keyword, instruction.line
        variables = state.variables()
        if keyword == "ARG":  # a global ARG is visible in a stage only once declared there again
            name, eq, default = _arg(instruction)
            state.args[name] = build_args[name] if name in build_args else \
                expand(default, variables, line) if eq else global_args.get(name, "")
            state.key = _hash(state.key, instruction.text, state.args[name])
            return
        if keyword not in ("RUN", "COPY", "ADD"):
            state.cmd_set = imageconfig.apply(state.config, instruction, variables, state.cmd_set)
            state.key = _hash(state.key, instruction.text)
            return
        with tempfile.TemporaryDirectory(dir=self.scratch_root) as scratch:
            if keyword == "RUN":
                key = _hash(state.key, instruction.text, json.dumps(sorted(state.args.items())))
                if await self._cached(state, key, no_cache, emit, holds):
                    return
                layer = await self._run(state, instruction, scratch, emit, holds)
            else:
                copies, digest, owner = self._copies(state, instruction, context, done, scratch)
                key = _hash(state.key, instruction.text, digest)
                if await self._cached(state, key, no_cache, emit, holds):
                    return
                layer = os.path.join(scratch, "layer.tar")
                layers.layer_from_files(copies, layer, owner)
            await self._commit(state, layer, holds)
            state.key = key
            self.cache.put(key, state.image_id)

    async def _cached(self, state: StageState, key: str, no_cache: bool, emit: Emit,
                      holds: contextlib.ExitStack) -> bool:
        image_id = None if no_cache else self.cache.get(key)
        if image_id is None:
            return False
        try:
            record = self.store.resolve(image_id)
        except NotFound:
            return False  # collected since: build the step again
        holds.enter_context(self.store.hold(record.id))
        with open(self.store.blob_path(record.id), "rb") as f:
            config = json.load(f).get("config") or {}
        state.layers = list(zip(record.layer_digests, record.diff_ids, strict=True))
        state.config, state.committed_config = config, json.loads(json.dumps(config))
        state.image_id, state.key = record.id, key
        await emit(" ---> Using cache")
        return True

    async def _run(self, state: StageState, instruction: Instruction, scratch: str, emit: Emit,
                   holds: contextlib.ExitStack) -> str:
        if not state.image_id:
            await self._commit(state, None, holds)
        argv = command_form(instruction)
        image_env = state.config.get("Env") or []
        declared = {item.partition("=")[0] for item in image_env}
        # Build arguments are in RUN's environment, but an ENV of the same name wins (Docker's rule).
        env = [*(f"{k}={v}" for k, v in state.args.items() if k not in declared), *image_env]
        spec = ContainerSpec(name=f"build-{os.urandom(6).hex()}", image=state.image_id, entrypoint=tuple(argv),
                             env=tuple(env), working_dir=state.config.get("WorkingDir") or "",
                             user=state.config.get("User") or "", network=NetworkMode.HOST,
                             labels={"shoal.build": "step"})
        container = await self.containers.create(spec)
        try:
            await emit(f" ---> Running in {container.id[:12]}")
            try:
                await self.containers.start(container.id)
            except Failed as e:
                raise Failed(f"Dockerfile:{instruction.line}: {instruction.text}: {e}") from None
            finished = await self.containers.wait(container.id)
            async for batch in self.containers.logs(container.id, follow=False, tail=-1):
                for entry in batch:
                    await emit(entry.data.decode(errors="replace").rstrip("\n"))
            if finished.state is not State.EXITED or finished.exit_code != 0:
                raise Failed(f"Dockerfile:{instruction.line}: {instruction.text}: the command returned a non-zero "
                             f"code: {finished.exit_code}")
            upper = os.path.join(self.containers.records.directory(container.id), "upper")
            layer = os.path.join(scratch, "layer.tar")
            layers.layer_from_upper(upper, layer)
            return layer
        finally:
            await self.containers.remove(container.id, force=True)

    def _copies(self, state: StageState, instruction: Instruction, context: str, done: dict[int, StageState],
                scratch: str) -> tuple[list[tuple[str, str]], str, tuple[int, int]]:
        """The (source path, image path) pairs of a COPY/ADD, a digest of their content, the owner."""
        line = instruction.line
        sources, destination = sources_and_destination(instruction, state.variables())
        root = context
        if "from" in instruction.flags:
            root = os.path.join(scratch, "from")
            os.makedirs(root)
            self._materialize(self._source_layers(instruction.flags["from"], done, line), root)
        workdir = state.config.get("WorkingDir") or "/"
        target = os.path.normpath(destination if destination.startswith("/") else os.path.join(workdir, destination))
        matched: list[str] = []
        for source in sources:
            if "://" in source:
                raise DockerfileError(line, f"{instruction.keyword} {source}: URLs are not supported (use RUN wget)")
            found = sorted(glob.glob(source.lstrip("/"), root_dir=root)) if glob.has_magic(source) \
                else [source.lstrip("/")]
            if not found or not all(os.path.lexists(os.path.join(root, f)) for f in found):
                raise DockerfileError(line, f"{instruction.keyword}: {source}: no such file in the "
                                            f"{'stage' if root != context else 'build context'}")
            for relative in found:
                real = os.path.realpath(os.path.join(root, relative))
                if os.path.commonpath([real, os.path.realpath(root)]) != os.path.realpath(root):
                    raise DockerfileError(line, f"{instruction.keyword}: {source}: outside the build context")
                matched.append(os.path.join(root, os.path.normpath(relative)))
        # As Docker: a destination ending in `/` (or `.`) is a directory, and so is one taking several sources.
        into_directory = destination.endswith(("/", "/.")) or destination == "." or len(matched) > 1
        copies: list[tuple[str, str]] = []
        for path in matched:
            if instruction.keyword == "ADD" and os.path.isfile(path) and tarfile.is_tarfile(path):
                unpacked = tempfile.mkdtemp(dir=scratch)  # ADD unpacks a local tar archive, as Docker does
                os.chmod(unpacked, 0o755)  # it becomes the destination directory
                with open(path, "rb") as raw:
                    extract_layer(decompressed(raw), unpacked)
                copies.append((unpacked, target))
            elif os.path.isdir(path) and not os.path.islink(path):
                copies.append((path, target))
            else:
                copies.append((path, os.path.join(target, os.path.basename(path)) if into_directory else target))
        # As Docker: what COPY and ADD create belongs to root unless --chown says otherwise.
        owner = self._owner(state, instruction.flags["chown"], line, scratch) \
            if "chown" in instruction.flags else (0, 0)
        return copies, _content_digest(copies), owner

    def _source_layers(self, ref: str, done: dict[int, StageState], line: int) -> list[str]:
        """The unpacked layers of an earlier stage (by name or index) or of a local image."""
        stage = next((state for index, state in done.items() if ref.lower() in (state.name, str(index))), None)
        if stage is not None:
            return self._layer_dirs(diff_id for _, diff_id in stage.layers)
        try:
            record = self.store.resolve(ref)
        except NotFound:
            raise DockerfileError(line, f"COPY --from={ref}: no earlier stage or local image has that name") from None
        return self._layer_dirs(record.diff_ids)

    def _layer_dirs(self, diff_ids: Iterable[str]) -> list[str]:
        return [os.path.join(self.store.layers_dir, diff_id.removeprefix("sha256:")) for diff_id in diff_ids]

    @staticmethod
    def _materialize(layer_dirs: list[str], into: str) -> None:
        layers.merge_layers(layer_dirs, into)

    def _owner(self, state: StageState, spec: str, line: int, scratch: str) -> tuple[int, int]:
        user, _, group = spec.partition(":")
        group = group or user
        if user.isdigit() and group.isdigit():
            return int(user), int(group)
        etc = os.path.join(scratch, "etc-view")
        os.makedirs(etc, exist_ok=True)
        self._materialize(self._layer_dirs(diff_id for _, diff_id in state.layers), etc)

        def lookup(name: str, table: str) -> int:
            if name.isdigit():
                return int(name)
            with contextlib.suppress(OSError), open(os.path.join(etc, "etc", table)) as f:
                for entry in f:
                    fields = entry.strip().split(":")
                    if len(fields) > 2 and fields[0] == name:
                        return int(fields[2])
            raise DockerfileError(line, f"--chown={spec}: no {'user' if table == 'passwd' else 'group'} {name!r} "
                                        f"in the image's /etc/{table}")

        return lookup(user, "passwd"), lookup(group, "group")

    # ---- commits --------------------------------------------------------------------------------
    async def _commit(self, state: StageState, layer: str | None, holds: contextlib.ExitStack) -> None:
        """Imports the state (plus the new layer tar, stored uncompressed: its digest is its diff_id) as an
        untagged image, held until the build ends."""
        new_layer = None
        if layer is not None:
            with open(layer, "rb") as f:
                diff_id = "sha256:" + _file_digest(f)
            state.layers.append((diff_id, diff_id))
            new_layer = (diff_id, layer)
        record = await asyncio.to_thread(self.store.import_image, self._image(state, new_layer), "build")
        holds.enter_context(self.store.hold(record.id))
        state.image_id, state.committed_config = record.id, json.loads(json.dumps(state.config))

    async def _commit_final(self, state: StageState, holds: contextlib.ExitStack) -> None:
        if state.image_id and state.config == state.committed_config:
            return
        key = _hash(state.key, "commit", json.dumps(state.config, sort_keys=True))
        if await self._cached(state, key, False, _quiet, holds):
            return
        await self._commit(state, None, holds)
        state.key = key
        self.cache.put(key, state.image_id)

    def _image(self, state: StageState, new_layer: tuple[str, str] | None) -> ArchiveImage:
        os_name, architecture = host_platform()
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        config = json.dumps({
            "created": created, "architecture": architecture, "os": os_name, "config": state.config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in state.layers]},
        }, sort_keys=True).encode()
        blobs, descriptors = [], []
        for digest, diff_id in state.layers:
            path = new_layer[1] if new_layer and digest == new_layer[0] else self.store.blob_path(digest)
            with open(path, "rb") as f:
                media_type = LAYER_GZIP if f.read(2) == b"\x1f\x8b" else LAYER_TAR
            blobs.append(LayerBlob(digest=digest, diff_id=diff_id, media_type=media_type,
                                   open=_opener(path)))
            descriptors.append({"mediaType": media_type, "digest": digest, "size": os.path.getsize(path)})
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
            "layers": descriptors}, sort_keys=True).encode()
        return ArchiveImage(names=(), manifest=manifest, config=config, layers=tuple(blobs))


def _arg(instruction: Instruction) -> tuple[str, str, str]:
    """ARG NAME[=default] as (name, "=" or "", default)."""
    name, eq, default = (part.strip() for part in instruction.arguments.partition("="))
    if not name.replace("_", "").isalnum():
        raise DockerfileError(instruction.line, f"ARG {instruction.arguments}: expected NAME[=default]")
    return name, eq, default


def _opener(path: str) -> Callable[[], IO[bytes]]:
    def open_blob() -> IO[bytes]:
        return open(path, "rb")

    return open_blob


async def _quiet(_: str) -> None:
    return None


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _file_digest(f: Any) -> str:
    digest = hashlib.sha256()
    while chunk := f.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _content_digest(copies: list[tuple[str, str]]) -> str:
    """What COPY's cache key depends on: every file's path, mode and content."""
    digest = hashlib.sha256()
    for source, destination in copies:
        for path, name in _files(source, destination):
            st = os.lstat(path)
            digest.update(f"{name}\0{st.st_mode}\0".encode())
            if os.path.islink(path):
                digest.update(os.readlink(path).encode())
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    digest.update(_file_digest(f).encode())
    return digest.hexdigest()


def _files(source: str, destination: str) -> Iterator[tuple[str, str]]:
    yield source, destination
    if os.path.isdir(source) and not os.path.islink(source):
        for directory, dirs, files in os.walk(source):
            dirs.sort()
            for name in sorted(dirs + files):
                path = os.path.join(directory, name)
                yield path, os.path.join(destination, os.path.relpath(path, source))


