"""Container commands: run, ps, logs, exec, stop, kill, rm, inspect, stats."""

from __future__ import annotations

import argparse
import os
import queue
import select
import shutil
import signal
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterable, Iterator

import grpc
from shoal.agent.v1 import agent_pb2 as apb
from shoal.agent.v1 import agent_pb2_grpc
from shoal.agent.v1 import containers_pb2 as cpb

from cli import images, output
from cli.client import CliError
from cli.quantity import format_bytes, parse_cpus, parse_memory, parse_port

STATE_NAMES = {cpb.CONTAINER_STATE_CREATED: "created", cpb.CONTAINER_STATE_RUNNING: "running",
               cpb.CONTAINER_STATE_RESTARTING: "restarting", cpb.CONTAINER_STATE_EXITED: "exited"}
RESTART_KINDS = {"no": cpb.RestartPolicy.KIND_UNSPECIFIED, "on-failure": cpb.RestartPolicy.KIND_ON_FAILURE,
                 "always": cpb.RestartPolicy.KIND_ALWAYS}
# `run` exit codes for failures before the command runs, as Docker documents them.
EXIT_RUN_FAILED, EXIT_CANNOT_INVOKE, EXIT_NOT_FOUND = 125, 126, 127


def restart_flag(text: str, code: int) -> tuple[str, int]:
    """`--restart no|always|on-failure[:N]` as (kind, N), for an agent's container or a cluster app alike."""
    kind, _, retries = text.partition(":")
    if kind not in RESTART_KINDS or (retries and (kind != "on-failure" or not retries.isdigit())):
        raise CliError(f"--restart: {text!r} is not a restart policy (no, on-failure[:max-retries], always)", code)
    return kind, int(retries or 0)


def parse_restart(text: str) -> cpb.RestartPolicy:
    kind, retries = restart_flag(text, EXIT_RUN_FAILED)
    return cpb.RestartPolicy(kind=RESTART_KINDS[kind], max_retries=retries)


def parse_volume(text: str) -> cpb.Mount:
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise CliError(f"-v: {text!r} must be HOST_PATH:CONTAINER_PATH[:ro]", 125)
    return cpb.Mount(source=os.path.abspath(parts[0]), destination=parts[1],
                     read_only=len(parts) == 3 and parts[2] == "ro")


NETWORK_MODES = {"bridge": cpb.NETWORK_MODE_BRIDGE, "host": cpb.NETWORK_MODE_HOST, "none": cpb.NETWORK_MODE_NONE}


def parse_publish(text: str) -> cpb.PortMapping:
    try:
        host, container, protocol = parse_port(text)
    except ValueError as e:
        raise CliError(f"-p: {e}", EXIT_RUN_FAILED) from None
    return cpb.PortMapping(host_port=host, container_port=container, protocol=protocol)


def spec_from_args(args: argparse.Namespace, auto_remove: bool) -> cpb.ContainerSpec:
    try:
        resources = cpb.Resources(memory_bytes=parse_memory(args.memory) if args.memory else 0,
                                  cpu_millis=parse_cpus(args.cpus) if args.cpus else 0,
                                  cpu_shares=args.cpu_shares or 0, pids_limit=args.pids or 0)
    except ValueError as e:
        raise CliError(str(e), EXIT_RUN_FAILED) from None
    return cpb.ContainerSpec(
        name=args.name or "", image=args.image, command=args.command,
        entrypoint=[args.entrypoint] if args.entrypoint else [], env=args.env, hostname=args.hostname or "",
        user=args.user or "", working_dir=args.workdir or "", mounts=[parse_volume(v) for v in args.volume],
        resources=resources, restart_policy=parse_restart(args.restart),
        network_mode=NETWORK_MODES[args.network], ports=[parse_publish(p) for p in args.publish],
        auto_remove=auto_remove, labels=dict(label.partition("=")[::2] for label in args.label),
    )


