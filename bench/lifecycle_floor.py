#!/usr/bin/env python3
"""Where the lifecycle's time goes: Shoal through the Agent API, the same container lifecycle driven
through the runtime supervisor's own protocol (no gRPC, no agent), and four bare gRPC round trips
to the agent (the four RPCs a lifecycle makes, with handlers that do nothing), each through gRPC
and through the agent's lean local socket, each against `runc run` in the same interleaved run.

    sudo .venv/bin/python bench/lifecycle_floor.py [-n 150]

The supervisor-only figure is what the runtime underneath costs (create's directories and /etc
files, prepare, start, the exit event and release, all waited for); the round trips are what the
API costs before any handler runs. bench/lifecycle.py is the benchmark of record; this one says
which layer to work on.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import time
from typing import Any

from common import bench_agent, interleaved_with_runc, summary
from lifecycle import runc_bundle, time_runc, time_shoal
from shoal.agent.v1 import agent_pb2 as apb
from shoal.agent.v1 import containers_pb2 as cpb

from agent.containers.records import ETC_FILES
from agent.supervisor import protocol


class SupervisorConnection:
    """A client of the supervisor's protocol, subscribed to its events (agent/supervisor/protocol.py)."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buffer = bytearray()
        self.req = 0
        self.events: list[dict[str, Any]] = []
        self.call("subscribe")

    def _messages(self) -> list[dict[str, Any]]:
        while not (messages := protocol.decode_frames(self.buffer)):
            self.buffer.extend(self.sock.recv(65536))
        return messages

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        self.req += 1
        self.sock.sendall(protocol.encode({"op": op, "req": self.req, **fields}))
        while True:
            for message in self._messages():
                if message.get("req") != self.req:
                    self.events.append(message)
                elif not message["ok"]:
                    raise RuntimeError(f"{op}: {message['error']}")
                else:
                    return message

    def exit_of(self, container_id: str) -> dict[str, Any]:
        while True:
            for event in self.events:
                if event.get("event") == "exited" and event["id"] == container_id:
                    self.events.remove(event)
                    return event
            self.events.extend(self._messages())

    def close(self) -> None:
        self.sock.close()


def time_supervisor(supervisor: SupervisorConnection, state_dir: str, layer: str, index: int) -> float:
    """What the agent asks of the supervisor for one lifecycle, with the same limits and /etc binds."""
    container_id = f"{os.getpid():08x}{index + 1000:08d}".ljust(64, "f")
    directory = os.path.join(state_dir, "containers", container_id)
    began = time.perf_counter()
    for sub in ("upper", "work"):
        os.makedirs(os.path.join(directory, sub))
    for name in ETC_FILES:
        with open(os.path.join(directory, name), "w") as f:
            f.write("bench\n")
    launch = {"argv": ["/bin/true"], "env": ["PATH=/bin"], "cwd": "/", "user": "", "hostname": "bench",
              "rootfs": os.path.join(state_dir, "rootfs"), "layers_dir": os.path.join(state_dir, "images", "layers"),
              "lower": [layer], "upper": os.path.join(directory, "upper"), "work": os.path.join(directory, "work"),
              "binds": [[os.path.join(directory, name), f"/etc/{name}", False] for name in ETC_FILES],
              "host_network": False, "log_path": os.path.join(directory, "container.log"),
              "log_max_bytes": 1 << 20, "log_max_files": 1, "bridge": None, "link": None}
    supervisor.call("prepare", id=container_id, limits={"memory_bytes": 64 << 20, "pids_limit": 100}, launch=launch)
    supervisor.call("start", id=container_id, bridge=None)
    exited = supervisor.exit_of(container_id)
    supervisor.call("release", id=container_id)
    elapsed = (time.perf_counter() - began) * 1000
    shutil.rmtree(directory)
    if exited["exit_code"] != 0:
        raise RuntimeError(f"/bin/true exited {exited['exit_code']}: {exited['error']}")
    return elapsed


def time_round_trips(stub, container_id: str) -> float:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    for _ in range(4):
        stub.InspectContainer(apb.InspectContainerRequest(container=container_id))
    return (time.perf_counter() - began) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=150)
    args = parser.parse_args()
    with bench_agent("floor") as agent:
        stub = agent.stub()
        image = stub.InspectImage(apb.InspectImageRequest(image="busybox:bench")).image
        layer = image.diff_ids[0].removeprefix("sha256:")
        bundle = runc_bundle(os.path.join(agent.state_dir, "images", "layers", layer))
        supervisor = SupervisorConnection(os.path.join(agent.state_dir, "supervisor.sock"))
        idle = stub.CreateContainer(apb.CreateContainerRequest(spec=cpb.ContainerSpec(
            name="inspected", image="busybox:bench", command=["/bin/true"]))).container
        lean = agent.lean_stub()
        layers = {"shoal": lambda i: time_shoal(stub, i),
                  "lean": lambda i: time_shoal(lean, i),
                  "supervisor": lambda i: time_supervisor(supervisor, agent.state_dir, layer, i),
                  "grpc": lambda i: time_round_trips(stub, idle.id),
                  "lean_trips": lambda i: time_round_trips(lean, idle.id)}
        try:
            samples = interleaved_with_runc(lambda i: time_runc(bundle, i), layers, args.n, 10)
        finally:
            supervisor.close()
            shutil.rmtree(bundle)
    runc = statistics.median(samples["runc"])
    print("container lifecycle of /bin/true, and its layers, interleaved in one run")
    for name, label in (("runc", "runc run"), ("shoal", "shoal through the Agent API (gRPC)"),
                        ("lean", "the same through the lean local socket"),
                        ("supervisor", "the runtime supervisor's protocol alone"),
                        ("grpc", "four bare gRPC round trips"), ("lean_trips", "four bare lean round trips")):
        print(f"  {label:40s} {summary(samples[name])}   {statistics.median(samples[name]) / runc:.2f}x runc")

if __name__ == "__main__":
    main()
