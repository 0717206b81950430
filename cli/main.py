"""`clusterctl`: Docker's verbs and habits, against one Shoal agent (`--agent`, or SHOAL_AGENT)."""

from __future__ import annotations

import argparse
import sys

import grpc

from cli import cluster, containers, images
from cli.client import CliError, agent_address, agent_stub, explain, fail
from cli.config import server_address


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clusterctl", description=__doc__)
    parser.add_argument("--agent", help="unix:///PATH or HOST:PORT of a shoal-agent "
                                        "(default: $SHOAL_AGENT, else unix:///var/lib/shoal/agent/agent.sock)")
    parser.add_argument("--server", help="HOST:PORT of a shoal-controlplane, for cluster commands "
                                         "(default: $SHOAL_SERVER, else the config file)")
    add_output_flag(parser, default="table")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    containers.register(commands)
    images.register(commands)
    cluster.register(commands)
    cluster.register_local(commands)
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


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    address = ""
    try:
        if getattr(args, "target", "agent") == "local":
            code = args.handler(args)
        elif getattr(args, "target", "agent") == "server":
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
