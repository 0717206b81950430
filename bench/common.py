"""Shared benchmark plumbing: a throw-away agent with the busybox image, and summary statistics."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "protos"), os.path.join(ROOT, "examples")]

from make_busybox_image import busybox_entries, layer_tar, write_oci_layout  # noqa: E402

from tests.integration.harness import AgentProcess  # noqa: E402


@contextmanager
def bench_agent(label: str) -> Iterator[AgentProcess]:
    """A real agent in a temp dir with busybox:bench imported; everything removed afterwards."""
    root = tempfile.mkdtemp(prefix=f"shoal-bench-{label}-")
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
        os.system(f"rm -rf {root}")


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p10 = ordered[len(ordered) // 10]
    p90 = ordered[(len(ordered) * 9) // 10]
    return f"median {statistics.median(ordered):7.2f} ms  (p10 {p10:6.2f}, p90 {p90:6.2f}, n={len(ordered)})"
