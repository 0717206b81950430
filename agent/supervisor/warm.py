"""Pooled inits that wait inside the root filesystem of the image the last container used.

Of a pooled init's set-up after it gets its container (2.0 ms here), 1.4 ms depends only on the
image: the mount namespace, the overlay, pivot_root, moving /proc, /dev and /sys into place and
the masked paths (README, "Performance"). Replicas of one app, and the benchmark, create from the
same image over and over, so an init waiting in the pool does that part for the image of the last
create, on a spare writable layer (`<state>/warm/<pid>/upper|work`), with spare files bound as its
/etc files. A create of that image fills the spare files with the container's /etc files and
renames them, and the spare layer, onto the container's own (`hand_over`): the init only sets its
hostname, finds its command and waits for the start. It detaches the old root while it waits, so
it holds no copy of the host's mounts, like an init that waits without an image.

A warm init serves only a create (a restart keeps its writable layer) of the same layers, unpacked
the same way (device and inode of each layer directory: an image removed and imported again gets
new ones), whose binds are its own /etc files: a volume's source may sit on a mount the host made
after the init copied its mounts. Anything else gets a plain pooled init or a clone, and warm inits
for an image no longer asked for are discarded, so the pool refills for the new one.
"""

from __future__ import annotations

import contextlib
import os
import shutil

from agent.supervisor import launch


def root_for(spec: launch.LaunchSpec, spare: str) -> launch.WarmRoot | None:
    """The image root of `spec` on the spare layer `spare`, with spare files for its own /etc files,
    made here; None when a layer is gone."""
    try:
        identity = [_identity(os.path.join(spec.layers_dir, layer)) for layer in spec.lower]
    except FileNotFoundError:
        return None
    for sub in ("upper", "work"):
        os.makedirs(os.path.join(spare, sub))
    files = _own_files(spec)
    for name, _destination, _read_only in files:
        with open(os.path.join(spare, name), "x"):
            pass
    return launch.WarmRoot(layers_dir=spec.layers_dir, lower=list(spec.lower), rootfs=spec.rootfs, spare=spare,
                           files=files, identity=identity)


def same_image(root: launch.WarmRoot, spec: launch.LaunchSpec) -> bool:
    """Whether `root` is the root of spec's image, its layers unpacked the same way still."""
    if (root.layers_dir, root.lower, root.rootfs) != (spec.layers_dir, spec.lower, spec.rootfs):
        return False
    try:
        return all(_identity(os.path.join(root.layers_dir, layer)) == tuple(known)
                   for layer, known in zip(root.lower, root.identity, strict=True))
    except FileNotFoundError:
        return False


def serves(root: launch.WarmRoot, spec: launch.LaunchSpec) -> bool:
    """Whether an init waiting in `root` can be this container's: the same image, and no binds
    but its own files, the ones the root has bound (see the module's docstring)."""
    files = _own_files(spec)
    return len(files) == len(spec.binds) and files == root.files and same_image(root, spec)


def hand_over(root: launch.WarmRoot, spec: launch.LaunchSpec) -> None:
    """The spare files and layer become the container's. Each file the agent wrote is copied into
    the spare one the init has bound, which then takes its name (the agent rewrites it in place at a
    bridged container's start). The agent made upper and work empty: rename(2) replaces an empty
    directory, and the init's overlay keeps working on the moved one."""
    own = os.path.dirname(spec.upper)
    for name, _destination, _read_only in root.files:
        with open(os.path.join(own, name), "rb") as written, open(os.path.join(root.spare, name), "r+b") as bound:
            bound.write(written.read())
            bound.truncate()
        os.replace(os.path.join(root.spare, name), os.path.join(own, name))
    os.rename(os.path.join(root.spare, "upper"), spec.upper)
    os.rename(os.path.join(root.spare, "work"), spec.work)
    os.rmdir(root.spare)


def remove_spare(root: launch.WarmRoot) -> None:
    shutil.rmtree(root.spare, ignore_errors=True)


def sweep(directory: str) -> None:
    """Spare layers a previous supervisor left (its pooled inits died with it)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(directory):
            shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)


def _own_files(spec: launch.LaunchSpec) -> list[tuple[str, str, bool]]:
    """The binds whose sources are files in the container's own directory (its /etc files), as
    (name, destination, read-only)."""
    own = os.path.dirname(spec.upper)
    return [(os.path.basename(source), destination, read_only) for source, destination, read_only in spec.binds
            if os.path.dirname(source) == own]


def _identity(path: str) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_dev, status.st_ino
