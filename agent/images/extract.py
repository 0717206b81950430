"""Unpacking one layer tar into a directory, treating the tar as hostile.

Every path is resolved one component at a time with O_NOFOLLOW relative to the layer directory,
so no entry can write outside it: `..` components and absolute names are refused, as are writes
through a symlink (an earlier entry `lib -> /etc` followed by `lib/passwd`), hardlinks whose
target is not inside the layer, and device nodes (a container must not gain access to host
devices through its image). OCI whiteouts become overlayfs whiteouts (character device 0:0) and
opaque markers the `trusted.overlay.opaque` xattr — see the OCI image spec, layer.md, and the
kernel's Documentation/filesystems/overlayfs.rst.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from typing import IO

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
ALLOWED_XATTR_PREFIXES = ("user.", "security.capability")
COPY_CHUNK = 1 << 20


class LayerError(Exception):
    """A layer that cannot be unpacked safely; the message names the entry."""


def _clean_parts(name: str, entry: str) -> list[str]:
    if name.startswith("/"):
        raise LayerError(f"entry {entry!r}: absolute paths are not allowed in a layer")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"entry {entry!r}: '..' would leave the layer directory")
    return parts


class _Layer:
    def __init__(self, root: str) -> None:
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.dir_times: list[tuple[list[str], int]] = []

    def close(self) -> None:
        os.close(self.root_fd)

    def open_dir(self, parts: list[str], entry: str, create: bool = True) -> int:
        """An fd for the directory `parts`, never following a symlink; missing levels are made."""
        fd = os.dup(self.root_fd)
        try:
            for part in parts:
                try:
                    next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise LayerError(f"entry {entry!r}: {'/'.join(parts)} does not exist in the layer") from None
                    os.mkdir(part, 0o755, dir_fd=fd)
                    next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise LayerError(f"entry {entry!r}: {part!r} is a symlink or not a directory; "
                                         "writing through it could leave the layer") from None
                    raise
                os.close(fd)
                fd = next_fd
            return fd
        except BaseException:
            os.close(fd)
            raise


def _remove_existing(dir_fd: int, name: str, keep_dir: bool) -> None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return
        shutil.rmtree(f"/proc/self/fd/{dir_fd}/{name}")
    else:
        os.unlink(name, dir_fd=dir_fd)


def extract_layer(stream: IO[bytes], dest: str) -> int:
    """Unpacks the (uncompressed) tar read from stream into dest; returns the bytes of file content."""
    layer = _Layer(dest)
    total = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=COPY_CHUNK) as tar:
            for member in tar:
                total += _extract_member(layer, tar, member)
        for parts, mtime in reversed(layer.dir_times):
            fd = layer.open_dir(parts, "/".join(parts), create=False)
            try:
                os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)
    except tarfile.TarError as e:
        raise LayerError(f"not a valid tar stream: {e}") from None
    finally:
        layer.close()
    return total


def _extract_member(layer: _Layer, tar: tarfile.TarFile, member: tarfile.TarInfo) -> int:
    parts = _clean_parts(member.name, member.name)
    if not parts:
        return 0  # the layer root itself
    *parent, base = parts
    dir_fd = layer.open_dir(parent, member.name)
    try:
        if base == OPAQUE_MARKER:
            os.setxattr(dir_fd, "trusted.overlay.opaque", b"y")
            return 0
        if base.startswith(WHITEOUT_PREFIX):
            hidden = base[len(WHITEOUT_PREFIX):]
            _remove_existing(dir_fd, hidden, keep_dir=False)
            os.mknod(hidden, 0o600 | stat.S_IFCHR, os.makedev(0, 0), dir_fd=dir_fd)
            return 0
        return _create(layer, tar, member, dir_fd, parts, base)
    finally:
        os.close(dir_fd)


def _create(layer: _Layer, tar: tarfile.TarFile, member: tarfile.TarInfo, dir_fd: int, parts: list[str],
            base: str) -> int:
    size = 0
    if member.isdir():
        _remove_existing(dir_fd, base, keep_dir=True)
        if not os.path.isdir(f"/proc/self/fd/{dir_fd}/{base}"):
            os.mkdir(base, 0o700, dir_fd=dir_fd)
        layer.dir_times.append((parts, int(member.mtime * 1e9)))
    elif member.isreg():
        _remove_existing(dir_fd, base, keep_dir=False)
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dir_fd)
        with os.fdopen(fd, "wb") as out:
            source = tar.extractfile(member)
            assert source is not None
            shutil.copyfileobj(source, out, COPY_CHUNK)
        size = member.size
    elif member.issym():
        _remove_existing(dir_fd, base, keep_dir=False)
        os.symlink(member.linkname, base, dir_fd=dir_fd)
    elif member.islnk():
        target = _clean_parts(member.linkname, member.name)
        if not target:
            raise LayerError(f"entry {member.name!r}: a hardlink to the layer root is not allowed")
        source_fd = layer.open_dir(target[:-1], member.name, create=False)
        try:
            _remove_existing(dir_fd, base, keep_dir=False)
            os.link(target[-1], base, src_dir_fd=source_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise LayerError(f"entry {member.name!r}: hardlink target {member.linkname!r} is not in the layer") \
                from None
        finally:
            os.close(source_fd)
        return 0  # a hardlink shares its target's metadata
    elif member.isfifo():
        _remove_existing(dir_fd, base, keep_dir=False)
        os.mkfifo(base, 0o600, dir_fd=dir_fd)
    elif member.ischr() or member.isblk():
        raise LayerError(f"entry {member.name!r}: device nodes are not allowed in image layers")
    else:
        raise LayerError(f"entry {member.name!r}: unsupported tar entry type {member.type!r}")
    _apply_metadata(member, dir_fd, base)
    return size


def _apply_metadata(member: tarfile.TarInfo, dir_fd: int, base: str) -> None:
    os.chown(base, member.uid, member.gid, dir_fd=dir_fd, follow_symlinks=False)
    if not member.issym():
        os.chmod(base, member.mode & 0o7777, dir_fd=dir_fd)
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            attribute = key[len("SCHILY.xattr."):]
            if attribute.startswith(ALLOWED_XATTR_PREFIXES):
                raw = value.encode("utf-8", "surrogateescape")
                os.setxattr(f"/proc/self/fd/{dir_fd}/{base}", attribute, raw, follow_symlinks=False)
    if not member.isdir():
        mtime = int(member.mtime * 1e9)
        os.utime(base, ns=(mtime, mtime), dir_fd=dir_fd, follow_symlinks=False)
