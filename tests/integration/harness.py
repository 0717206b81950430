"""A real shoal-agent for tests: its own state dir, cgroup parent and metrics port; torn down completely."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from shoal.agent.v1 import agent_pb2 as apb
from shoal.agent.v1 import agent_pb2_grpc

from cli.lean import SUFFIX, LeanAgentStub

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}:{os.path.join(ROOT, 'protos')}"}


def eventually(check: Callable[[], bool], timeout: float = 20.0, every: float = 0.1) -> None:
    """Polls until check() holds; fails the test when the timeout passes first."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(every)


# A web server whose /cgi-bin/ip answers with the caller's address as the server sees it.
WHO = ("mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' "
       "> /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && echo ok > /www/index.html && exec httpd -f -p 80 -h /www")


def callers(out: str) -> list[str]:
    """The addresses /cgi-bin/ip answered with (httpd listens dual-stack: `[::ffff:10.0.0.2]`)."""
    return [line.removeprefix("[::ffff:").removesuffix("]") for line in out.splitlines() if line.startswith("[::ffff:")]


_subnets = itertools.count(secrets.randbelow(50 * 256))  # test sessions and benchmarks may run side by side


def next_subnet() -> str:
    """A standalone agent's container subnet, distinct from every other test agent's of the session."""
    n = next(_subnets)
    return f"10.{200 + n // 256 % 50}.{n % 256}.0/24"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@dataclass
class AgentProcess:
    state_dir: str
    cgroup_parent: str
    metrics_port: int = field(default_factory=free_port)
    listen: str = ""
    server: str = ""
    process: subprocess.Popen[bytes] | None = None
    flags: tuple[str, ...] = ()  # more shoal-agent flags
    bridge: str = field(default_factory=lambda: "st" + secrets.token_hex(4))
    subnet: str = field(default_factory=next_subnet)

    @property
    def address(self) -> str:
        return self.listen or f"unix://{self.state_dir}/agent.sock"

    def start(self) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        log = open(os.path.join(self.state_dir, "..", os.path.basename(self.state_dir) + ".agent.log"), "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent.main", "--state-dir", self.state_dir, "--cgroup-parent",
             self.cgroup_parent, "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
             "--log-max-size", "65536", "--log-max-files", "2", *(["--listen", self.listen] if self.listen else []),
             "--bridge", self.bridge, "--subnet", self.subnet,
             *(["--server", self.server, "--label", "zone=test"] if self.server else []), *self.flags],
            stdout=log, stderr=log, env=ENV)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.stub().ListContainers(apb.ListContainersRequest(), timeout=1)
                return
            except grpc.RpcError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"shoal-agent exited with {self.process.returncode}") from None
                time.sleep(0.05)
        raise RuntimeError("shoal-agent did not become ready")

    def stub(self) -> agent_pb2_grpc.AgentStub:
        return agent_pb2_grpc.AgentStub(grpc.insecure_channel(self.address))

    @property
    def lean_path(self) -> str:
        """The agent's lean local socket (agent/api/lean.py), beside its gRPC one."""
        return self.address.removeprefix("unix://") + SUFFIX

    def lean_stub(self) -> LeanAgentStub:
        """The same API through the lean local socket, as clusterctl uses it."""
        return LeanAgentStub(grpc.insecure_channel(self.address), self.lean_path)

    def cli(self, *args: str, stdin: bytes | None = None, timeout: float = 60) -> CliResult:
        done = subprocess.run([sys.executable, "-m", "cli.main", "--agent", self.address, *args],
                              input=stdin, capture_output=True, timeout=timeout, env=ENV)
        return CliResult(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))

    def cli_json(self, *args: str) -> object:
        result = self.cli(*args, "-o", "json")
        assert result.code == 0, result.err
        return json.loads(result.out)

    def kill_agent(self, sig: int = signal.SIGKILL) -> None:
        """Ends the agent process only; the supervisor and the containers stay (as in production)."""
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=20)

    def supervisor_pid(self) -> int:
        with open(os.path.join(self.state_dir, "supervisor.pid")) as f:
            return int(f.read())

    def destroy(self) -> None:
        """Removes every container, stops the agent and its supervisor, deletes the state dir."""
        if self.process is not None and self.process.poll() is None:
            stub = self.stub()
            for container in stub.ListContainers(apb.ListContainersRequest(all=True), timeout=10).containers:
                stub.RemoveContainer(apb.RemoveContainerRequest(container=container.id, force=True), timeout=30)
            self.kill_agent(signal.SIGTERM)
        supervisor_socket = os.path.join(self.state_dir, "supervisor.sock")
        if os.path.exists(supervisor_socket):
            from agent.supervisor.protocol import call_blocking

            pid = self.supervisor_pid()
            call_blocking(supervisor_socket, {"op": "shutdown"})
            deadline = time.monotonic() + 10
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                time.sleep(0.02)
        if os.path.exists(f"/sys/class/net/{self.bridge}"):  # the agent was killed and not started again
            remove_network(self.state_dir, self.bridge)
        shutil.rmtree(self.state_dir, ignore_errors=True)


def remove_network(state_dir: str, bridge: str) -> None:
    """What a stopping agent does once no container is attached: its rules, routes and links go."""
    done = subprocess.run([sys.executable, "-m", "agent.main", "--state-dir", state_dir, "--bridge", bridge,
                           "--remove-network"], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


def namespace(pid: int, kind: str) -> str:
    """The namespace's identity, or "" once the process is gone (children come and go as we look)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except FileNotFoundError:
        return ""


def _children_in(supervisor: int) -> list[tuple[int, str, str]]:
    found = [(pid, namespace(pid, "mnt"), namespace(pid, "net")) for pid in children(supervisor)]
    return [child for child in found if child[1] and child[2]]


def warm_inits(supervisor: int) -> set[int]:
    """Pooled inits waiting inside an image's root (agent/supervisor/warm.py): each has a spare
    writable layer, <state>/warm/<pid>, until a create makes it a container's."""
    with open(f"/proc/{supervisor}/cmdline", "rb") as f:
        argv = f.read().decode().split("\0")
    spares = os.path.join(argv[argv.index("--state-dir") + 1], "warm")
    with contextlib.suppress(FileNotFoundError):
        return {int(entry) for entry in os.listdir(spares)}
    return set()


def container_inits(supervisor: int) -> list[int]:
    """Containers' inits: the supervisor's children in a mount namespace of their own, but for
    the pooled inits that wait in an image's root."""
    found = _children_in(supervisor)
    warm = warm_inits(supervisor)  # read after: an init's spare layer exists before its mount namespace
    return [pid for pid, mnt, _ in found if mnt != namespace(supervisor, "mnt") and pid not in warm]


def pooled_inits(supervisor: int) -> list[int]:
    """Inits cloned ahead by the zygote: the supervisor's children (CLONE_PARENT) with a network
    namespace of their own, and the host's mounts, or an image's root of their own (warm_inits)."""
    host = namespace(supervisor, "mnt"), namespace(supervisor, "net")
    found = _children_in(supervisor)
    warm = warm_inits(supervisor)  # read after: an init's spare layer exists before its mount namespace
    return [pid for pid, mnt, net in found if (mnt == host[0] or pid in warm) and net != host[1]]
