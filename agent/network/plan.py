"""Network decisions that need no kernel (pure, unit-tested): published ports, address leases,
the firewall rules, the per-container /etc files, and the routes to other nodes' subnets."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from agent.errors import Exhausted, InvalidSpec

VXLAN_OVERHEAD = 50  # outer Ethernet, IP, UDP and VXLAN headers


@dataclass(frozen=True, slots=True, kw_only=True)
class PortMapping:
    """A published port: traffic to the node's HOST_PORT goes to the container's CONTAINER_PORT."""

    host_port: int
    container_port: int
    protocol: str = "tcp"

    def __str__(self) -> str:
        return f"{self.host_port}:{self.container_port}/{self.protocol}"

    @property
    def host_key(self) -> str:
        """What two containers on one node must not share."""
        return f"{self.host_port}/{self.protocol}"


def check_ports(mappings: Iterable[PortMapping], field: str = "ports") -> None:
    seen: set[str] = set()
    for mapping in mappings:
        if mapping.host_key in seen:
            raise InvalidSpec(field, f"host port {mapping.host_key} is published twice")
        seen.add(mapping.host_key)


@dataclass(frozen=True, slots=True)
class Subnet:
    """A node's container subnet: the bridge holds the first address, containers get the rest."""

    network: ipaddress.IPv4Network

    @classmethod
    def parse(cls, text: str, field: str = "--subnet") -> Subnet:
        try:
            network = ipaddress.IPv4Network(text)
        except ValueError as e:
            raise InvalidSpec(field, f"{text!r}: an IPv4 network such as 10.88.0.0/16 ({e})") from None
        if network.prefixlen > 29:
            raise InvalidSpec(field, f"{text!r}: at most /29 (it needs room for the bridge and containers)")
        return cls(network)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.network.network_address + 1

    @property
    def vtep(self) -> ipaddress.IPv4Address:
        """The node's VXLAN endpoint address: the subnet's network address, which no container gets."""
        return self.network.network_address

    def __str__(self) -> str:
        return str(self.network)


class AddressPool:
    """Container addresses of one subnet. Allocation goes round the pool (like the host-local IPAM
    plugin) so that an address freed by an exiting container is not handed out again at once,
    while peers may still have it cached."""

    def __init__(self, subnet: Subnet) -> None:
        self.subnet = subnet
        self.leases: dict[str, ipaddress.IPv4Address] = {}
        self._last = int(subnet.gateway)

    def lease(self, owner: str, address: str = "") -> ipaddress.IPv4Address:
        """The owner's address: the one it holds, the one asked for (re-adoption), else the next free."""
        if owner in self.leases:
            return self.leases[owner]
        if address:
            wanted = ipaddress.IPv4Address(address)
            if wanted in self.subnet.network and wanted not in self.leases.values():
                self.leases[owner] = wanted
                return wanted
        first = int(self.subnet.gateway) + 1
        taken = {int(a) for a in self.leases.values()}
        size = self.capacity
        for step in range(1, size + 1):
            candidate = first + (self._last - first + step) % size
            if candidate not in taken:
                self._last = candidate
                self.leases[owner] = ipaddress.IPv4Address(candidate)
                return self.leases[owner]
        raise Exhausted(f"no free address left in the node's container subnet {self.subnet} "
                        f"({size} containers hold them all)")

    def release(self, owner: str) -> None:
        self.leases.pop(owner, None)

    @property
    def capacity(self) -> int:
        """Addresses containers can get: all but the network, the bridge's and the broadcast."""
        return int(self.subnet.network.num_addresses) - 3


@dataclass(frozen=True, slots=True)
class Chains:
    """The agent's own iptables chains; named after its bridge so agents sharing a host never touch
    each other's rules (iptables chain names are at most 28 characters; bridges at most 12)."""

    bridge: str

    @property
    def nat_post(self) -> str:
        return f"SHOAL-POST-{self.bridge}"

    @property
    def nat_ports(self) -> str:
        return f"SHOAL-PORTS-{self.bridge}"

    @property
    def forward(self) -> str:
        return f"SHOAL-FWD-{self.bridge}"

    def jumps(self) -> list[tuple[str, str, list[str]]]:
        """(table, built-in chain, rule) hooking each chain in; inserted once, removed at teardown."""
        local = ["-m", "addrtype", "--dst-type", "LOCAL"]
        return [("nat", "POSTROUTING", ["-j", self.nat_post]),
                ("nat", "PREROUTING", [*local, "-j", self.nat_ports]),
                ("nat", "OUTPUT", ["!", "-d", "127.0.0.0/8", *local, "-j", self.nat_ports]),
                ("filter", "FORWARD", ["-j", self.forward])]


