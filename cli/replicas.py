"""Docker's container verbs against the whole cluster: ps, logs, exec and run, through the control plane.

They are chosen when clusterctl has a control plane (`--server`, SHOAL_SERVER or the config file
that `clusterctl up` writes) and no `--agent`. Containers are the apps' replicas, named
`APP.INDEX`; logs and exec are proxied by the control plane to the agent of the replica's node.
"""

from __future__ import annotations

import argparse
import re
import secrets
import time

import grpc
from shoal.controlplane.v1 import app_service_pb2 as apb
from shoal.controlplane.v1 import apps_pb2 as pb
from shoal.controlplane.v1 import replica_service_pb2 as rpb

from cli.appfile import RESTART_KINDS
from cli.client import CliError
from cli.cluster import EXIT_BAD_INPUT, EXIT_TIMEOUT, Cluster, show_replicas
from cli.containers import EXIT_RUN_FAILED, parse_tail, print_entries, restart_flag, run_exec
from cli.quantity import parse_cpus, parse_memory, parse_port

# `run` flags that place something on one particular host, which an app replica placed anywhere cannot honour.
HOST_ONLY_FLAGS = (("volume", "-v"), ("hostname", "--hostname"), ("user", "--user"), ("workdir", "--workdir"),
                   ("cpu_shares", "--cpu-shares"))
STARTED = ("running", "restarting", "exited")
POLL = 0.3


def cmd_ps(cluster: Cluster, args: argparse.Namespace) -> int:
    return show_replicas([r for r in cluster.apps.ListReplicas(apb.ListReplicasRequest()).replicas
                          if args.all or r.state != "exited"], args.output)


def cmd_logs(cluster: Cluster, args: argparse.Namespace) -> int:
    """An app's replicas are prefixed `APP.INDEX | `, as `docker service logs` does; one replica is not."""
    one_replica = "." in args.container
    request = rpb.ReplicaLogsRequest(target=args.container, follow=args.follow, tail=parse_tail(args.tail))
    for response in cluster.replicas.ReplicaLogs(request):
        print_entries(response.entries, args.timestamps, b"" if one_replica else f"{response.replica} | ".encode())
    return 0


def cmd_exec(cluster: Cluster, args: argparse.Namespace) -> int:
    return run_exec(cluster.replicas.ReplicaExec, args)


def app_name(image: str) -> str:
    """`registry:5000/team/web:1.2` → `web-3f9a`: a DNS label unlikely to collide."""
    base = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    base = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")[:50] or "app"
    return f"{base}-{secrets.token_hex(2)}"


def spec_from_run(args: argparse.Namespace) -> pb.AppSpec:
    for attribute, flag in HOST_ONLY_FLAGS:
        if getattr(args, attribute):
            raise CliError(f"{flag}: not available for a cluster replica (it may run on any node); "
                           "use --agent to run on one agent", EXIT_BAD_INPUT)
    ports = []
    for text in args.publish:
        try:
            host, container, protocol = parse_port(text)
        except ValueError as e:
            raise CliError(f"-p: {e}", EXIT_BAD_INPUT) from None
        ports.append(pb.AppPort(host_port=host, container_port=container, protocol=protocol))
    kind, retries = restart_flag(args.restart, EXIT_BAD_INPUT)
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"-e: {item!r} must be KEY=VALUE", EXIT_BAD_INPUT)
        env[key] = value
    try:
        resources = pb.AppResources(cpu_millis=parse_cpus(args.cpus) if args.cpus else 0,
                                    memory_bytes=parse_memory(args.memory) if args.memory else 0,
                                    pids_limit=args.pids or 0)
    except ValueError as e:
        raise CliError(str(e), EXIT_BAD_INPUT) from None
    return pb.AppSpec(name=args.name or app_name(args.image), image=args.image, replicas=1,
                      command=[args.entrypoint] if args.entrypoint else [], args=args.command, env=env,
                      resources=resources,
                      restart=pb.AppRestartPolicy(kind=RESTART_KINDS[kind], max_retries=retries),
                      labels=dict(label.partition("=")[::2] for label in args.label),
                      network="" if args.network == "bridge" else args.network, ports=ports)


def cmd_run(cluster: Cluster, args: argparse.Namespace) -> int:
    """A one-replica app placed anywhere. Attached (the default) it prints the output until the
    replica stops and exits with its code, as `docker run` does; -d returns once it is applied."""
    spec = spec_from_run(args)
    existing = {a.spec.name for a in cluster.apps.ListApps(apb.ListAppsRequest()).apps}
    if spec.name in existing:
        raise CliError(f"--name: an app named {spec.name} already exists", EXIT_BAD_INPUT)
    try:
        cluster.apps.ApplyApps(apb.ApplyAppsRequest(apps=[spec]))
    except grpc.RpcError as e:
        if e.code() is grpc.StatusCode.INVALID_ARGUMENT:
            raise CliError(e.details() or "invalid", EXIT_BAD_INPUT) from None
        raise
    replica = f"{spec.name}.0"
    if args.detach:
        print(replica)
        return 0
    try:
        _wait_started(cluster, spec.name, args.timeout)
        for response in cluster.replicas.ReplicaLogs(rpb.ReplicaLogsRequest(target=replica, follow=True, tail=-1)):
            print_entries(response.entries, timestamps=False)
        final = cluster.apps.ListReplicas(apb.ListReplicasRequest(app=spec.name)).replicas[0]
    finally:
        if args.rm:
            cluster.apps.DeleteApp(apb.DeleteAppRequest(name=spec.name))
    return int(final.exit_code)


def _wait_started(cluster: Cluster, app: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        [replica] = cluster.apps.ListReplicas(apb.ListReplicasRequest(app=app)).replicas
        if replica.state in STARTED:
            return
        if replica.state == "failed":
            raise CliError(f"{app}.0 cannot start on {replica.node}: {replica.error}", EXIT_RUN_FAILED)
        if time.monotonic() > deadline:
            why = f" (pending: {replica.error})" if replica.state == "pending" else ""
            raise CliError(f"timed out after {timeout:.0f}s waiting for {app}.0 to start{why}", EXIT_TIMEOUT)
        time.sleep(POLL)


def attach(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Gives the container verbs their cluster form (cli/main.py picks the form per invocation)."""
    for verb, handler in (("ps", cmd_ps), ("logs", cmd_logs), ("exec", cmd_exec), ("run", cmd_run)):
        commands.choices[verb].set_defaults(cluster_handler=handler, target="auto")
    commands.choices["run"].add_argument("--timeout", type=float, default=120.0,
                                         help="cluster: seconds to wait for the replica to start (default 120)")
