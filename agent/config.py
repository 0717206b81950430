"""The agent's settings, their defaults, and their validation (pure)."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field

from agent.errors import InvalidSpec

DEFAULT_STATE_DIR = "/var/lib/shoal/agent"
DEFAULT_CGROUP_PARENT = "shoal"
DEFAULT_METRICS = "127.0.0.1:9420"
DEFAULT_CERTS_DIR = "/etc/shoal/certs.d"
DEFAULT_BRIDGE = "shoal0"
DEFAULT_SUBNET = "10.88.0.0/16"  # Podman's default: a standalone agent's containers


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    state_dir: str = DEFAULT_STATE_DIR
    listen: tuple[str, ...] = ()  # unix:///PATH or HOST:PORT each; default unix://<state_dir>/agent.sock
    cgroup_parent: str = DEFAULT_CGROUP_PARENT
    metrics_listen: str = DEFAULT_METRICS  # HOST:PORT, or "off"
    log_max_bytes: int = 10 << 20
    log_max_files: int = 3
    server: str = ""  # HOST:PORT of a control plane to join; empty: standalone
    labels: dict[str, str] = field(default_factory=dict)
    node_name: str = ""  # default: the hostname
    advertise_address: str = ""  # HOST:PORT where the control plane reaches this agent's API
    insecure_registries: tuple[str, ...] = ()  # host:port pulled over plain HTTP
    registry_certs_dir: str = DEFAULT_CERTS_DIR
    registry_auth_file: str = ""  # Docker-style config.json for pulls that bring no credentials
    image_gc_high_percent: int = 85  # over this much of the store's filesystem used, unused images go...
    image_gc_low_percent: int = 80  # ...until it is down to this
    image_gc_interval: float = 60.0  # seconds between checks
    bridge: str = DEFAULT_BRIDGE
    subnet: str = DEFAULT_SUBNET  # standalone only: in a cluster the control plane assigns one
    mtu: int = 1500
    node_ip: str = ""  # default: the advertised address's host, else the source address towards --server
    remove_network: bool = False  # not an agent: remove a stopped agent's network and exit
    lean_socket: bool = True  # the lean local transport beside each unix:// gRPC socket (agent/api/lean.py)

    @property
    def grpc_addresses(self) -> tuple[str, ...]:
        return self.listen or (f"unix://{os.path.join(self.state_dir, 'agent.sock')}",)

    @property
    def advertise(self) -> str:
        """Where the control plane proxies logs and exec to: the flag, else the first TCP listener
        bound to a specific address (a wildcard bind names no reachable host)."""
        if self.advertise_address:
            return self.advertise_address
        for address in self.grpc_addresses:
            host = address.rpartition(":")[0].strip("[]")
            if not address.startswith("unix://") and host not in ("", "0.0.0.0", "::"):
                return address
        return ""

    def validate(self) -> None:
        if not os.path.isabs(self.state_dir):
            raise InvalidSpec("--state-dir", f"{self.state_dir!r} must be an absolute path")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", self.cgroup_parent.strip("/")):
            raise InvalidSpec("--cgroup-parent", f"{self.cgroup_parent!r}: a cgroup path of [A-Za-z0-9_.-] names")
        for address in self.grpc_addresses:
            if not (address.startswith("unix://") or re.fullmatch(r"\[?[\w.:-]*\]?:\d+", address)):
                raise InvalidSpec("--listen", f"{address!r}: expected unix:///PATH or HOST:PORT")
        if self.advertise_address and not re.fullmatch(r"\[?[\w.:-]+\]?:\d+", self.advertise_address):
            raise InvalidSpec("--advertise-address", f"{self.advertise_address!r}: expected HOST:PORT")
        if self.metrics_listen != "off" and not re.fullmatch(r"[\w.-]*:\d+", self.metrics_listen):
            raise InvalidSpec("--metrics-listen", f"{self.metrics_listen!r}: expected HOST:PORT or off")
        for key in self.labels:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_./-]*", key):
                raise InvalidSpec("--label", f"{key!r}: a label key is [A-Za-z0-9][A-Za-z0-9_./-]*")
        if self.server and not re.fullmatch(r"[\w.:\[\]-]+:\d+", self.server):
            raise InvalidSpec("--server", f"{self.server!r}: expected HOST:PORT of a shoal-controlplane")
        if not 0 <= self.image_gc_low_percent <= self.image_gc_high_percent <= 100:
            raise InvalidSpec("--image-gc-low-percent", "0 <= low <= high <= 100 (--image-gc-high-percent 100: never)")
        if self.image_gc_interval <= 0:
            raise InvalidSpec("--image-gc-interval", "a positive number of seconds")
        if not 576 <= self.mtu <= 65535:
            raise InvalidSpec("--mtu", f"{self.mtu}: between 576 and 65535")
        if self.node_ip:
            try:
                ipaddress.IPv4Address(self.node_ip)
            except ValueError:
                raise InvalidSpec("--node-ip", f"{self.node_ip!r}: an IPv4 address") from None
        if self.log_max_bytes < 4096 or self.log_max_files < 1:
            raise InvalidSpec("--log-max-size", "at least 4096 bytes and at least one file")