def firewall_rules(chains: Chains, subnet: Subnet, cluster_cidr: str,
                   published: Iterable[tuple[str, PortMapping]]) -> str:
    """The agent's chains in iptables-restore form (applied with --noflush: declaring a chain
    flushes it, so the whole set is replaced atomically and nothing else is touched).

    - egress: containers reaching beyond the cluster are masqueraded behind the node's address;
      traffic between containers of the cluster keeps its source address (no NAT between them);
    - hairpin: a container reaching a published port of its own node is masqueraded too, so the
      answer comes back through the node;
    - published ports: DNAT from any local address of the node to the container.
    """
    bridge = chains.bridge
    lines = ["*nat", f":{chains.nat_post} - [0:0]", f":{chains.nat_ports} - [0:0]",
             f"-A {chains.nat_post} -s {subnet} ! -o {bridge} ! -d {cluster_cidr} -j MASQUERADE",
             f"-A {chains.nat_post} -s {subnet} -d {subnet} -o {bridge} -m conntrack --ctstate DNAT -j MASQUERADE"]
    for address, mapping in sorted(published, key=lambda item: (item[1].host_port, item[1].protocol)):
        lines.append(f"-A {chains.nat_ports} -p {mapping.protocol} -m {mapping.protocol} "
                     f"--dport {mapping.host_port} -j DNAT --to-destination {address}:{mapping.container_port}")
    lines += ["COMMIT", "*filter", f":{chains.forward} - [0:0]",
              f"-A {chains.forward} -o {bridge} -j ACCEPT", f"-A {chains.forward} -i {bridge} -j ACCEPT", "COMMIT"]
    return "\n".join(lines) + "\n"


def hosts_file(hostname: str, address: str) -> str:
    own = f"{address}\t{hostname}\n" if address else f"127.0.1.1\t{hostname}\n"
    return f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{own}"


def resolv_conf(host_resolv: str, nameserver: str) -> str:
    """The host's resolv.conf, or for a bridged container the node's DNS server in place of its
    nameservers, with ndots:0 so a bare app name is asked as it is before any search domain."""
    if not nameserver:
        return host_resolv
    kept = [line for line in host_resolv.splitlines() if line.split()[:1] in (["search"], ["domain"])]
    return "\n".join([f"nameserver {nameserver}", *kept, "options ndots:0"]) + "\n"


def nameservers(host_resolv: str) -> list[str]:
    return [parts[1] for parts in (line.split() for line in host_resolv.splitlines())
            if len(parts) >= 2 and parts[0] == "nameserver"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Peer:
    """Another node as the control plane describes it."""

    name: str
    address: str  # the node's IP on the hosts' network
    subnet: str

    @property
    def vtep(self) -> str:
        return str(Subnet.parse(self.subnet).vtep)

    @property
    def vtep_mac(self) -> str:
        return vtep_mac(Subnet.parse(self.subnet))


def vtep_mac(subnet: Subnet) -> str:
    """A node's VXLAN device address, derived from its subnet (locally administered: 0a:58 and the
    subnet's four bytes), so peers need no exchange of MAC addresses."""
    return "0a:58:" + ":".join(f"{b:02x}" for b in subnet.vtep.packed)


def remote_peers(peers: Iterable[Peer], own_subnet: Subnet, local_addresses: set[str]) -> list[Peer]:
    """The peers to route to: not this node, and not another agent on this same host (its bridge
    is local: the kernel already routes to it)."""
    return sorted((p for p in peers if p.subnet != str(own_subnet) and p.address not in local_addresses
                   and p.subnet and p.address), key=lambda p: p.subnet)
