"""`shoal-controlplane`: desired state in etcd, scheduling and healing, the Nodes and Apps APIs.

With no --etcd-endpoints it runs an embedded etcd with its data in the state directory.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from typing import Any

import grpc
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server
from shoal.controlplane.v1 import (
    app_service_pb2,
    app_service_pb2_grpc,
    assignment_service_pb2,
    assignment_service_pb2_grpc,
    image_service_pb2,
    image_service_pb2_grpc,
    network_service_pb2,
    network_service_pb2_grpc,
    node_service_pb2,
    node_service_pb2_grpc,
    replica_service_pb2,
    replica_service_pb2_grpc,
)

from controlplane.agents import AgentDirectory
from controlplane.api.errors import ErrorInterceptor
from controlplane.api.servicers import (
    AppsServicer,
    AssignmentsServicer,
    ImagesServicer,
    NetworkServicer,
    NodesServicer,
    ReplicasServicer,
)
from controlplane.apps.service import AppService
from controlplane.assignments import AssignmentService
from controlplane.controller import Controller
from controlplane.errors import Conflict, InvalidSpec
from controlplane.etcd import EtcdClient, EtcdConfig
from controlplane.etcd.embedded import EmbeddedEtcd, EtcdNotInstalled
from controlplane.images import ImageDistributor
from controlplane.metrics import ControlPlaneMetrics
from controlplane.network import NetworkViews
from controlplane.nodes import NodeRegistry
from controlplane.replicas import ReplicaProxy
from controlplane.scheduling.stack import STRATEGIES
from controlplane.subnets import DEFAULT_CIDR, DEFAULT_PREFIX, ROUTINGS, SubnetPlan, settle_plan

log = logging.getLogger("shoal-controlplane")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="shoal-controlplane", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", default="/var/lib/shoal/controlplane")
    parser.add_argument("--listen", default="127.0.0.1:7420", help="HOST:PORT of the gRPC API (default %(default)s)")
    parser.add_argument("--etcd-endpoints", default="", help="host:port,... of an etcd cluster (default: embedded)")
    parser.add_argument("--etcd-ca", default="")
    parser.add_argument("--etcd-cert", default="")
    parser.add_argument("--etcd-key", default="")
    parser.add_argument("--embedded-etcd-ports", default="12379,12380",
                        help="client,peer ports of the embedded etcd (default %(default)s)")
    parser.add_argument("--node-grace", type=int, default=5, help="seconds without heartbeat before a node is down")
    parser.add_argument("--strategy", choices=STRATEGIES, default="spread")
    parser.add_argument("--cluster-cidr", default=DEFAULT_CIDR,
                        help="containers' addresses; fixed at the cluster's first start (default %(default)s)")
    parser.add_argument("--node-subnet-prefix", type=int, default=DEFAULT_PREFIX,
                        help="each node's share of the cluster CIDR, as a prefix length (default %(default)s)")
    parser.add_argument("--network-routing", choices=ROUTINGS, default="host-gw",
                        help="how nodes reach each other's container subnets: host-gw (routes via the node "
                             "addresses: the hosts share a network) or vxlan (an overlay over UDP 4789); fixed "
                             "at the cluster's first start (default %(default)s)")
    parser.add_argument("--metrics-listen", default="127.0.0.1:9421",
                        help="HOST:PORT for Prometheus /metrics, or off (default %(default)s)")
    return parser.parse_args(argv)


async def _connect_etcd(args: argparse.Namespace) -> tuple[EtcdClient, EmbeddedEtcd | None]:
    """The given etcd cluster, or an embedded one started (and ready) here."""
    embedded = None
    if args.etcd_endpoints:
        endpoints = tuple(e.strip() for e in args.etcd_endpoints.split(",") if e.strip())
    else:
        client_port, peer_port = (int(p) for p in args.embedded_etcd_ports.split(","))
        embedded = EmbeddedEtcd(data_dir=os.path.join(args.state_dir, "etcd"), client_port=client_port,
                                peer_port=peer_port, log_path=os.path.join(args.state_dir, "etcd.log"))
        os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
        embedded.start()
        await asyncio.to_thread(embedded.wait_ready)
        endpoints = (embedded.endpoint,)
    return EtcdClient(EtcdConfig(endpoints=endpoints, ca_file=args.etcd_ca, cert_file=args.etcd_cert,
                                 key_file=args.etcd_key)), embedded


def _grpc_server(client: EtcdClient, registry: NodeRegistry, directory: AgentDirectory,
                 views: NetworkViews) -> tuple[grpc.aio.Server, Any]:
    """Every service of the control plane, health checking and reflection, on one server."""
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    node_service_pb2_grpc.add_NodesServicer_to_server(NodesServicer(registry), server)
    app_service_pb2_grpc.add_AppsServicer_to_server(AppsServicer(AppService(client)), server)
    assignment_service_pb2_grpc.add_AssignmentsServicer_to_server(
        AssignmentsServicer(AssignmentService(client)), server)
    replica_service_pb2_grpc.add_ReplicasServicer_to_server(ReplicasServicer(ReplicaProxy(directory)), server)
    image_service_pb2_grpc.add_ImagesServicer_to_server(ImagesServicer(ImageDistributor(directory)), server)
    network_service_pb2_grpc.add_NetworkServicer_to_server(NetworkServicer(views), server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [node_service_pb2.DESCRIPTOR.services_by_name["Nodes"].full_name,
             app_service_pb2.DESCRIPTOR.services_by_name["Apps"].full_name,
             assignment_service_pb2.DESCRIPTOR.services_by_name["Assignments"].full_name,
             replica_service_pb2.DESCRIPTOR.services_by_name["Replicas"].full_name,
             image_service_pb2.DESCRIPTOR.services_by_name["Images"].full_name,
             network_service_pb2.DESCRIPTOR.services_by_name["Network"].full_name]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    return server, health_servicer


async def serve(args: argparse.Namespace) -> None:
    plan = SubnetPlan.parse(args.cluster_cidr, args.node_subnet_prefix, args.network_routing)
    client, embedded = await _connect_etcd(args)
    try:
        subnets = await settle_plan(client, plan)
    except Conflict:
        await client.close()
        if embedded is not None:
            embedded.stop()
        raise
    metrics = ControlPlaneMetrics()
    client.observe = metrics.observe_etcd
    metrics_server = None
    if args.metrics_listen != "off":
        host, _, port = args.metrics_listen.rpartition(":")
        metrics_server, _thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=metrics.registry)
    registry = NodeRegistry(client, args.node_grace, subnets)
    directory = AgentDirectory(client)
    views = NetworkViews(client)
    server, health_servicer = _grpc_server(client, registry, directory, views)
    server.add_insecure_port(args.listen)
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    controller = Controller(client, identity=f"{socket.gethostname()}:{os.getpid()}", metrics=metrics,
                            strategy=args.strategy)
    controller_task = asyncio.get_running_loop().create_task(controller.run())
    etcd_supervisor = asyncio.get_running_loop().create_task(embedded.supervise()) if embedded else None
    log.info("shoal-controlplane serving on %s (etcd %s)", args.listen,
             embedded.endpoint if embedded else args.etcd_endpoints)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    controller_task.cancel()
    await asyncio.gather(controller_task, return_exceptions=True)
    await server.stop(grace=2)
    await views.close()
    await registry.close()
    await directory.close()
    await client.close()
    if metrics_server is not None:
        metrics_server.shutdown()
    if embedded is not None and etcd_supervisor is not None:
        etcd_supervisor.cancel()
        await asyncio.gather(etcd_supervisor, return_exceptions=True)
        embedded.stop()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(parse_args(argv)))
    except (EtcdNotInstalled, InvalidSpec, Conflict) as e:
        print(f"shoal-controlplane: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
