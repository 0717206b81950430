"""Making layer tars for a build, and reading an image's merged filesystem without mounting it.

A RUN step's changes are its container's overlayfs upper directory; they become an OCI layer
with overlayfs' markers translated back (a 0/0 character device is a deletion, `.wh.NAME`; a
directory with `trusted.overlay.opaque=y` replaces the one below, `.wh..wh..opq`). The files the
runtime only creates as mount points (/proc, /dev, /sys and the bind-mounted /etc files) are left
out, as Docker leaves them out. COPY and ADD write their files into a layer directly.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from collections.abc import Iterator

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MOUNT_POINTS = {"proc", "dev", "sys"}
BIND_MOUNTED = {"etc/hosts", "etc/hostname", "etc/resolv.conf"}


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Reproducible entries: the same files give the same layer digest (the build cache relies on it)."""
    info.mtime = 0
    info.uname = info.gname = ""
    return info


def layer_from_upper(upper: str, out: str) -> bool:
    """Writes the upper directory's changes as a layer tar; False when there were none."""
    entries = 0
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for relative in _walk(upper):
            path = os.path.join(upper, relative)
            st = os.lstat(path)
            if _runtime_artifact(relative, path, st):
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                parent, name = os.path.split(relative)
                tar.addfile(_normalized(tarfile.TarInfo(os.path.join(parent, WHITEOUT + name))))
                entries += 1
                continue
            info = _normalized(tar.gettarinfo(path, relative))
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            elif info.isdir() or info.issym():
                tar.addfile(info)
            else:
                continue  # sockets, fifos, devices: not image content
            entries += 1
            if info.isdir() and _opaque(path):
                tar.addfile(_normalized(tarfile.TarInfo(os.path.join(relative, OPAQUE))))
    return entries > 0


def _walk(root: str) -> Iterator[str]:
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            yield os.path.relpath(os.path.join(directory, name), root)


def _runtime_artifact(relative: str, path: str, st: os.stat_result) -> bool:
    if relative in BIND_MOUNTED and stat.S_ISREG(st.st_mode) and st.st_size == 0:
        return True
    return relative in MOUNT_POINTS and stat.S_ISDIR(st.st_mode) and not os.listdir(path)


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def merge_layers(layer_dirs: list[str], into: str) -> None:
    """Applies unpacked layers (bottom first, overlayfs format) onto `into`: the merged view."""
    for layer in layer_dirs:
        for relative in _walk(layer):
            source = os.path.join(layer, relative)
            target = os.path.join(into, relative)
            st = os.lstat(source)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                _remove(target)
                continue
            if stat.S_ISDIR(st.st_mode):
                if _opaque(source) or (os.path.lexists(target) and not os.path.isdir(target)):
                    _remove(target)
                os.makedirs(target, exist_ok=True)
                os.chmod(target, stat.S_IMODE(st.st_mode))
                os.lchown(target, st.st_uid, st.st_gid)
                continue
            _remove(target)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(source), target)
            elif stat.S_ISREG(st.st_mode):
                shutil.copy2(source, target, follow_symlinks=False)
            else:
                continue
            os.lchown(target, st.st_uid, st.st_gid)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def layer_from_files(copies: list[tuple[str, str]], out: str, owner: tuple[int, int]) -> None:
    """COPY/ADD: each (source on disk, destination path in the image), directories recursively;
    parent directories are added as 0755 root-owned entries."""
    written: set[str] = set()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:

        def add(path: str, name: str) -> None:
            name = os.path.normpath(name).strip("/")
            parent = os.path.dirname(name)
            parents = []
            while parent and parent not in written:
                parents.append(parent)
                parent = os.path.dirname(parent)
            for directory in reversed(parents):
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(_normalized(info))
                written.add(directory)
            info = _normalized(tar.gettarinfo(path, name))
            info.uid, info.gid = owner
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            elif info.isdir() or info.issym():
                tar.addfile(info)
            written.add(name)

        for source, destination in copies:
            if os.path.isdir(source) and not os.path.islink(source):
                add(source, destination)
                for relative in _walk(source):
                    add(os.path.join(source, relative), os.path.join(destination, relative))
            else:
                add(source, destination)
