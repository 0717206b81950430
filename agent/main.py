"""`shoal-agent`: runs containers on this host and serves the Agent API."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from agent import allocator
from agent.config import (
    DEFAULT_BRIDGE,
    DEFAULT_CERTS_DIR,
    DEFAULT_CGROUP_PARENT,
    DEFAULT_METRICS,
    DEFAULT_STATE_DIR,
    DEFAULT_SUBNET,
    AgentConfig,
)
from agent.errors import ShoalError
from agent.wiring import remove_network, start_agent


def _add_network_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--bridge", default=DEFAULT_BRIDGE,
                       help=f"the containers' bridge (default {DEFAULT_BRIDGE}); one per agent on a host")
    group.add_argument("--subnet", default=DEFAULT_SUBNET,
                       help=f"container subnet of a standalone agent (default {DEFAULT_SUBNET}); "
                            "in a cluster the control plane gives each node its own")
    group.add_argument("--mtu", type=int, default=1500, help="MTU of the hosts' network (default 1500)")
    group.add_argument("--node-ip", default="",
                       help="this node's address for other nodes' routes to its containers (default: the "
                            "advertised address, else the one the control plane is reached from)")
    group.add_argument("--remove-network", action="store_true",
                       help="remove what a stopped agent left of its network (bridge, routes, VXLAN device, "
                            "iptables chains) and exit; refused while its supervisor runs containers")


def parse_args(argv: list[str] | None) -> AgentConfig:
    parser = argparse.ArgumentParser(prog="shoal-agent", description=__doc__)
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR,
                        help=f"images, containers, logs and sockets (default {DEFAULT_STATE_DIR})")
    parser.add_argument("--listen", action="append", default=[],
                        help="unix:///PATH or HOST:PORT for the gRPC API, repeatable "
                             "(default unix://STATE_DIR/agent.sock)")
    parser.add_argument("--no-lean-socket", action="store_true",
                        help="serve gRPC only: no lean local socket (PATH.lean) beside each unix:// --listen PATH")
    parser.add_argument("--cgroup-parent", default=DEFAULT_CGROUP_PARENT,
                        help=f"cgroup under which containers are placed (default {DEFAULT_CGROUP_PARENT})")
    parser.add_argument("--metrics-listen", default=DEFAULT_METRICS,
                        help=f"HOST:PORT for Prometheus /metrics, or off (default {DEFAULT_METRICS})")
    parser.add_argument("--log-max-size", type=int, default=10 << 20, help="bytes per container log file")
    parser.add_argument("--log-max-files", type=int, default=3, help="log files kept per container")
    parser.add_argument("--server", default="", help="HOST:PORT of a shoal-controlplane to join (default: standalone)")
    parser.add_argument("--label", action="append", default=[], metavar="K=V", help="node label, repeatable")
    parser.add_argument("--node-name", default="", help="name shown in `clusterctl nodes` (default: the hostname)")
    parser.add_argument("--advertise-address", default="",
                        help="HOST:PORT where the control plane reaches this agent for logs, exec and image "
                             "import (default: the first --listen HOST:PORT with a specific host)")
    parser.add_argument("--insecure-registry", action="append", default=[], metavar="HOST:PORT",
                        help="pull from this registry over plain HTTP (loopback registries always may)")
    parser.add_argument("--registry-certs-dir", default=DEFAULT_CERTS_DIR,
                        help=f"DIR/HOST:PORT/ca.crt is trusted for that registry (default {DEFAULT_CERTS_DIR})")
    parser.add_argument("--registry-auth-file", default="",
                        help="Docker-style config.json with the credentials for pulls (e.g. /root/.docker/config.json)")
    parser.add_argument("--image-gc-high-percent", type=int, default=85,
                        help="when the image store's filesystem is fuller than this, unused images are removed, "
                             "least recently used first (default 85; 100 never)")
    parser.add_argument("--image-gc-low-percent", type=int, default=80, help="...down to this (default 80)")
    parser.add_argument("--image-gc-interval", type=float, default=60.0, help="seconds between checks (default 60)")
    _add_network_flags(parser.add_argument_group("container network"))
    args = parser.parse_args(argv)
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--label {item!r}: expected K=V")
        labels[key] = value
    return AgentConfig(state_dir=args.state_dir, listen=tuple(args.listen), cgroup_parent=args.cgroup_parent,
                       metrics_listen=args.metrics_listen, log_max_bytes=args.log_max_size,
                       log_max_files=args.log_max_files, server=args.server, labels=labels,
                       node_name=args.node_name, advertise_address=args.advertise_address,
                       insecure_registries=tuple(args.insecure_registry), registry_certs_dir=args.registry_certs_dir,
                       registry_auth_file=args.registry_auth_file, image_gc_high_percent=args.image_gc_high_percent,
                       image_gc_low_percent=args.image_gc_low_percent, image_gc_interval=args.image_gc_interval,
                       bridge=args.bridge, subnet=args.subnet, mtu=args.mtu, node_ip=args.node_ip,
                       remove_network=args.remove_network, lean_socket=not args.no_lean_socket)


async def serve(config: AgentConfig) -> None:
    agent = await start_agent(config)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await agent.stop()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    allocator.tune_for_transfers()
    try:
        config = parse_args(argv)
        asyncio.run(remove_network(config) if config.remove_network else serve(config))
    except ShoalError as e:
        print(f"shoal-agent: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