def cmd_run(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    """One RunContainer stream (the agent creates, starts, streams the output, and removes with
    `--rm` after the output is read), as `docker run` makes its calls; Ctrl-C reaches the container."""
    spec = spec_from_args(args, auto_remove=args.rm)
    request = apb.RunContainerRequest(spec=spec, attach=not args.detach, detach=args.detach)
    interrupted = None
    try:
        for response in _run_stream(stub, request):
            event = response.WhichOneof("event")
            if event == "started":
                if args.detach:
                    print(response.started.id)
                    return 0
                interrupted = _forward_interrupts(stub, response.started.id)
            elif event == "output":
                print_entries(response.output.entries, timestamps=False)
            elif event == "exited":
                if response.exited.error:  # its command could not be executed after all, or its end was not seen
                    print(f"Error: {response.exited.error}", file=sys.stderr)
                return int(response.exited.exit_code)
    except grpc.RpcError as e:
        # UNKNOWN is the container's own setup or command failing; anything else (a bad spec, a
        # port taken, no address left) is the runtime refusing to run it, which Docker reports as 125.
        code = (EXIT_RUN_FAILED if e.code() is not grpc.StatusCode.UNKNOWN
                else EXIT_NOT_FOUND if "not found" in (e.details() or "") else EXIT_CANNOT_INVOKE)
        raise CliError(e.details() or str(e), code) from None
    finally:
        if interrupted is not None:
            signal.signal(signal.SIGINT, interrupted)
    raise CliError("the agent ended the run without the container's exit", EXIT_RUN_FAILED)


def _run_stream(stub: agent_pb2_grpc.AgentStub, request: apb.RunContainerRequest) -> Iterator[apb.RunContainerResponse]:
    """As `docker run` does: an image missing locally is pulled, then the run is tried again."""
    responses = stub.RunContainer(request)
    try:
        first = next(responses)
    except grpc.RpcError as e:
        if e.code() is not grpc.StatusCode.NOT_FOUND or "image" not in (e.details() or ""):
            raise
        print(f"Unable to find image '{request.spec.image}' locally", file=sys.stderr)
        images.pull(stub, request.spec.image, show=False)
        responses = stub.RunContainer(request)
        first = next(responses)
    yield first
    yield from responses


def _forward_interrupts(stub: agent_pb2_grpc.AgentStub, container_id: str) -> signal.Handlers:
    """Ctrl-C while attached sends SIGINT to the container (Docker's sig-proxy); a second one detaches."""
    presses = []

    def handler(signum: int, frame: object) -> None:
        presses.append(signum)
        if len(presses) > 1:
            raise KeyboardInterrupt
        stub.KillContainer(apb.KillContainerRequest(container=container_id, signal="SIGINT"))

    previous = signal.signal(signal.SIGINT, handler)
    return previous  # type: ignore[return-value]


def print_entries(entries: Iterable[cpb.LogEntry], timestamps: bool, prefix: bytes = b"") -> None:
    for entry in entries:
        stream = sys.stderr.buffer if entry.stream == cpb.LogEntry.STREAM_STDERR else sys.stdout.buffer
        stream.write(prefix)
        if timestamps:
            stream.write(entry.time.ToJsonString().encode() + b" ")
        stream.write(entry.data)
        stream.flush()


def status_text(c: cpb.Container) -> str:
    now = time.time()
    if c.state == cpb.CONTAINER_STATE_RUNNING:
        return f"Up {output.ago(now - c.started_at.seconds)}"
    if c.state == cpb.CONTAINER_STATE_RESTARTING:
        return f"Restarting ({c.exit_code}) {output.ago(now - c.finished_at.seconds)} ago"
    if c.state == cpb.CONTAINER_STATE_EXITED:
        oom = ", OOM killed" if c.oom_killed else ""
        return f"Exited ({c.exit_code}{oom}) {output.ago(now - c.finished_at.seconds)} ago"
    return "Created" + (f" (start failed: {c.error})" if c.error else "")


def cmd_ps(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    containers = stub.ListContainers(apb.ListContainersRequest(all=args.all)).containers
    if args.output != "table":
        output.emit(list(containers), args.output)
        return 0
    rows = []
    for c in containers:
        command = " ".join(c.argv)
        command = f'"{command[:20]}…"' if len(command) > 20 else f'"{command}"'
        ports = ", ".join(f"{p.host_port}->{p.container_port}/{p.protocol or 'tcp'}" for p in c.spec.ports)
        rows.append([c.id[:12], c.spec.image, command, output.since(c.created_at.seconds) + " ago",
                     status_text(c), str(c.restart_count), c.ip_address or "-", ports or "-", c.name])
    output.table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "RESTARTS", "ADDRESS", "PORTS", "NAMES"],
                 rows)
    return 0


