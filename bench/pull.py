#!/usr/bin/env python3
"""Pull of a multi-layer image from a loopback registry (Debian's docker-registry): Shoal's agent
(download, verify, unpack every layer) against `skopeo copy` of the same image to an OCI layout
directory on the same filesystem (download and verify only), interleaved in one run.
Target (issue #4): Shoal <= 1.0x skopeo's time.

The pull is timed as a node makes it for a replica: the agent's PullImage, from a running client.
`clusterctl image pull` is timed too, and its ratio printed apart: it adds a Python process's
start-up (importing gRPC and the generated code), as the deploy benchmark prints apart.

    sudo .venv/bin/python bench/pull.py [--layers 5] [--layer-mb 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from common import bench_agent
from shoal.agent.v1 import agent_pb2 as apb

from agent.images.store import IN_FLIGHT_GRACE
from cli.busybox_image import Entry, layer_tar
from tests.integration.registry import start_registry, stop_registry, write_layout


def forget(agent: object, image: str) -> None:
    """Removes the image and, with prune, its layers: the next pull fetches everything again."""
    agent.cli("image", "rm", image)  # type: ignore[attr-defined]
    agent.cli("image", "prune")  # type: ignore[attr-defined]
    time.sleep(IN_FLIGHT_GRACE)  # prune keeps what was imported in the last seconds


def _rounded(samples: list[float]) -> list[float]:
    return [round(sample, 3) for sample in sorted(samples)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--layer-mb", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="shoal-bench-pull-")
    registry = start_registry(os.path.join(root, "registry"))
    try:
        layout = os.path.join(root, "layout")
        write_layout(layout, [layer_tar([Entry(f"data{i}", os.urandom(args.layer_mb << 20))])
                              for i in range(args.layers)])
        push = subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:latest",
                               f"docker://{registry.address}/bench/big:v1"], capture_output=True, text=True)
        if push.returncode:
            raise SystemExit(push.stderr)
        image = f"{registry.address}/bench/big:v1"
        shoal, rpc, skopeo = [], [], []
        with bench_agent("pull") as agent:
            stub = agent.stub()
            for _ in range(args.rounds):
                began = time.perf_counter()
                done = agent.cli("image", "pull", image, timeout=600)
                shoal.append(time.perf_counter() - began)
                if done.code:
                    raise SystemExit(done.err)
                forget(agent, image)
                began = time.perf_counter()
                for _update in stub.PullImage(apb.PullImageRequest(reference=image), timeout=600):
                    pass
                rpc.append(time.perf_counter() - began)
                forget(agent, image)
                target = os.path.join(os.path.dirname(agent.state_dir), "skopeo-copy")  # the agent's filesystem
                began = time.perf_counter()
                copied = subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{image}",
                                         f"oci:{target}:v1"], capture_output=True, text=True)
                skopeo.append(time.perf_counter() - began)
                if copied.returncode:
                    raise SystemExit(copied.stderr)
                shutil.rmtree(target)
        print(f"pull of {args.layers} layers ({args.layers * args.layer_mb} MiB) from a loopback registry, "
              f"{args.rounds} rounds interleaved (medians):")
        print(f"  shoal, the agent's pull (download, verify, unpack) {statistics.median(rpc):5.2f} s  "
              f"{_rounded(rpc)}")
        print(f"  skopeo copy (download, verify)                    {statistics.median(skopeo):5.2f} s  "
              f"{_rounded(skopeo)}")
        ratio = statistics.median(rpc) / statistics.median(skopeo)
        print(f"  ratio shoal / skopeo                              {ratio:5.2f}x  (target <= 1.0x)")
        print(f"  clusterctl image pull (a new Python process)      {statistics.median(shoal):5.2f} s  "
              f"{_rounded(shoal)}")
        print(f"  ratio with clusterctl's start-up                  "
              f"{statistics.median(shoal) / statistics.median(skopeo):5.2f}x")
    finally:
        stop_registry(registry)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
