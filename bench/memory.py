#!/usr/bin/env python3
"""Memory cost of Shoal: the agent's and the supervisor's memory with 0 and with N running containers,
and the number of processes Shoal adds per container (target: 0 — DESIGN.md §2).

    sudo .venv/bin/python bench/memory.py [-n 50]

RSS, PSS and USS come from /proc/PID/smaps_rollup. "Extra processes" counts every process that is
neither the agent, the supervisor, nor a container's own process (a process in a container's
cgroup): containerd would show one shim per container, podman one conmon. Shoal has a fixed set
per host (the zygote and the inits it keeps cloned ahead), so the figure per container is how
many more there are with N containers than with none.
"""

from __future__ import annotations

import argparse
import os
import time

from common import bench_agent
from shoal.agent.v1 import agent_pb2 as apb
from shoal.agent.v1 import containers_pb2 as cpb


def memory(pid: int) -> dict[str, int]:
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1])
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0), "uss": uss}


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(parent, []).append(int(entry))
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def in_container_cgroup(pid: int, parent: str) -> bool:
    """In a container's cgroup (named by its id) under the parent; a pooled init waits in a spare one."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            entries = [line.split(":", 2) for line in f.read().splitlines()]
    except OSError:
        return False
    paths = [path for _, controllers, path in entries if "memory" in controllers.split(",")] or \
        [path for _, controllers, path in entries if not controllers]  # cgroup v2: the one hierarchy
    return any(path.startswith(f"/{parent}/") and not path.startswith(f"/{parent}/spare-") for path in paths)


def report(label: str, agent_pid: int, supervisor_pid: int) -> None:
    for name, pid in (("agent", agent_pid), ("supervisor", supervisor_pid)):
        m = memory(pid)
        print(f"  {label:16s} {name:10s} RSS {m['rss'] / 1024:7.1f} MiB   PSS {m['pss'] / 1024:7.1f} MiB   "
              f"USS {m['uss'] / 1024:7.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=50)
    args = parser.parse_args()
    with bench_agent("memory") as agent:
        assert agent.process is not None
        stub = agent.stub()
        supervisor = agent.supervisor_pid()
        print(f"memory of Shoal's own processes, 0 and {args.n} running containers (sleep 3600)")
        report("0 containers", agent.process.pid, supervisor)
        idle = extra_processes(supervisor, agent.cgroup_parent)
        pool = sum(memory(pid)["uss"] for pid in idle)
        print(f"  {'0 containers':16s} zygote and pooled inits: {len(idle)} processes, USS {pool / 1024:.1f} MiB "
              "together (per host)")
        for index in range(args.n):
            spec = cpb.ContainerSpec(name=f"m{index}", image="busybox:bench", command=["sleep", "3600"],
                                     resources=cpb.Resources(memory_bytes=32 << 20))
            container = stub.CreateContainer(apb.CreateContainerRequest(spec=spec)).container
            stub.StartContainer(apb.StartContainerRequest(container=container.id))
        time.sleep(0.5)  # the zygote refills its pool once the supervisor is idle
        report(f"{args.n} containers", agent.process.pid, supervisor)
        shoal_tree = descendants(supervisor)
        extra = extra_processes(supervisor, agent.cgroup_parent)
        pool = sum(memory(pid)["uss"] for pid in extra)
        print(f"  {f'{args.n} containers':16s} zygote and pooled inits, waiting in the image's root now: "
              f"{len(extra)} processes, USS {pool / 1024:.1f} MiB together")
        print(f"  processes under the supervisor: {len(shoal_tree)}, of them in containers: "
              f"{len(shoal_tree) - len(extra)}, extra per container: {(len(extra) - len(idle)) / args.n:.2f} "
              "(target 0)")


def extra_processes(supervisor: int, cgroup_parent: str) -> set[int]:
    """The supervisor's descendants that are not in a container's cgroup."""
    return {p for p in descendants(supervisor) if not in_container_cgroup(p, cgroup_parent)}


if __name__ == "__main__":
    main()
