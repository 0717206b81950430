"""agent/supervisor/warm.py: which container a pooled init waiting in an image's root may serve."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from agent.supervisor import launch, warm


def spec_in(tmp_path: Path, container: str, lower: list[str], binds: list[tuple[str, str, bool]] | None = None,
            ) -> launch.LaunchSpec:
    directory = tmp_path / "containers" / container
    for sub in ("upper", "work"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    etc = [(str(directory / name), f"/etc/{name}", False) for name in ("hostname", "hosts", "resolv.conf")]
    for name in ("hostname", "hosts", "resolv.conf"):
        (directory / name).write_text(f"{container}'s {name}\n")
    return launch.LaunchSpec(argv=["/bin/true"], env=[], cwd="/", user="", hostname="h",
                             rootfs=str(tmp_path / "rootfs"), layers_dir=str(tmp_path / "layers"), lower=lower,
                             upper=str(directory / "upper"), work=str(directory / "work"), binds=etc + (binds or []))


def layers(tmp_path: Path, *names: str) -> list[str]:
    for name in names:
        (tmp_path / "layers" / name).mkdir(parents=True, exist_ok=True)
    return list(names)


def test_a_root_serves_creates_of_its_image_whose_binds_are_their_etc_files(tmp_path: Path) -> None:
    lower = layers(tmp_path, "b", "a")
    root = warm.root_for(spec_in(tmp_path, "first", lower), str(tmp_path / "warm" / "101"))
    assert root is not None and (tmp_path / "warm" / "101" / "upper").is_dir()
    assert warm.serves(root, spec_in(tmp_path, "second", lower))
    assert not warm.serves(root, spec_in(tmp_path, "volume", lower, [(str(tmp_path / "data"), "/data", True)]))
    assert warm.same_image(root, spec_in(tmp_path, "volume", lower, [(str(tmp_path / "data"), "/data", True)]))
    assert not warm.same_image(root, spec_in(tmp_path, "other", layers(tmp_path, "c", "a")))
    assert not warm.same_image(root, spec_in(tmp_path, "reordered", ["a", "b"]))


def test_layers_unpacked_again_or_gone_are_not_the_same_image(tmp_path: Path) -> None:
    lower = layers(tmp_path, "a")
    root = warm.root_for(spec_in(tmp_path, "first", lower), str(tmp_path / "warm" / "7"))
    assert root is not None
    keep = tmp_path / "keep"
    keep.mkdir()  # holds the old inode, so the new directory cannot get it back
    os.rename(tmp_path / "layers" / "a", keep / "a")
    layers(tmp_path, "a")
    assert not warm.same_image(root, spec_in(tmp_path, "again", lower))
    shutil.rmtree(tmp_path / "layers" / "a")
    assert not warm.same_image(root, spec_in(tmp_path, "gone", lower))
    assert warm.root_for(spec_in(tmp_path, "gone", lower), str(tmp_path / "warm" / "8")) is None


def test_hand_over_makes_the_spare_layer_the_containers_and_sweep_clears_leftovers(tmp_path: Path) -> None:
    lower = layers(tmp_path, "a")
    root = warm.root_for(spec_in(tmp_path, "first", lower), str(tmp_path / "warm" / "5"))
    assert root is not None
    assert [name for name, _, _ in root.files] == ["hostname", "hosts", "resolv.conf"]
    (Path(root.spare) / "upper" / "written").write_text("by the init's overlay")
    bound = (Path(root.spare) / "hostname").stat().st_ino  # as the init has it bound
    spec = spec_in(tmp_path, "served", lower)
    warm.hand_over(root, spec)
    assert (Path(spec.upper) / "written").read_text() == "by the init's overlay"
    hostname = Path(spec.upper).parent / "hostname"
    assert hostname.read_text() == "served's hostname\n" and hostname.stat().st_ino == bound
    assert not Path(root.spare).exists()
    left = warm.root_for(spec, str(tmp_path / "warm" / "6"))
    assert left is not None
    warm.sweep(str(tmp_path / "warm"))
    assert os.listdir(tmp_path / "warm") == []
    warm.sweep(str(tmp_path / "nothing"))  # no directory: nothing to do
