"""Shared benchmark plumbing: a throw-away agent with the busybox image, and summary statistics."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "protos"), os.path.join(ROOT, "examples")]

from make_busybox_image import busybox_entries, layer_tar, write_oci_layout  # noqa: E402

from agent import statefs  # noqa: E402
from tests.integration.harness import AgentProcess  # noqa: E402


@contextmanager
def state_root(label: str) -> Iterator[str]:
    """A fresh directory for a benchmark's agents, on a journaled filesystem as on a production host.

    When the temp dir is on ext4 without a journal (this project's VM), a journaled ext4 image is
    loop-mounted there for the run: agent/statefs.py says what the other costs, and measures it.
    """
    root = tempfile.mkdtemp(prefix=f"shoal-bench-{label}-")
    device = statefs.journal_less_ext4(root)
    try:
        if not device:
            yield root
            return
        image = root + ".ext4"
        subprocess.run(["truncate", "-s", "16G", image], check=True)
        try:
            # Initialised at once: otherwise ext4lazyinit zeroes the inode tables in the background during
            # the run, and writes there were 4-8x slower than on the host's disk (measured).
            subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", image], check=True)
            subprocess.run(["mount", "-o", "loop", image, root], check=True)
            print(f"(state on a journaled ext4 loop image: {device}, under {tempfile.gettempdir()}, has no journal)")
            try:
                yield root
            finally:
                subprocess.run(["umount", root], check=True)
        finally:
            os.unlink(image)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def bench_agent(label: str) -> Iterator[AgentProcess]:
    """A real agent in a temp dir with busybox:bench imported; everything removed afterwards."""
    with state_root(label) as root:
        agent = AgentProcess(state_dir=os.path.join(root, "agent"), cgroup_parent=f"shoal-bench-{os.getpid()}")
        agent.start()
        try:
            archive = os.path.join(root, "busybox.tar")
            write_oci_layout(archive, [layer_tar(busybox_entries())], name="busybox:bench")
            result = agent.cli("image", "import", archive)
            if result.code:
                raise RuntimeError(result.err)
            yield agent
        finally:
            agent.destroy()


def interleaved_with_runc(runc: Callable[[int], float], kinds: dict[str, Callable[[int], float]], rounds: int,
                          warmup: int) -> dict[str, list[float]]:
    """Milliseconds per sample of each kind, and of runc under "runc". Every sample of a kind
    follows a runc sample and every runc sample one of a kind, as when one kind alone is
    interleaved with runc; the kinds' order rotates from round to round. Each call gets a number
    of its own (negative during the warm-up, whose samples are dropped)."""
    samples: dict[str, list[float]] = {"runc": [], **{kind: [] for kind in kinds}}
    names = list(kinds)
    for index in range(-warmup, rounds):
        shift = index % len(names)
        for position, kind in enumerate(names[shift:] + names[:shift]):
            number = index * len(names) + position
            runc_elapsed, elapsed = runc(number), kinds[kind](number)
            if index >= 0:
                samples["runc"].append(runc_elapsed)
                samples[kind].append(elapsed)
    return samples


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p10 = ordered[len(ordered) // 10]
    p90 = ordered[(len(ordered) * 9) // 10]
    return f"median {statistics.median(ordered):7.2f} ms  (p10 {p10:6.2f}, p90 {p90:6.2f}, n={len(ordered)})"


class LocalCluster:
    """`clusterctl up --hosts N` in a temp dir, driven through clusterctl and the gRPC APIs."""

    def __init__(self, hosts: int, *up_flags: str) -> None:
        self.up_flags = up_flags
        self.cleanup = ExitStack()
        self.root = self.cleanup.enter_context(state_root("cluster"))
        self.state = os.path.join(self.root, "up")
        self.env = {**os.environ, "SHOAL_CONFIG": os.path.join(self.root, "config.yaml"),
                    "PYTHONPATH": f"{ROOT}:{os.path.join(ROOT, 'protos')}",
                    "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
        self.hosts = hosts

    def ctl(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                              env=self.env, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"clusterctl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def deploy(self, app_yaml: str, *flags: str) -> str:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as spec:
            spec.write(app_yaml)
            spec.flush()
            return self.ctl("deploy", "-f", spec.name, *flags)

    @property
    def apps(self) -> Any:
        import grpc
        from shoal.controlplane.v1 import app_service_pb2_grpc

        return app_service_pb2_grpc.AppsStub(grpc.insecure_channel(self.record["server"]))

    def __enter__(self) -> LocalCluster:
        try:
            self.ctl("up", "--hosts", str(self.hosts), "--state-dir", self.state, *self.up_flags)
        except BaseException:
            self.cleanup.close()
            raise
        import json

        with open(os.path.join(self.state, "cluster.json")) as f:
            self.record = json.load(f)
        return self

    def __exit__(self, *exc: object) -> None:
        with self.cleanup:
            self.ctl("down", "--state-dir", self.state)
