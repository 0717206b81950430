#!/usr/bin/env python3
"""Container lifecycle latency: Shoal through the Agent API against `runc run`, interleaved in one run.

Each Shoal sample is create → start → exit status → remove of `/bin/true` from the busybox image,
with an overlay rootfs, memory/pids cgroup limits and its own mount, PID, UTS, IPC, network and
cgroup namespaces. Each runc sample is `runc run` of `/bin/true` on the same unpacked layer with
runc's default spec (its own namespaces, network namespace with lo). Target: Shoal <= 0.3x runc's median.
The lifecycle is measured through gRPC and through the agent's lean local socket (agent/api/lean.py),
which clusterctl uses on the agent's node: the same methods and messages, without HTTP/2.
The networked variant (issue #5) does the same in bridge mode: a veth pair on the agent's bridge,
an address from its subnet, a default route and /etc files. Target: <= 0.5x runc's median.

    sudo .venv/bin/python bench/lifecycle.py [-n 200]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from common import bench_agent, interleaved_with_runc, summary
from shoal.agent.v1 import agent_pb2 as apb
from shoal.agent.v1 import containers_pb2 as cpb


def runc_bundle(rootfs: str) -> str:
    bundle = tempfile.mkdtemp(prefix="shoal-bench-runc-")
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    config["root"] = {"path": rootfs, "readonly": True}
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return bundle


def time_runc(bundle: str, index: int) -> float:
    began = time.perf_counter()
    subprocess.run(["runc", "run", "--bundle", bundle, f"shoal-bench-{os.getpid()}-{index}"], check=True,
                   stdin=subprocess.DEVNULL)
    return (time.perf_counter() - began) * 1000


def time_shoal(stub, index: int, network: int = cpb.NETWORK_MODE_NONE) -> float:  # type: ignore[no-untyped-def]
    spec = cpb.ContainerSpec(name=f"bench-{index}", image="busybox:bench", command=["/bin/true"],
                             resources=cpb.Resources(memory_bytes=64 << 20, pids_limit=100), network_mode=network)
    began = time.perf_counter()
    container = stub.CreateContainer(apb.CreateContainerRequest(spec=spec)).container
    stub.StartContainer(apb.StartContainerRequest(container=container.id))
    done = stub.WaitContainer(apb.WaitContainerRequest(container=container.id)).container
    stub.RemoveContainer(apb.RemoveContainerRequest(container=container.id))
    elapsed = (time.perf_counter() - began) * 1000
    if done.exit_code != 0:
        raise RuntimeError(f"/bin/true exited {done.exit_code}: {done.error}")
    return elapsed


def time_shoal_run(stub, index: int) -> float:  # type: ignore[no-untyped-def]
    """The same lifecycle as `clusterctl run --rm` drives it: one RunContainer stream, read until its
    `exited` message, which the agent sends after the container's exit and its removal (as `runc
    run` also deletes what it ran). Like clusterctl, it does not wait for the stream's trailers."""
    spec = cpb.ContainerSpec(name=f"bench-run-{index}", image="busybox:bench", command=["/bin/true"],
                             resources=cpb.Resources(memory_bytes=64 << 20, pids_limit=100), auto_remove=True)
    began = time.perf_counter()
    for last in stub.RunContainer(apb.RunContainerRequest(spec=spec)):
        if last.WhichOneof("event") == "exited":
            break
    elapsed = (time.perf_counter() - began) * 1000
    if last.WhichOneof("event") != "exited" or last.exited.exit_code != 0:
        raise RuntimeError(f"/bin/true did not exit 0: {last}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("runc"):
        raise SystemExit("runc is needed for the comparison: apt-get install runc")
    with bench_agent("lifecycle") as agent:
        stub = agent.stub()
        lean = agent.lean_stub()
        diff_id = stub.InspectImage(apb.InspectImageRequest(image="busybox:bench")).image.diff_ids[0]
        rootfs = os.path.join(agent.state_dir, "images", "layers", diff_id.removeprefix("sha256:"))
        bundle = runc_bundle(rootfs)
        shoal = {"grpc": lambda i: time_shoal(stub, i),
                 "lean": lambda i: time_shoal(lean, i),
                 "grpc_run": lambda i: time_shoal_run(stub, i),
                 "lean_run": lambda i: time_shoal_run(lean, i),
                 "bridged": lambda i: time_shoal(stub, i, cpb.NETWORK_MODE_BRIDGE)}
        try:
            samples = interleaved_with_runc(lambda i: time_runc(bundle, i), shoal, args.n, args.warmup)
        finally:
            shutil.rmtree(bundle)
    runc_median = statistics.median(samples["runc"])
    print("container lifecycle of /bin/true, interleaved in one run")
    for kind, label in KINDS.items():
        print(f"  {label:46s} {summary(samples[kind])}")
    for kind, label in KINDS.items():
        if kind != "runc":
            ratio = statistics.median(samples[kind]) / runc_median
            print(f"  ratio / runc: {label:32s} {ratio:.2f}x{TARGETS.get(kind, '')}")


KINDS = {
    "runc": "runc run",
    "grpc": "create, start, wait, remove (gRPC)",
    "lean": "the same four calls (lean socket)",
    "grpc_run": "one RunContainer call (gRPC)",
    "lean_run": "one RunContainer call (lean socket)",
    "bridged": "four calls in bridge mode (veth, IP; gRPC)",
}
TARGETS = {"grpc": "   (target <= 0.30x)", "lean": "   (target <= 0.30x)", "bridged": "   (target <= 0.50x)"}


if __name__ == "__main__":
    main()
