"""Several "hosts" on one machine for `clusterctl up --hosts N`: each a network namespace with its own
address on a private bridge (DESIGN.md §7).

    bridge shbr<tag> 10.213.B.1/24  ──veth──▶  namespace shoal-<tag>-h1: eth0 10.213.B.11
                                    ──veth──▶  namespace shoal-<tag>-h2: eth0 10.213.B.12 ...
The control plane listens on the bridge address; each host's agent runs inside its namespace
(`ip netns exec`). Nothing is routed to the outside: the bridge has no uplink. Every step
registers its undo, so a failure half-way leaves nothing behind. Uses iproute2's `ip`.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import subprocess
from dataclasses import dataclass, field

from cli.client import CliError


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise CliError(f"ip {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout


@dataclass
class HostNetwork:
    bridge: str
    gateway: str
    namespaces: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)


def _free_subnet(tag: str) -> ipaddress.IPv4Network:
    used = [ipaddress.ip_network(line.split()[0], strict=False)
            for line in _ip("-4", "route", "show", "table", "all").splitlines()
            if line and line.split()[0][0].isdigit()]
    start = int(tag[:2], 16)
    for offset in range(256):
        candidate = ipaddress.IPv4Network(f"10.213.{(start + offset) % 256}.0/24")
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise CliError("no free /24 in 10.213.0.0/16 for the local hosts' bridge")


def state_tag(state_dir: str, length: int) -> str:
    """A local cluster's mark on what it makes in the kernel (names of links, namespaces, cgroups),
    so that two clusters (different state dirs) never share one."""
    return hashlib.sha256(os.path.abspath(state_dir).encode()).hexdigest()[:length]


def create(state_dir: str, hosts: int) -> HostNetwork:
    tag = state_tag(state_dir, 6)
    subnet = _free_subnet(tag)
    gateway = str(subnet.network_address + 1)
    network = HostNetwork(bridge=f"shbr{tag}", gateway=gateway)
    with contextlib.ExitStack() as undo:
        _ip("link", "add", network.bridge, "type", "bridge")
        undo.callback(_ip, "link", "del", network.bridge)
        _ip("addr", "add", f"{gateway}/24", "dev", network.bridge)
        _ip("link", "set", network.bridge, "up")
        for index in range(1, hosts + 1):
            namespace, veth = f"shoal-{tag}-h{index}", f"sh{tag}h{index}"
            address = str(subnet.network_address + 10 + index)
            _ip("netns", "add", namespace)
            undo.callback(_ip, "netns", "del", namespace)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            _ip("link", "set", veth, "master", network.bridge, "up")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            network.namespaces.append(namespace)
            network.addresses.append(address)
        undo.pop_all()
    return network


def delete(network: HostNetwork) -> None:
    """Each host's veth is deleted from this side first: the kernel tears a deleted namespace down
    asynchronously, and with bridges, VXLAN devices and rules inside, its end of the pair can
    outlive `ip netns del` by a while."""
    tag = network.bridge.removeprefix("shbr")
    for index, namespace in enumerate(network.namespaces, start=1):
        with contextlib.suppress(CliError):
            _ip("link", "del", f"sh{tag}h{index}")
        with contextlib.suppress(CliError):
            _ip("netns", "del", namespace)
    with contextlib.suppress(CliError):
        _ip("link", "del", network.bridge)
