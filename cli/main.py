"""`clusterctl`: Docker's verbs and habits, against a Shoal cluster or one agent.

Cluster commands (deploy, get, nodes...) talk to the control plane. The container verbs ps, logs,
exec, run and `image import` talk to the control plane too when one is configured (--server,
SHOAL_SERVER or the config file) and no agent is named; with --agent (or SHOAL_AGENT), or when no
control plane is configured, they talk to that one agent.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc

from cli import build, cluster, containers, images, registry, replicas
from cli.client import CliError, agent_address, agent_stub, explain, fail
from cli.config import server_address, server_configured


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clusterctl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", help="unix:///PATH or HOST:PORT of a shoal-agent "
                                        "(default: $SHOAL_AGENT, else unix:///var/lib/shoal/agent/agent.sock); "
                                        "its lean socket PATH.lean is used when it answers ($SHOAL_LEAN=0: never)")
    parser.add_argument("--server", help="HOST:PORT of a shoal-controlplane, for cluster commands "
                                         "(default: $SHOAL_SERVER, else the config file)")
    add_output_flag(parser, default="table")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    containers.register(commands)
    images.register(commands)
    build.register(commands)
    cluster.register(commands)
    cluster.register_local(commands)
    registry.register(commands)
    replicas.attach(commands)
    for sub in _all_subparsers(parser):
        add_output_flag(sub, default=argparse.SUPPRESS)  # `-o json` works before or after the verb
    return parser


def add_output_flag(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("-o", "--output", choices=("table", "json", "yaml"), default=default,
                        help="output format (default: table)")


def _all_subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += [sub, *_all_subparsers(sub)]
    return found


def resolve_target(args: argparse.Namespace) -> str:
    """"agent", "server" or "local"; for a verb with both forms, also picks its handler."""
    target: str = getattr(args, "target", "agent")
    if target == "auto":
        use_agent = args.agent or os.environ.get("SHOAL_AGENT") or not server_configured(args.server)
        target = "agent" if use_agent else "server"
        if target == "server":
            args.handler = args.cluster_handler
    return target


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    address = ""
    target = resolve_target(args)
    try:
        if target == "local":
            code = args.handler(args)
        elif target == "server":
            address = server_address(args.server)
            code = args.handler(cluster.connect(address), args)
        else:
            address = agent_address(args.agent)
            code = args.handler(agent_stub(address), args)
    except CliError as e:
        fail(str(e), e.code)
    except grpc.RpcError as e:
        fail(explain(e, address))
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code)


if __name__ == "__main__":
    main()