def parse_tail(text: str) -> int:
    if text == "all":
        return -1
    if not text.isdigit():
        raise CliError(f"--tail: {text!r} is not a number of lines (or all)", 2)
    return int(text)


def cmd_logs(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    for response in stub.ContainerLogs(apb.ContainerLogsRequest(container=args.container, follow=args.follow,
                                                                 tail=parse_tail(args.tail))):
        print_entries(response.entries, args.timestamps)
    return 0


def _each(refs: list[str], action: Callable[[str], object]) -> int:
    """Docker's habit for verbs over several containers: act on each in turn, echoing its name."""
    for ref in refs:
        action(ref)
        print(ref)
    return 0


def cmd_stop(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: stub.StopContainer(
        apb.StopContainerRequest(container=ref, timeout_seconds=args.time)))


def cmd_start(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: stub.StartContainer(apb.StartContainerRequest(container=ref)))


def cmd_kill(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: stub.KillContainer(
        apb.KillContainerRequest(container=ref, signal=args.signal)))


def cmd_rm(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: stub.RemoveContainer(
        apb.RemoveContainerRequest(container=ref, force=args.force)))


def cmd_inspect(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    found = [stub.InspectContainer(apb.InspectContainerRequest(container=ref)).container for ref in args.containers]
    output.emit(found, "yaml" if args.output == "yaml" else "json")
    return 0


def cmd_stats(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    """Two readings a second apart, as `docker stats --no-stream` does, so CPU % is a rate."""
    first = {s.id: s for s in stub.ContainerStats(apb.ContainerStatsRequest(containers=args.containers)).stats}
    time.sleep(1.0 if args.output == "table" else 0)
    second = stub.ContainerStats(apb.ContainerStatsRequest(containers=args.containers)).stats
    if args.output != "table":
        output.emit(list(second), args.output)
        return 0
    rows = []
    for s in second:
        before = first.get(s.id)
        cpu = (s.cpu_seconds - before.cpu_seconds) * 100 if before else 0.0
        limit = format_bytes(s.memory_limit_bytes) if s.memory_limit_bytes else "unlimited"
        mem_pct = f"{100 * s.memory_usage_bytes / s.memory_limit_bytes:.1f}%" if s.memory_limit_bytes else "-"
        pids = f"{s.pids_current}" + (f"/{s.pids_limit}" if s.pids_limit else "")
        rows.append([s.id[:12], s.name, f"{cpu:.1f}%", f"{s.cpu_seconds:.2f}s",
                     f"{format_bytes(s.memory_usage_bytes)} / {limit}", mem_pct, pids])
    output.table(["CONTAINER ID", "NAME", "CPU %", "CPU TIME", "MEM USAGE / LIMIT", "MEM %", "PIDS"], rows)
    return 0


ExecCall = Callable[[Iterator[apb.ExecRequest]], Iterator[apb.ExecResponse]]


def cmd_exec(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    return run_exec(stub.Exec, args)


def run_exec(call: ExecCall, args: argparse.Namespace) -> int:
    """Drives one exec stream (the agent's own, or the control plane's proxy of it) from this terminal."""
    use_tty = args.tty and sys.stdin.isatty()
    size = shutil.get_terminal_size() if use_tty else os.terminal_size((0, 0))
    start = apb.ExecStart(container=args.container, command=args.command, tty=args.tty, env=args.env,
                          user=args.user or "", working_dir=args.workdir or "", rows=size.lines, cols=size.columns)
    requests: queue.Queue[apb.ExecRequest | None] = queue.Queue()
    requests.put(apb.ExecRequest(start=start))
    if args.interactive:
        threading.Thread(target=_read_stdin, args=(requests,), daemon=True).start()
    else:
        requests.put(apb.ExecRequest(close_stdin=True))
    saved = termios.tcgetattr(sys.stdin.fileno()) if use_tty else None
    if use_tty:
        tty.setraw(sys.stdin.fileno())
    try:
        for response in _exec_responses(call, requests):
            kind = response.WhichOneof("response")
            if kind == "exit_code":
                return response.exit_code
            stream = sys.stderr.buffer if kind == "stderr" else sys.stdout.buffer
            stream.write(getattr(response, kind))
            stream.flush()
    finally:
        if saved is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
        requests.put(None)
    raise CliError("the exec stream ended without an exit code")


def _exec_responses(call: ExecCall, requests: queue.Queue[apb.ExecRequest | None]) -> Iterator[apb.ExecResponse]:
    try:
        yield from call(iter(requests.get, None))
    except grpc.RpcError as e:
        if e.code() is grpc.StatusCode.UNKNOWN:  # the process could not start
            details = e.details() or ""
            raise CliError(details, EXIT_NOT_FOUND if "not found" in details else EXIT_CANNOT_INVOKE) from None
        raise


def _read_stdin(requests: queue.Queue[apb.ExecRequest | None]) -> None:
    fd = sys.stdin.fileno()
    while True:
        select.select([fd], [], [])
        data = os.read(fd, 4096)
        if not data:
            requests.put(apb.ExecRequest(close_stdin=True))
            return
        requests.put(apb.ExecRequest(stdin=data))


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--detach", action="store_true", help="start and print the id")
    parser.add_argument("--name")
    parser.add_argument("--rm", action="store_true", help="remove the container when it exits")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    parser.add_argument("-l", "--label", action="append", default=[], metavar="K=V")
    parser.add_argument("-m", "--memory", help="memory limit: 64Mi, 512m, 1g (binary units)")
    parser.add_argument("--cpus", help="CPU quota in CPUs: 0.5, 2")
    parser.add_argument("--cpu-shares", type=int, help="relative CPU weight (2..262144, default 1024)")
    parser.add_argument("--pids", type=int, help="maximum number of processes")
    parser.add_argument("--hostname")
    parser.add_argument("-u", "--user", help="user[:group], names or numbers")
    parser.add_argument("-w", "--workdir")
    parser.add_argument("--entrypoint")
    parser.add_argument("-v", "--volume", action="append", default=[], metavar="SRC:DST[:ro]")
    parser.add_argument("--restart", default="no", help="no | on-failure[:max] | always")
    parser.add_argument("--network", choices=("bridge", "host", "none"), default="bridge",
                        help="bridge: an address on the node's bridge (default); host: the host's network; "
                             "none: loopback only")
    parser.add_argument("-p", "--publish", action="append", default=[], metavar="HOST:CONTAINER[/udp]",
                        help="publish a container port on the node's addresses (bridge only)")
    parser.add_argument("image")
    parser.add_argument("command", nargs=argparse.REMAINDER)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = commands.add_parser("run", help="create and start a container (attached unless -d)")
    add_run_flags(run)
    run.set_defaults(handler=cmd_run)
    ps = commands.add_parser("ps", help="list containers")
    ps.add_argument("-a", "--all", action="store_true", help="include stopped containers")
    ps.set_defaults(handler=cmd_ps)
    logs = commands.add_parser("logs", help="a container's output")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", default="all", help="number of lines from the end, or all")
    logs.add_argument("-t", "--timestamps", action="store_true")
    logs.add_argument("container")
    logs.set_defaults(handler=cmd_logs)
    execp = commands.add_parser("exec", help="run a command in a running container")
    execp.add_argument("-i", "--interactive", action="store_true", help="attach stdin")
    execp.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    execp.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    execp.add_argument("-u", "--user")
    execp.add_argument("-w", "--workdir")
    execp.add_argument("container")
    execp.add_argument("command", nargs=argparse.REMAINDER)
    execp.set_defaults(handler=cmd_exec)
    for name, handler, text in (("start", cmd_start, "start stopped containers"),
                                ("stop", cmd_stop, "stop containers (TERM, then KILL after -t seconds)"),
                                ("kill", cmd_kill, "send a signal (KILL by default)"),
                                ("rm", cmd_rm, "remove containers"),
                                ("inspect", cmd_inspect, "show containers in full (JSON)")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("containers", nargs="+")
        sub.set_defaults(handler=handler)
        if name == "stop":
            sub.add_argument("-t", "--time", type=int, default=-1, help="seconds before SIGKILL (default 10)")
        if name == "kill":
            sub.add_argument("-s", "--signal", default="KILL")
        if name == "rm":
            sub.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    stats = commands.add_parser("stats", help="CPU, memory and process counts of running containers")
    stats.add_argument("containers", nargs="*")
    stats.set_defaults(handler=cmd_stats)
