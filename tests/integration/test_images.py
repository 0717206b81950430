"""Image import from OCI layouts and docker save archives; layers, whiteouts; hostile layer tars."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import time

import pytest
from make_busybox_image import Entry, busybox_entries, layer_tar, write_docker_archive, write_oci_layout

from agent.images.store import IN_FLIGHT_GRACE
from tests.integration.harness import AgentProcess, eventually


def test_docker_save_archive_with_config_honoured(agent: AgentProcess, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "app.tar")
    config = {"Entrypoint": ["sh", "-c"], "Cmd": ["echo $GREETING from $(pwd) as $(id -u)"],
              "Env": ["GREETING=hello", "PATH=/bin"], "WorkingDir": "/opt", "User": "nobody",
              "ExposedPorts": {"80/tcp": {}}, "Labels": {"team": "shoal"}}
    write_docker_archive(path, [layer_tar(busybox_entries())], config, name="app:1")
    result = agent.cli("image", "import", path)
    assert result.code == 0, result.err
    assert agent.cli("run", "--rm", "app:1").out == "hello from /opt as 65534\n"
    # A command replaces Cmd; the entrypoint stays.
    assert agent.cli("run", "--rm", "app:1", "echo replaced").out == "replaced\n"
    [image] = agent.cli_json("image", "inspect", "app:1")  # type: ignore[misc]
    assert image["config"]["exposed_ports"] == ["80/tcp"] and image["config"]["labels"] == {"team": "shoal"}
    assert agent.cli("image", "rm", "app:1").code == 0


def test_layers_shared_whiteouts_and_opaque_dirs(agent: AgentProcess, tmp_path: object) -> None:
    base = layer_tar([*busybox_entries(), Entry("data", kind=tarfile.DIRTYPE, mode=0o755),
                      Entry("data/keep", b"keep\n"), Entry("data/drop", b"drop\n"),
                      Entry("cfg", kind=tarfile.DIRTYPE, mode=0o755), Entry("cfg/old", b"old\n")])
    top = layer_tar([Entry("data/.wh.drop", b""), Entry("cfg/.wh..wh..opq", b""), Entry("cfg/new", b"new\n")])
    path = os.path.join(str(tmp_path), "layered.tar")
    write_oci_layout(path, [base, top], name="layered:1")
    assert agent.cli("image", "import", path).code == 0
    out = agent.cli("run", "--rm", "layered:1", "sh", "-c", "ls /data; ls /cfg").out
    assert out.split() == ["keep", "new"]
    # The base layer is unpacked once and shared with a second image that has it.
    other = os.path.join(str(tmp_path), "other.tar")
    write_oci_layout(other, [base], name="base:1", compress=False)
    assert agent.cli("image", "import", other).code == 0
    layers = [n for n in os.listdir(os.path.join(agent.state_dir, "images", "layers")) if not n.endswith(".json")]
    assert len(layers) == len(set(layers))
    assert agent.cli("run", "--rm", "base:1", "cat", "/data/drop").out == "drop\n"
    # An image may list one layer twice (an empty layer between two steps, say): it is stored once.
    # Here its second listing is a blob of its own (not compressed), which is kept for `image save`.
    twice = os.path.join(str(tmp_path), "twice.tar")
    write_oci_layout(twice, [base, top, base], name="twice:1", compress=(True, True, False))
    assert agent.cli("image", "import", twice).code == 0, "an image listing a layer twice"
    blobs = os.listdir(os.path.join(agent.state_dir, "images", "blobs", "sha256"))
    assert {hashlib.sha256(blob).hexdigest() for blob in (base, gzip.compress(base, mtime=0))} <= set(blobs)
    ran = agent.cli("run", "--rm", "twice:1", "cat", "/cfg/old")
    assert ran.out == "old\n", ran.err  # the base on top again
    for name in ("layered:1", "base:1", "twice:1"):
        assert agent.cli("image", "rm", name).code == 0


def test_image_rm_refused_while_in_use_and_tags(agent: AgentProcess, busybox_tar: str) -> None:
    assert agent.cli("image", "import", busybox_tar, "--tag", "extra:1").code == 0
    assert agent.cli("run", "-d", "--name", "user", "extra:1", "sleep", "60").code == 0
    untag = agent.cli("image", "rm", "extra:1")
    assert untag.code == 0 and "Untagged: extra:1" in untag.out  # busybox:test still names it
    refused = agent.cli("image", "rm", "busybox:test")
    assert refused.code == 1 and "in use by container(s) user" in refused.err
    agent.cli("rm", "-f", "user")
    table = agent.cli("images").out
    assert "busybox" in table and "test" in table


def test_digest_mismatch_stores_nothing(agent: AgentProcess, tmp_path: object) -> None:
    """Several layers are stored at once: the good ones are removed again when one is bad."""
    path = os.path.join(str(tmp_path), "bad.tar")
    write_oci_layout(path, [layer_tar([Entry(name, name.encode() * 100_000)]) for name in ("f", "g", "h")],
                     name="bad:1")
    corrupted = False
    with tarfile.open(path) as src, tarfile.open(path + ".tampered", "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith("blobs/") and data[:2] == b"\x1f\x8b" and not corrupted:
                data = data[:-8] + b"\x00" * 8  # one layer blob, corrupted
                corrupted = True
            member.size = len(data)
            import io

            dst.addfile(member, io.BytesIO(data))
    stored = [os.path.join(agent.state_dir, "images", part) for part in ("blobs/sha256", "layers")]
    before = [sorted(os.listdir(directory)) for directory in stored]
    result = agent.cli("image", "import", path + ".tampered")
    assert result.code == 1 and "does not match its digest" in result.err
    assert [sorted(os.listdir(directory)) for directory in stored] == before
    assert "bad" not in agent.cli("images").out


HOSTILE = {
    "dotdot": ([Entry("../escape", b"x")], "'..' would leave the layer"),
    "absolute": ([Entry("/etc/escape", b"x")], "absolute paths"),
    "symlink-write": ([Entry("link", kind=tarfile.SYMTYPE, link="/tmp"), Entry("link/escape", b"x")], "symlink"),
    "hardlink-out": ([Entry("hl", kind=tarfile.LNKTYPE, link="../../../../etc/passwd")], "'..'"),
    "device": ([Entry("sda", kind=tarfile.BLKTYPE, devmajor=8, devminor=0)], "device nodes"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_layers_are_refused_and_leave_nothing(agent: AgentProcess, tmp_path: object, case: str) -> None:
    entries, message = HOSTILE[case]
    path = os.path.join(str(tmp_path), f"{case}.tar")
    write_oci_layout(path, [layer_tar(entries)], name=f"hostile:{case}")
    layers_dir = os.path.join(agent.state_dir, "images", "layers")
    before = sorted(os.listdir(layers_dir))
    result = agent.cli("image", "import", path)
    assert result.code == 1
    assert message in result.err and "entry" in result.err
    assert sorted(os.listdir(layers_dir)) == before
    assert not os.path.exists("/tmp/escape") and not os.path.exists(os.path.join(str(tmp_path), "escape"))


def test_save_in_both_formats_round_trips_and_skopeo_reads_it(agent: AgentProcess, test_root: str) -> None:
    [original] = [i for i in agent.cli_json("images") if "busybox:test" in i["repo_tags"]]  # type: ignore[union-attr]
    assert agent.cli("image", "tag", "busybox:test", "saved/box:v2").code == 0
    for fmt, transport in (("docker", "docker-archive"), ("oci", "oci-archive")):
        archive = os.path.join(test_root, f"saved-{fmt}.tar")
        saved = agent.cli("image", "save", "--format", fmt, "--file", archive, "saved/box:v2")
        assert saved.code == 0 and os.path.getsize(archive) > 0, saved.err
        if shutil.which("skopeo"):  # a reader nobody here wrote
            reference = f"{archive}:saved/box:v2" if fmt == "docker" else f"{archive}:v2"  # OCI: by ref.name
            inspected = subprocess.run(["skopeo", "inspect", f"{transport}:{reference}"], capture_output=True,
                                       text=True, timeout=60)
            assert inspected.returncode == 0, inspected.stderr
            assert json.loads(inspected.stdout)["Layers"]
        assert agent.cli("image", "rm", "saved/box:v2").code == 0
        loaded = agent.cli("image", "import", archive)
        assert loaded.code == 0 and "saved/box:v2" in loaded.out, loaded.err
        [again] = [i for i in agent.cli_json("images") if "saved/box:v2" in i["repo_tags"]]  # type: ignore[union-attr]
        assert again["id"] == original["id"]  # the same config, byte for byte
        if fmt == "oci":
            assert again["manifest_digest"] == original["manifest_digest"]  # blobs carried as stored
        assert agent.cli("run", "--rm", "saved/box:v2", "echo", "round trip").out == "round trip\n"
    assert agent.cli("image", "rm", "saved/box:v2").code == 0
    missing = agent.cli("image", "save", "--file", os.path.join(test_root, "none.tar"), "no-such:image")
    assert missing.code == 1 and "not found" in missing.err
    assert not os.path.exists(os.path.join(test_root, "none.tar"))


def _extra_image(test_root: str, name: str) -> str:
    path = os.path.join(test_root, f"{name.replace(':', '-')}.tar")
    write_oci_layout(path, [layer_tar(busybox_entries()), layer_tar([Entry(f"{name}.txt", os.urandom(4096))])],
                     name=name)
    return path


def test_prune_keeps_what_is_used_or_pinned(fresh_agent: AgentProcess, test_root: str) -> None:
    agent = fresh_agent
    for name in ("spare:v1", "kept:v1", "used:v1"):
        assert agent.cli("image", "import", _extra_image(test_root, name)).code == 0
    assert agent.cli("image", "pin", "kept:v1").code == 0
    assert agent.cli("run", "-d", "--name", "user", "used:v1", "sleep", "60").code == 0
    layers = os.path.join(agent.state_dir, "images", "layers")
    shared_busybox = sorted(os.listdir(layers))
    time.sleep(IN_FLIGHT_GRACE + 0.5)  # images imported or used this recently are never collected

    dangling = agent.cli("image", "prune")  # without -a: only untagged images, and there are none
    assert dangling.code == 0 and "Deleted" not in dangling.out
    pruned = agent.cli("image", "prune", "-a")
    assert pruned.code == 0 and "spare:v1" in pruned.out and "Total reclaimed space" in pruned.out
    names = {n for i in agent.cli_json("images") for n in i["repo_tags"]}  # type: ignore[union-attr]
    assert {"kept:v1", "used:v1"} <= names and "spare:v1" not in names
    assert "busybox:test" not in names  # unused, unpinned: gone too; its layer stays, shared with the others
    assert set(os.listdir(layers)) < set(shared_busybox)
    [kept] = [i for i in agent.cli_json("images") if "kept:v1" in i["repo_tags"]]  # type: ignore[union-attr]
    assert kept["pinned"] is True
    assert agent.cli("image", "unpin", "kept:v1").code == 0
    assert agent.cli("rm", "-f", "user").code == 0


def test_automatic_collection_past_the_high_water_mark(test_root: str, busybox_tar: str) -> None:
    from tests.integration.conftest import make_agent

    agent = make_agent(test_root)
    agent.flags = ("--image-gc-high-percent", "0", "--image-gc-low-percent", "0", "--image-gc-interval", "0.5")
    agent.start()  # every filesystem is "over 0% full": each round removes whatever may go
    try:
        assert agent.cli("image", "import", _extra_image(test_root, "pinned:v1")).code == 0
        assert agent.cli("image", "pin", "pinned:v1").code == 0  # within the grace of its import
        assert agent.cli("image", "import", _extra_image(test_root, "doomed:v1")).code == 0
        names = lambda: [n for i in agent.cli_json("images") for n in i["repo_tags"]]  # type: ignore[union-attr]  # noqa: E731
        eventually(lambda: names() == ["pinned:v1"], timeout=30)
    finally:
        agent.destroy()
