"""The cluster level's harness: three network-namespace hosts (`clusterctl up --hosts 3`), a real
control plane with its embedded etcd, real agents and containers. Each test module gets its own
cluster, and its teardown asserts that nothing is left behind. Needs root."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

from tests.integration.harness import ENV

BIN = os.path.dirname(sys.executable)


class Cluster:
    def __init__(self, root: str) -> None:
        self.state = os.path.join(root, "up")
        self.env = {**ENV, "SHOAL_CONFIG": os.path.join(root, "config.yaml"), "PATH": f"{BIN}:{ENV['PATH']}"}
        self.env.pop("SHOAL_SERVER", None)

    def ctl(self, *args: str, timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout, input=stdin)

    def json(self, *args: str) -> list[dict]:  # type: ignore[type-arg]
        done = self.ctl(*args, "-o", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    def record(self) -> dict:  # type: ignore[type-arg]
        with open(os.path.join(self.state, "cluster.json")) as f:
            return json.load(f)  # type: ignore[no-any-return]

    def deploy(self, text: str, *flags: str) -> subprocess.CompletedProcess[str]:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
        try:
            return self.ctl("deploy", "-f", f.name, *flags)
        finally:
            os.unlink(f.name)

    def placement(self, app: str) -> dict[str, str]:
        return {f"{r['app']}.{r['index']}": r["node"] for r in self.json("get", "containers", app)
                if r["state"] == "running"}


def leftovers(tag: str) -> list[str]:
    found = [f"netns {n}" for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
             .stdout.split() if tag in n]
    found += [f"link {line.split(':')[1].strip()}" for line in subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True).stdout.splitlines() if tag in line]
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        found += [f"cgroup {os.path.join(dirpath, d)}" for d in dirnames if d.startswith("shoal-up-")]
        if dirpath.count("/") >= 4:
            dirnames.clear()
    return found


@contextlib.contextmanager
def running_cluster(*flags: str) -> Iterator[Cluster]:
    """`clusterctl up --hosts 3` (plus flags); on exit `down`, and nothing of it may be left."""
    root = tempfile.mkdtemp(prefix="shoal-cluster-")
    made = Cluster(root)
    up = made.ctl("up", "--hosts", "3", "--state-dir", made.state, *flags)
    try:
        assert up.returncode == 0, up.stderr
        yield made
    finally:
        tag = made.record()["network"]["bridge"].removeprefix("shbr") if os.path.exists(made.state) else "none"
        down = made.ctl("down", "--state-dir", made.state)
        os.rmdir(root) if os.path.isdir(root) and not os.listdir(root) else None
        assert down.returncode == 0, down.stderr
        assert not leftovers(tag), leftovers(tag)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as made:
        yield made
