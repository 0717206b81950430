"""The host side of container networking through netlink (pyroute2): the bridge, the VXLAN device
and its peers, routes to other nodes' subnets. None of it is on a container's start path (the
veth is made by the supervisor with one raw message: agent/supervisor/netlink.py).

Everything the agent makes is recognisable, so it can be found again after a restart and removed
at teardown without touching anything else: its links carry the alias `shoal`, its routes the
protocol number ROUTE_PROTOCOL.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.errors import Conflict
from agent.network.plan import Peer, Subnet, vtep_mac

ALIAS = "shoal"
ROUTE_PROTOCOL = 115  # rtnetlink protocol number marking Shoal's routes (not in /etc/iproute2/rt_protos)
RT_TABLE_MAIN = 254
RTNH_F_ONLINK = 4
NUD_PERMANENT = 0x80
VXLAN_ID = 1
VXLAN_PORT = 4789  # IANA's VXLAN port
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def vxlan_name(bridge: str) -> str:
    return f"vx-{bridge}"


class Links:
    """One netlink socket for the agent's lifetime (DESIGN.md §2: keep it open, do not reconnect)."""

    def __init__(self) -> None:
        self.ipr = AsyncIPRoute()

    def close(self) -> None:
        self.ipr.close()

    async def _index(self, name: str) -> int | None:
        found = await self.ipr.link_lookup(ifname=name)
        return int(found[0]) if found else None

    async def local_addresses(self) -> set[str]:
        return {str(a.get("address")) async for a in await self.ipr.addr("dump", family=socket.AF_INET)}

    async def _routes(self, **match: Any) -> list[Any]:
        return [r async for r in await self.ipr.route("dump", family=socket.AF_INET, table=RT_TABLE_MAIN, **match)]

    async def check_overlap(self, bridge: str, subnet: Subnet) -> None:
        """A subnet the host already uses elsewhere would shadow or break its own networks."""
        own = await self._index(bridge)
        for route in await self._routes():
            dst_len = route["dst_len"]
            dst = route.get("dst") or "0.0.0.0"
            if dst_len == 0 or route.get("oif") == own or route["proto"] == ROUTE_PROTOCOL:
                continue
            network = ipaddress.IPv4Network(f"{dst}/{dst_len}", strict=False)
            if network.overlaps(subnet.network):
                links = {int(link["index"]): link.get("ifname") async for link in await self.ipr.get_links()}
                raise Conflict(f"the container subnet {subnet} overlaps the host's network {network} "
                               f"on {links.get(route.get('oif'), 'another interface')}: choose another "
                               f"(--subnet, or the control plane's --cluster-cidr)")

    async def ensure_bridge(self, name: str, subnet: Subnet, mtu: int) -> int:
        """The bridge, up, holding exactly the subnet's gateway address; returns its index."""
        await self.check_overlap(name, subnet)
        index = await self._index(name)
        if index is None:
            await self.ipr.link("add", ifname=name, kind="bridge")
            index = await self._index(name)
            assert index is not None
        await self.ipr.link("set", index=index, state="up", mtu=mtu, ifalias=ALIAS)
        gateway = str(subnet.gateway)
        for addr in [a async for a in await self.ipr.addr("dump", family=socket.AF_INET, index=index)]:
            if (addr.get("address"), addr["prefixlen"]) != (gateway, subnet.network.prefixlen):
                await self.ipr.addr("del", index=index, address=addr.get("address"), prefixlen=addr["prefixlen"])
        await self._add_address(index, gateway, subnet.network.prefixlen)
        return index

    async def _add_address(self, index: int, address: str, prefixlen: int) -> None:
        try:
            await self.ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
        except NetlinkError as e:
            if e.code != 17:  # EEXIST: it has it already
                raise

    async def delete_link(self, name: str) -> None:
        index = await self._index(name)
        if index is not None:
            await self.ipr.link("del", index=index)

    async def shoal_links_remain(self) -> bool:
        """Whether another agent's bridge or VXLAN device lives in this namespace too."""
        return any([link.get("ifalias") == ALIAS async for link in await self.ipr.get_links()])

    async def ensure_vxlan(self, bridge: str, subnet: Subnet, local: str, mtu: int) -> int:
        """The node's VXLAN device: no learning (peers are programmed from the control plane's
        view), the subnet's network address as its own, and a MAC derived from it."""
        name = vxlan_name(bridge)
        index = await self._index(name)
        if index is None:
            await self.ipr.link("add", ifname=name, kind="vxlan", vxlan_id=VXLAN_ID, vxlan_port=VXLAN_PORT,
                                vxlan_local=local, vxlan_learning=0, address=vtep_mac(subnet))
            index = await self._index(name)
            assert index is not None
        await self.ipr.link("set", index=index, state="up", mtu=mtu, ifalias=ALIAS)
        await self._add_address(index, str(subnet.vtep), 32)
        return index

    async def sync_routes(self, peers: list[Peer], vxlan_index: int | None) -> None:
        """Installs a route per peer subnet (via the peer's address, or through the VXLAN device to
        the peer's endpoint), and removes every Shoal route no longer wanted."""
        wanted = {p.subnet: p for p in peers}
        for route in await self._routes(proto=ROUTE_PROTOCOL):
            key = f"{route.get('dst')}/{route['dst_len']}"
            peer = wanted.get(key)
            via = route.get("gateway")
            if peer is None or via != (peer.vtep if vxlan_index else peer.address):
                await self.ipr.route("del", dst=key, proto=ROUTE_PROTOCOL)
        if vxlan_index is not None:
            await self._prune_fdb(vxlan_index, {(p.vtep_mac, p.address) for p in peers})
        for peer in peers:
            if vxlan_index is None:
                await self.ipr.route("replace", dst=peer.subnet, gateway=peer.address, proto=ROUTE_PROTOCOL)
                continue
            await self.ipr.neigh("replace", dst=peer.vtep, lladdr=peer.vtep_mac, ifindex=vxlan_index,
                                 state=NUD_PERMANENT)
            try:
                await self.ipr.fdb("append", ifindex=vxlan_index, lladdr=peer.vtep_mac, dst=peer.address)
            except NetlinkError as e:
                if e.code != 17:
                    raise
            await self.ipr.route("replace", dst=peer.subnet, gateway=peer.vtep, oif=vxlan_index,
                                 flags=RTNH_F_ONLINK, proto=ROUTE_PROTOCOL)

    async def _prune_fdb(self, index: int, wanted: set[tuple[str, str]]) -> None:
        """Forwarding entries of peers that left or moved (entries are appended, never replaced)."""
        for entry in [e async for e in await self.ipr.fdb("dump", ifindex=index)]:
            mac, dst = entry.get("lladdr"), entry.get("dst")
            if entry.get("ifindex") == index and dst and (mac, dst) not in wanted:
                await self.ipr.fdb("del", ifindex=index, lladdr=mac, dst=dst)

    async def remove_routes(self) -> None:
        for route in await self._routes(proto=ROUTE_PROTOCOL):
            await self.ipr.route("del", dst=f"{route.get('dst')}/{route['dst_len']}", proto=ROUTE_PROTOCOL)


def _forwarding_mark() -> str:
    """Per network namespace (IP forwarding is a setting of each), in /run: host-wide, and gone at
    reboot, like the setting itself."""
    return f"/run/shoal/ip_forward.before.{os.stat('/proc/self/ns/net').st_ino}"


def enable_ip_forward() -> None:
    """Turns IP forwarding on, remembering what it was for every agent of this namespace, so that
    the last one to go can put it back."""
    with open(IP_FORWARD) as f:
        before = f.read().strip()
    if before == "1":
        return
    mark = _forwarding_mark()
    os.makedirs(os.path.dirname(mark), exist_ok=True)
    with contextlib.suppress(FileExistsError), open(mark, "x") as f:
        f.write(before)
    with open(IP_FORWARD, "w") as f:
        f.write("1")


def restore_ip_forward() -> None:
    """What `enable_ip_forward` found, once no agent's bridge is left here (the caller checks)."""
    mark = _forwarding_mark()
    try:
        with open(mark) as f:
            before = f.read().strip()
    except FileNotFoundError:
        return
    with open(IP_FORWARD, "w") as f:
        f.write(before or "0")
    os.unlink(mark)
    with contextlib.suppress(OSError):  # the directory goes with its last mark
        os.rmdir(os.path.dirname(mark))
