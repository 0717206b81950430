"""The embedded etcd: with no --etcd-endpoints, the control plane runs a local etcd child process.

Its data lives in the control plane's state directory, it listens on loopback only, and a missing
binary gives the install hint instead of a traceback. Tests use the same class to run real etcd
members (one, or a three-member cluster) on free loopback ports.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
RESTART_BACKOFF = (0.2, 10.0)  # seconds before restarting an etcd that exited
STABLE_RUN = 30.0  # a run this long resets the backoff
EXIT_POLL = 0.2
INSTALL_HINT = "install it with: apt-get install etcd-server (Debian/Ubuntu), or pass --etcd-endpoints"


class EtcdNotInstalled(RuntimeError):
    pass


@dataclass
class EmbeddedEtcd:
    data_dir: str
    client_port: int
    peer_port: int
    name: str = "shoal"
    initial_cluster: str = ""  # name=http://127.0.0.1:PEER,... for a multi-member cluster
    log_path: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def command(self) -> list[str]:
        binary = shutil.which("etcd")
        if binary is None:
            raise EtcdNotInstalled(f"the etcd binary was not found on PATH; {INSTALL_HINT}")
        peer = f"http://127.0.0.1:{self.peer_port}"
        client = f"http://127.0.0.1:{self.client_port}"
        return [binary, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", self.initial_cluster or f"{self.name}={peer}",
                "--initial-cluster-state", "new", "--initial-cluster-token", "shoal",
                "--heartbeat-interval", "100", "--election-timeout", "1000", "--logger", "zap"]

    @property
    def pid_file(self) -> str:
        return self.data_dir.rstrip("/") + ".pid"

    def _end_leftover(self) -> None:
        """A control plane killed with -9 leaves its etcd running (it has a session of its own),
        holding the ports and the data: end it, after checking it is really that etcd."""
        try:
            with open(self.pid_file) as f:
                pid = int(f.read())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if self.data_dir.encode() not in f.read():
                    return
        except (OSError, ValueError):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        if os.path.exists(f"/proc/{pid}"):
            os.kill(pid, signal.SIGKILL)

    def start(self) -> None:
        """Starts the member (again, on the same data: a restart after a crash keeps its state)."""
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        self._end_leftover()
        log_path = self.log_path or os.path.join(os.path.dirname(self.data_dir), f"{self.name}.etcd.log")
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True)
        with open(self.pid_file, "w") as f:
            f.write(str(self.process.pid))

    async def supervise(self) -> None:
        """Restarts the member whenever it exits (on the same data, so nothing is lost), backing off
        while it keeps failing right away. Cancel this before stop()."""
        delay = RESTART_BACKOFF[0]
        while True:
            started = time.monotonic()
            while self.process is not None and self.process.poll() is None:
                await asyncio.sleep(EXIT_POLL)
            code = self.process.returncode if self.process is not None else None
            if time.monotonic() - started > STABLE_RUN:
                delay = RESTART_BACKOFF[0]
            log.warning("embedded etcd exited (status %s); restarting it in %.1fs", code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_BACKOFF[1])
            try:
                await asyncio.to_thread(self.start)
            except OSError as e:
                log.error("embedded etcd could not be started again: %s", e)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until etcd's /health says true. Listening is not enough: etcd accepts connections before
        it serves (it first needs a raft leader), and a gRPC handshake sent then just times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.process.returncode}; see its log")
            try:
                with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=1) as response:
                    if json.loads(response.read()).get("health") == "true":
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"etcd at {self.endpoint} was not healthy within {timeout:.0f}s")
