"""The node's container network as one domain object: what the container service asks for when a
bridged container starts or ends, and what cluster membership tells it about the other nodes.

State that must survive an agent restart is either in the kernel (bridge, routes, rules: found
again by name, alias or protocol number), in each container's record (its address and ports,
re-adopted by `adopt`), or in `<state>/network.json` (the subnet, the cluster's CIDR and routing
mode). What IP forwarding was before any agent turned it on is in /run/shoal, for the last
agent of the host to put back. Nothing is leased twice after a restart,
and nothing is lost: the firewall rules are recomputed from the containers that run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any

from agent.errors import Conflict, InvalidSpec, ShoalError, Unavailable
from agent.network import dns, links
from agent.network.firewall import Firewall
from agent.network.plan import (
    VXLAN_OVERHEAD,
    AddressPool,
    Chains,
    Peer,
    PortMapping,
    Subnet,
    firewall_rules,
    nameservers,
    remote_peers,
)

log = logging.getLogger(__name__)

ROUTINGS = ("host-gw", "vxlan")


@dataclass(frozen=True, slots=True)
class Attachment:
    """What a bridged container gets: its address, and what the supervisor needs to wire it."""

    address: str
    launch: dict[str, Any]
    nameserver: str


@dataclass
class Attached:
    address: str
    name: str
    ports: tuple[PortMapping, ...] = ()


@dataclass
class ClusterView:
    cluster_cidr: str = ""
    routing: str = "host-gw"
    node_ip: str = ""
    peers: list[Peer] = field(default_factory=list)
    names: dict[str, list[str]] = field(default_factory=dict)


def validate_bridge_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,12}", name):
        raise InvalidSpec("--bridge", f"{name!r}: 1 to 12 letters, digits, - or _ (it also names the "
                                      "agent's VXLAN device and iptables chains)")


class NetworkManager:
    def __init__(self, *, state_dir: str, bridge: str, mtu: int, subnet: str = "") -> None:
        validate_bridge_name(bridge)
        self.path = os.path.join(state_dir, "network.json")
        self.bridge = bridge
        self.base_mtu = mtu
        self.chains = Chains(bridge)
        self.firewall = Firewall(self.chains)
        self.links = links.Links()
        self.attached: dict[str, Attached] = {}
        self.dns: dns.DnsServer | None = None
        self.vxlan: int | None = None  # the VXLAN device's index, in vxlan routing once set up
        self.problem = ""  # why the kernel side could not be set up (bridged containers fail with it)
        self._saved = self._load()
        # The subnet the control plane gave this node before a restart wins over --subnet, so
        # containers re-adopted (before the kernel side is set up by start()) keep their addresses.
        saved = self._saved.get("subnet")
        self.view = ClusterView(cluster_cidr=self._saved.get("cluster_cidr", ""),
                                routing=self._saved.get("routing", "host-gw"), node_ip=self._saved.get("node_ip", ""))
        self.subnet = Subnet.parse(saved) if saved else Subnet.parse(subnet) if subnet else None
        self.pool = AddressPool(self.subnet) if self.subnet else None
        self._sync: asyncio.Task[None] | None = None
        self._stale = False
        self._lock = asyncio.Lock()
        self._rules_lock = asyncio.Lock()

    # ---- persisted settings ---------------------------------------------------------------------
    def _load(self) -> dict[str, str]:
        with contextlib.suppress(FileNotFoundError, ValueError), open(self.path) as f:
            data: dict[str, str] = json.load(f)
            return data
        return {}

    def _save(self, **changes: str) -> None:
        self._saved.update(changes)
        with open(self.path + ".tmp", "w") as f:
            json.dump(self._saved, f)
        os.replace(self.path + ".tmp", self.path)

    @property
    def mtu(self) -> int:
        return self.base_mtu - VXLAN_OVERHEAD if self.view.routing == "vxlan" else self.base_mtu

    # ---- set-up and teardown --------------------------------------------------------------------
    async def start(self) -> None:
        """The kernel side, once the containers found running have been adopted (their published
        ports are in the first set of rules, so an agent restart never drops them)."""
        if self.subnet is not None:
            await self._configure(self.subnet)

    async def join(self, *, subnet: str, cluster_cidr: str, routing: str, node_ip: str) -> None:
        """The control plane's answer to registration: this node's subnet and the cluster's plan."""
        if routing not in ROUTINGS:  # a newer control plane: keep what runs, and say why nothing new can
            self.problem = f"the control plane asked for routing mode {routing!r}, which this agent does not know"
            log.error("%s", self.problem)
            return
        self.view.cluster_cidr, self.view.routing, self.view.node_ip = cluster_cidr, routing, node_ip
        self._save(subnet=subnet, cluster_cidr=cluster_cidr, routing=routing, node_ip=node_ip)
        await self._configure(Subnet.parse(subnet, "subnet"))

    async def _configure(self, subnet: Subnet) -> None:
        try:
            await self._set_up(subnet)
            self.problem = ""
        except (ShoalError, OSError) as e:
            self.problem = f"the node's container network is not set up: {e}"
            log.error("%s", self.problem)

    async def _set_up(self, subnet: Subnet) -> None:
        async with self._lock:
            if self.subnet != subnet:
                if self.subnet is not None:
                    log.warning("container subnet changes from %s to %s: running containers keep their "
                                "old addresses until they restart", self.subnet, subnet)
                await self._close_dns()
                self.subnet = subnet
                previous = self.pool.leases if self.pool else {}
                self.pool = AddressPool(subnet)
                for owner, address in previous.items():  # only what the new subnet holds stays leased
                    if address in subnet.network:
                        self.pool.lease(owner, str(address))
            links.enable_ip_forward()
            await self.links.ensure_bridge(self.bridge, subnet, self.mtu)
            self.vxlan = None
            if self.view.routing == "vxlan" and self.view.node_ip:
                self.vxlan = await self.links.ensure_vxlan(self.bridge, subnet, self.view.node_ip, self.mtu)
            else:
                await self.links.delete_link(links.vxlan_name(self.bridge))
            await self._apply_rules()
            if self.dns is None:
                try:
                    self.dns = await dns.serve(str(subnet.gateway), self.lookup, self._upstreams)
                except OSError as e:  # containers then get the host's resolvers, and no names
                    log.error("the DNS server cannot listen on %s:53 (%s): containers use the host's resolvers "
                              "and cluster names do not resolve", subnet.gateway, e.strerror)
            log.info("container network: bridge %s, subnet %s, gateway %s, DNS %s, MTU %d, routing %s",
                     self.bridge, subnet, subnet.gateway, "on" if self.dns else "off", self.mtu, self.view.routing)

    async def _close_dns(self) -> None:
        if self.dns is not None:
            await self.dns.close()
            self.dns = None

    async def close(self, *, teardown: bool) -> None:
        """At agent stop. With `teardown` (no bridged container runs any more) everything the agent
        made goes: rules, routes, VXLAN device, bridge, and IP forwarding if it turned it on."""
        if self._sync is not None:
            self._sync.cancel()
            await asyncio.gather(self._sync, return_exceptions=True)
        await self._close_dns()
        try:
            if teardown:
                await self._teardown()
        finally:
            self.links.close()

    async def _teardown(self) -> None:
        async with self._rules_lock:
            await self.firewall.remove()
        await self.links.remove_routes()
        await self.links.delete_link(links.vxlan_name(self.bridge))
        await self.links.delete_link(self.bridge)
        if not await self.links.shoal_links_remain():
            links.restore_ip_forward()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    # ---- containers -----------------------------------------------------------------------------
    async def attach(self, container_id: str, name: str, ports: tuple[PortMapping, ...]) -> Attachment:
        if self.problem:
            raise Unavailable(self.problem)
        if self.subnet is None or self.pool is None:
            raise Unavailable("this node has no container subnet yet (it gets one when it registers with the "
                              "control plane); use --network none or host meanwhile")
        self._check_ports(container_id, ports)
        address = str(self.pool.lease(container_id))
        self.attached[container_id] = Attached(address, name, ports)
        if ports:
            try:
                await self._apply_rules()
            except BaseException:
                self.detach(container_id)
                raise
        return self._attachment(address)

    def attachment_of(self, container_id: str) -> Attachment | None:
        """The attachment of a container that holds its address already (it was attached at create)."""
        held = self.attached.get(container_id)
        return self._attachment(held.address) if held is not None else None

    def _attachment(self, address: str) -> Attachment:
        assert self.subnet is not None
        launch = {**self.link(), "address": address, "prefix": self.subnet.network.prefixlen,
                  "gateway": str(self.subnet.gateway)}
        return Attachment(address, launch, str(self.subnet.gateway) if self.dns else "")

    def link(self) -> dict[str, Any]:
        """The bridge a container's veth goes on: sent at create too, so the supervisor makes the
        veth while the container sets itself up (its address comes with the start)."""
        return {"bridge": self.bridge, "mtu": self.mtu}

    @property
    def ready(self) -> bool:
        return self.subnet is not None and not self.problem

    def _check_ports(self, container_id: str, ports: tuple[PortMapping, ...]) -> None:
        for mapping in ports:
            for owner, other in self.attached.items():
                if owner != container_id and any(p.host_key == mapping.host_key for p in other.ports):
                    raise Conflict(f"host port {mapping.host_key} is already published by container {other.name}")
            kind = socket.SOCK_STREAM if mapping.protocol == "tcp" else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, kind) as probe:
                try:
                    probe.bind(("0.0.0.0", mapping.host_port))
                except OSError as e:
                    raise Conflict(f"host port {mapping.host_key} is in use on this host ({e.strerror})") from None

    def adopt(self, container_id: str, name: str, address: str, ports: tuple[PortMapping, ...]) -> None:
        """A container found running (or created with its address) after an agent restart keeps
        its address and ports."""
        if self.pool is None or not address:
            return
        self.pool.lease(container_id, address)
        self.attached[container_id] = Attached(address, name, ports)

    def detach(self, container_id: str) -> None:
        """The container ended (its veth went with its namespace): its address and ports are free."""
        if self.pool is not None:
            self.pool.release(container_id)
        gone = self.attached.pop(container_id, None)
        if gone is not None and gone.ports:
            self._resync()

    def _resync(self) -> None:
        """Rules follow in the background (an exit is handled synchronously); changes that arrive
        while they are being applied are applied right after, never lost."""
        self._stale = True
        if self._sync is None or self._sync.done():
            self._sync = asyncio.get_running_loop().create_task(self._apply_rules_logged())

    async def _apply_rules_logged(self) -> None:
        while self._stale:
            self._stale = False
            try:
                await self._apply_rules()
            except Exception:  # the next change retries; a rule left behind points at a free address
                log.exception("updating the published ports failed")

    async def _apply_rules(self) -> None:
        """Computed under the lock, so the last to apply always writes the current state."""
        async with self._rules_lock:
            if self.subnet is None:
                return
            published = [(p.address, mapping) for p in self.attached.values() for mapping in p.ports]
            await self.firewall.apply(firewall_rules(self.chains, self.subnet,
                                                     self.view.cluster_cidr or str(self.subnet), published))

    # ---- the cluster ----------------------------------------------------------------------------
    async def update_view(self, peers: list[Peer], names: dict[str, list[str]]) -> None:
        """The other nodes and the service names, from the control plane; routes follow at once."""
        self.view.names = names
        if self.subnet is None or self.problem:
            return
        async with self._lock:
            local = await self.links.local_addresses()
            remote = remote_peers(peers, self.subnet, local)
            if remote == self.view.peers:
                return
            await self.links.sync_routes(remote, self.vxlan)
            self.view.peers = remote
            log.info("routes to %d other nodes' subnets (%s)", len(remote), self.view.routing)

    # ---- DNS ------------------------------------------------------------------------------------
    def lookup(self, name: str) -> list[str] | None:
        if name in self.view.names:
            return list(self.view.names[name])
        found = [p.address for p in self.attached.values() if p.name.lower() == name]  # DNS ignores case
        return found or None

    @staticmethod
    def _upstreams() -> list[tuple[str, int]]:
        with contextlib.suppress(OSError), open("/etc/resolv.conf") as f:
            return [(server, 53) for server in nameservers(f.read())]
        return []
