"""`clusterctl build`: sends a build context and a Dockerfile to an agent, which builds with Shoal's runtime.

As the Docker CLI does, the context is filtered by its `.dockerignore` here, before it is sent:
patterns are matched against paths relative to the context (`*`, `?`, `[...]`, and `**` for any
number of directories), a pattern also excludes everything under a matching directory, and a
later `!pattern` brings back what an earlier one excluded.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from collections.abc import Iterator

from shoal.agent.v1 import agent_pb2 as apb
from shoal.agent.v1 import agent_pb2_grpc

from cli import images, output
from cli.client import CliError

CHUNK = 1 << 20
EXIT_BAD_INPUT = 2


def ignore_rules(context: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(excludes, pattern) from CONTEXT/.dockerignore, in order."""
    rules = []
    try:
        with open(os.path.join(context, ".dockerignore"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((not negated, re.compile(_translate(pattern))))
    return rules


def _translate(pattern: str) -> str:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i)
            out += pattern[i:end + 1] if end > i else re.escape(pattern[i])
            i = end + 1 if end > i else i + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return f"^{out}(?:/.*)?$"  # a directory's pattern covers what is under it


def ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    verdict = False
    for excludes, pattern in rules:
        if pattern.match(relative):
            verdict = excludes
    return verdict


def context_tar(context: str, out: str) -> int:
    """Writes the filtered context as a tar; returns the number of entries."""
    import tarfile  # here, not at the top: every clusterctl command pays its imports at start-up

    rules = ignore_rules(context)
    count = 0
    with tarfile.open(out, "w") as tar:
        for directory, dirs, files in os.walk(context):
            dirs.sort()
            for name in sorted(dirs + files):
                path = os.path.join(directory, name)
                relative = os.path.relpath(path, context)
                if ignored(relative, rules):
                    continue
                tar.add(path, relative, recursive=False)
                count += 1
    return count


def _requests(header: apb.BuildHeader, archive: str) -> Iterator[apb.BuildRequest]:
    yield apb.BuildRequest(header=header)
    with open(archive, "rb") as f:
        while chunk := f.read(CHUNK):
            yield apb.BuildRequest(chunk=chunk)


def cmd_build(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    if not os.path.isdir(args.context):
        raise CliError(f"{args.context}: the build context must be a directory", EXIT_BAD_INPUT)
    dockerfile = args.file or os.path.join(args.context, "Dockerfile")
    try:
        with open(dockerfile, "rb") as f:
            content = f.read()
    except OSError as e:
        raise CliError(f"{dockerfile}: cannot read the Dockerfile: {e.strerror}", EXIT_BAD_INPUT) from None
    build_args = {}
    for item in args.build_arg:
        key, eq, value = item.partition("=")
        build_args[key] = value if eq else os.environ.get(key, "")
    header = apb.BuildHeader(tags=args.tag, dockerfile=content, build_args=build_args, target=args.target or "",
                             no_cache=args.no_cache)
    with tempfile.TemporaryDirectory(prefix="shoal-build-") as scratch:
        archive = os.path.join(scratch, "context.tar")
        context_tar(args.context, archive)
        image = None
        for event in stub.Build(_requests(header, archive)):
            if event.HasField("image"):
                image = event.image
            elif args.output == "table":
                print(event.line, flush=True)
    if image is None:
        raise CliError("the build ended without an image")
    if args.output != "table":
        output.emit(image, args.output)
    if args.push:
        for tag in args.tag:
            images.cmd_push(stub, argparse.Namespace(image=tag, output=args.output))
    return 0


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    build = commands.add_parser("build", help="build an image from a Dockerfile (on the agent, with its runtime)")
    build.add_argument("context", help="the build context directory")
    build.add_argument("-t", "--tag", action="append", default=[], help="name the result NAME[:TAG] (repeatable)")
    build.add_argument("-f", "--file", help="the Dockerfile (default CONTEXT/Dockerfile)")
    build.add_argument("--build-arg", action="append", default=[], metavar="K=V")
    build.add_argument("--target", help="build up to this stage")
    build.add_argument("--no-cache", action="store_true", help="build every step again")
    build.add_argument("--push", action="store_true", help="push every tag once built")
    build.set_defaults(handler=cmd_build)
