"""Cluster commands, against the control plane: deploy, get, nodes, cordon, uncordon, drain, scale, delete.

Exit codes: 0 success, 1 failed (a replica cannot start, or the server refused), 2 bad input
(the app file, a flag), 3 timed out waiting for replicas to run.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import grpc
from shoal.controlplane.v1 import app_service_pb2 as apb
from shoal.controlplane.v1 import (
    app_service_pb2_grpc,
    image_service_pb2_grpc,
    node_service_pb2_grpc,
    replica_service_pb2_grpc,
)
from shoal.controlplane.v1 import node_service_pb2 as npb

from cli import output
from cli.appfile import load_apps
from cli.client import CliError
from cli.config import DEFAULT_STATE
from cli.quantity import format_bytes

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_TIMEOUT = 1, 2, 3
CHANGE_WORDS = {apb.AppChange.KIND_CREATE: ("+", "create"), apb.AppChange.KIND_UPDATE: ("~", "update"),
                apb.AppChange.KIND_SCALE: ("^", "scale"), apb.AppChange.KIND_NO_OP: ("=", "no change")}
POLL = 0.5


@dataclass
class Cluster:
    apps: app_service_pb2_grpc.AppsStub
    nodes: node_service_pb2_grpc.NodesStub
    replicas: replica_service_pb2_grpc.ReplicasStub
    images: image_service_pb2_grpc.ImagesStub


def connect(address: str) -> Cluster:
    channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)])
    return Cluster(app_service_pb2_grpc.AppsStub(channel), node_service_pb2_grpc.NodesStub(channel),
                   replica_service_pb2_grpc.ReplicasStub(channel), image_service_pb2_grpc.ImagesStub(channel))


REPLICA_HEADERS = ["REPLICA", "NODE", "ADDRESS", "STATE", "RESTARTS", "AGE", "MESSAGE"]


def replica_rows(replicas: list[apb.ReplicaInfo]) -> list[list[str]]:
    return [[f"{r.app}.{r.index}", r.node or "-", r.address or "-", r.state, str(r.restarts),
             output.since(r.placed_at / 1e9) if r.placed_at else "-", r.error or "-"] for r in replicas]


def cmd_deploy(cluster: Cluster, args: argparse.Namespace) -> int:
    specs = load_apps(args.file)
    try:
        preview = cluster.apps.ApplyApps(apb.ApplyAppsRequest(apps=specs, dry_run=True)).changes
    except grpc.RpcError as e:
        if e.code() is grpc.StatusCode.INVALID_ARGUMENT:
            raise CliError(f"{args.file}: {e.details()}", EXIT_BAD_INPUT) from None
        raise
    for change in preview:
        mark, word = CHANGE_WORDS.get(change.kind, ("?", "unknown"))
        print(f"{mark} {change.name} ({word})")
    if args.dry_run:
        return 0
    cluster.apps.ApplyApps(apb.ApplyAppsRequest(apps=specs))
    changed = {c.name for c in preview if c.kind != apb.AppChange.KIND_NO_OP}
    if args.detach or not changed:
        return 0
    return wait_until_running(cluster, changed, args.timeout)


def wait_until_running(cluster: Cluster, names: set[str], timeout: float) -> int:
    """Live progress until every replica of the changed apps runs; a replica that cannot start fails it."""
    deadline = time.monotonic() + timeout
    shown: dict[str, str] = {}
    while True:
        statuses = {a.spec.name: a for a in cluster.apps.ListApps(apb.ListAppsRequest()).apps if a.spec.name in names}
        for name in sorted(names):
            status = statuses.get(name)
            line = f"{name}: {status.running}/{status.spec.replicas} running" if status else f"{name}: deleted"
            if status and status.pending_reason:
                line += f" (pending: {status.pending_reason})"
            if shown.get(name) != line:
                print(line, flush=True)
                shown[name] = line
        for name in names:
            replicas = cluster.apps.ListReplicas(apb.ListReplicasRequest(app=name)).replicas
            for replica in replicas:  # images being pulled: the agents' progress
                if replica.state == "pending" and replica.error.startswith("pulling "):
                    line = f"  {replica.app}.{replica.index} on {replica.node}: {_bar(replica.error)}"
                    if shown.get(f"{replica.app}.{replica.index}") != line:
                        print(line, flush=True)
                        shown[f"{replica.app}.{replica.index}"] = line
            failed = [r for r in replicas if r.state == "failed"]
            if failed:
                raise CliError(f"{name}.{failed[0].index} cannot start: {failed[0].error}", EXIT_FAILED)
        if all(s.running >= s.spec.replicas for s in statuses.values()):
            return 0
        if time.monotonic() > deadline:
            waiting = ", ".join(f"{n} ({s.running}/{s.spec.replicas})" for n, s in sorted(statuses.items())
                                if s.running < s.spec.replicas)
            raise CliError(f"timed out after {timeout:.0f}s waiting for {waiting}", EXIT_TIMEOUT)
        time.sleep(POLL)


def _bar(pulling: str, width: int = 20) -> str:
    """`pulling IMAGE (3.0 of 12.0 MiB)` → `pulling IMAGE [=====               ] 3.0 of 12.0 MiB`."""
    head, _, figures = pulling.partition(" (")
    parts = figures.rstrip(")").split()
    if len(parts) != 4:
        return pulling
    done, total = float(parts[0]), float(parts[2])
    filled = int(width * done / total) if total else 0
    return f"{head} [{'=' * filled}{' ' * (width - filled)}] {parts[0]} of {parts[2]} MiB"


def cmd_get(cluster: Cluster, args: argparse.Namespace) -> int:
    if args.kind in ("apps", "app"):
        apps = cluster.apps.ListApps(apb.ListAppsRequest()).apps
        if args.output != "table":
            output.emit(list(apps), args.output)
            return 0
        rows = [[a.spec.name, a.spec.image, f"{a.running}/{a.spec.replicas}", str(a.placed), a.version[:8],
                 a.pending_reason or "-"] for a in apps]
        output.table(["NAME", "IMAGE", "RUNNING", "PLACED", "VERSION", "PENDING"], rows)
        return 0
    return show_replicas(list(cluster.apps.ListReplicas(apb.ListReplicasRequest(app=args.name or "")).replicas),
                         args.output)


def show_replicas(replicas: list[apb.ReplicaInfo], fmt: str) -> int:
    if fmt != "table":
        output.emit(replicas, fmt)
    else:
        output.table(REPLICA_HEADERS, replica_rows(replicas))
    return 0


def cmd_describe(cluster: Cluster, args: argparse.Namespace) -> int:
    described = cluster.apps.DescribeApp(apb.DescribeAppRequest(name=args.app))
    if args.output != "table":
        output.emit(described, args.output)
        return 0
    status, spec = described.status, described.status.spec
    print(f"Name:       {spec.name}")
    print(f"Image:      {spec.image}")
    print(f"Version:    {status.version}")
    print(f"Replicas:   {status.running} running, {status.placed} placed, {spec.replicas} desired")
    if status.pending_reason:
        print(f"Pending:    {status.pending_reason}")
    print("\nReplicas:")
    output.table(REPLICA_HEADERS, replica_rows(list(described.replicas)))
    print("\nEvents:")
    for event in described.events or []:
        print(f"  {output.since(event.at / 1e9)} ago\t{event.message}")
    if not described.events:
        print("  (none yet)")
    return 0


def cmd_nodes(cluster: Cluster, args: argparse.Namespace) -> int:
    nodes = cluster.nodes.ListNodes(npb.ListNodesRequest()).nodes
    if args.output != "table":
        output.emit(list(nodes), args.output)
        return 0
    rows = [[n.name, n.state + ("" if n.schedulable else ",cordoned"), f"{n.cpu_millis / 1000:g}",
             format_bytes(n.memory_bytes),
             f"{n.allocated_cpu_millis / 1000:g} / {format_bytes(n.allocated_memory_bytes)}",
             str(n.replicas), n.node_ip or "-", n.subnet or "-",
             ",".join(f"{k}={v}" for k, v in sorted(n.labels.items())) or "-"]
            for n in nodes]
    output.table(["NAME", "STATE", "CPUS", "MEMORY", "ALLOCATED", "REPLICAS", "ADDRESS", "SUBNET", "LABELS"], rows)
    return 0


def cmd_schedulable(cluster: Cluster, args: argparse.Namespace) -> int:
    cluster.nodes.SetSchedulable(npb.SetSchedulableRequest(node=args.node, schedulable=args.command == "uncordon"))
    print(f"{args.node} {'uncordoned' if args.command == 'uncordon' else 'cordoned'}")
    return 0


def cmd_drain(cluster: Cluster, args: argparse.Namespace) -> int:
    reply = cluster.nodes.DrainNode(npb.DrainNodeRequest(node=args.node))
    print(f"{args.node} drained: {reply.moved} replicas moved, no new ones will be placed there")
    return 0


def cmd_node_rm(cluster: Cluster, args: argparse.Namespace) -> int:
    cluster.nodes.RemoveNode(npb.RemoveNodeRequest(node=args.node, force=args.force))
    print(f"{args.node} removed")
    return 0


def cmd_scale(cluster: Cluster, args: argparse.Namespace) -> int:
    if args.replicas < 0:
        raise CliError("replicas: 0 or more", EXIT_BAD_INPUT)
    change = cluster.apps.ScaleApp(apb.ScaleAppRequest(name=args.app, replicas=args.replicas)).change
    print(f"{args.app} scaled to {args.replicas}" if change.kind != apb.AppChange.KIND_NO_OP
          else f"{args.app} already has {args.replicas}")
    return 0


def cmd_delete(cluster: Cluster, args: argparse.Namespace) -> int:
    cluster.apps.DeleteApp(apb.DeleteAppRequest(name=args.app))
    print(f"{args.app} deleted")
    return 0


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    deploy = commands.add_parser("deploy", help="apply an app file to the cluster and wait until it runs")
    deploy.add_argument("-f", "--file", required=True, help="YAML app file (README: App spec)")
    deploy.add_argument("--dry-run", action="store_true", help="only show what would change")
    deploy.add_argument("--detach", action="store_true", help="return once applied, without waiting")
    deploy.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for replicas (default 120)")
    deploy.set_defaults(handler=cmd_deploy, target="server")
    get = commands.add_parser("get", help="list apps or containers (replicas) of the cluster")
    get.add_argument("kind", choices=("apps", "app", "containers", "replicas"))
    get.add_argument("name", nargs="?", help="for containers: only this app's")
    get.set_defaults(handler=cmd_get, target="server")
    describe = commands.add_parser("describe", help="an app in full: replicas, and events (why pending)")
    describe.add_argument("app")
    describe.set_defaults(handler=cmd_describe, target="server")
    nodes = commands.add_parser("nodes", help="the cluster's nodes")
    nodes.set_defaults(handler=cmd_nodes, target="server")
    for verb, text in (("cordon", "place no new replicas on a node"), ("uncordon", "allow placements again")):
        sub = commands.add_parser(verb, help=text)
        sub.add_argument("node")
        sub.set_defaults(handler=cmd_schedulable, target="server")
    drain = commands.add_parser("drain", help="cordon a node and move its replicas elsewhere")
    drain.add_argument("node")
    drain.set_defaults(handler=cmd_drain, target="server")
    node = commands.add_parser("node", help="manage nodes")
    node_verbs = node.add_subparsers(dest="verb", required=True, metavar="{rm}")
    node_rm = node_verbs.add_parser("rm", help="forget a node that is gone: its replicas go elsewhere, its subnet "
                                               "is freed")
    node_rm.add_argument("node")
    node_rm.add_argument("-f", "--force", action="store_true", help="even while it is ready")
    node_rm.set_defaults(handler=cmd_node_rm, target="server")
    scale = commands.add_parser("scale", help="change an app's replica count")
    scale.add_argument("app")
    scale.add_argument("replicas", type=int)
    scale.set_defaults(handler=cmd_scale, target="server")
    delete = commands.add_parser("delete", help="delete an app and stop its replicas")
    delete.add_argument("app")
    delete.set_defaults(handler=cmd_delete, target="server")



def cmd_up(args: argparse.Namespace) -> int:
    from cli.local import IMAGE, up

    cluster = up(args.state_dir, hosts=args.hosts, routing=args.network_routing)
    print(f"Shoal is up: control plane {cluster.server}, {len(cluster.agents)} node(s) ready, image {IMAGE} loaded.")
    print("Try: clusterctl deploy -f examples/apps.yaml && clusterctl get containers   (down: clusterctl down)")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from cli.local import down

    down(args.state_dir)
    print(f"Shoal is down: everything under {args.state_dir} removed.")
    return 0


def register_local(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    up = commands.add_parser("up", help="start a local cluster on this machine (control plane + agent)")
    up.add_argument("--state-dir", default=DEFAULT_STATE, help=f"where it lives (default {DEFAULT_STATE})")
    up.add_argument("--hosts", type=int, default=0,
                    help="N agents, each in its own network-namespace host (default: one agent on this host)")
    up.add_argument("--network-routing", choices=("host-gw", "vxlan"), default="host-gw",
                    help="how the hosts reach each other's containers (default host-gw)")
    up.set_defaults(handler=cmd_up, target="local")
    down = commands.add_parser("down", help="stop the local cluster and remove everything it made")
    down.add_argument("--state-dir", default=DEFAULT_STATE)
    down.set_defaults(handler=cmd_down, target="local")
