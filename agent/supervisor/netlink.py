"""Raw rtnetlink for the container start path: a veth pair, and the container's address and route.

Why not pyroute2 here: the supervisor must stay lean (DESIGN.md §2), and a veth through pyroute2
costs about 7 ms of Python around the same single RTM_NEWLINK this module sends in about 1 ms
(research/bench-results.md §3). The agent uses pyroute2 for everything off the start path
(bridge, routes, VXLAN). Message layouts are those of <linux/rtnetlink.h> and <linux/if_link.h>.

- `create_veth` (supervisor, host namespace): one RTM_NEWLINK makes the pair, puts the host end
  on the bridge and the peer, already named eth0, straight into the container's new network
  namespace (IFLA_NET_NS_PID in the peer's attributes), both up.
- `configure_interface` (container's child, inside its namespace): its address and default route
  in one batch of two messages.
"""

from __future__ import annotations

import os
import socket
import struct

RTM_NEWLINK, RTM_SETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 19, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
IFF_UP = 0x1
IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_PID = 3, 4, 10, 18, 19
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_OIF, RTA_GATEWAY = 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

_HEADER = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _name(value: str) -> bytes:
    return value.encode() + b"\0"


def _link(*attrs: bytes, index: int = 0, up: bool = False) -> bytes:
    """An ifinfomsg (asking for the link up when `up`: flags and change mask IFF_UP) and its attributes."""
    flags = IFF_UP if up else 0
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, flags) + b"".join(attrs)


def _message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return _HEADER.pack(_HEADER.size + len(body), kind, flags, seq, 0) + body


def _transact(messages: list[tuple[int, bytes]], what: str) -> None:
    """Sends the messages in one write and waits for every acknowledgement; raises OSError naming
    `what` with the kernel's errno for the first that failed."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE) as sock:
        sock.sendall(b"".join(_message(kind, CREATE, seq, body) for seq, (kind, body) in enumerate(messages, 1)))
        pending = set(range(1, len(messages) + 1))
        while pending:
            data = sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind, _flags, seq, _pid = _HEADER.unpack_from(data, offset)
                if kind == NLMSG_ERROR:
                    error = -struct.unpack_from("=i", data, offset + _HEADER.size)[0]
                    if error:
                        raise OSError(error, f"{what}: {os.strerror(error)}")
                    pending.discard(seq)
                offset += (length + 3) & ~3 or len(data)


def create_veth(host_name: str, bridge_index: int, netns_pid: int, mtu: int, peer_name: str = "eth0") -> None:
    # The peer comes up from inside (configure_interface): a veth cannot be opened before both
    # ends exist, and the peer is configured first (ENOTCONN).
    peer = _link(_attr(IFLA_IFNAME, _name(peer_name)), _attr(IFLA_MTU, struct.pack("=I", mtu)),
                 _attr(IFLA_NET_NS_PID, struct.pack("=I", netns_pid)))
    info = _attr(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer)))
    body = _link(_attr(IFLA_IFNAME, _name(host_name)), _attr(IFLA_MTU, struct.pack("=I", mtu)),
                 _attr(IFLA_MASTER, struct.pack("=I", bridge_index)), info, up=True)
    _transact([(RTM_NEWLINK, body)], f"creating veth {host_name}")


def configure_interface(name: str, address: str, prefix: int, gateway: str) -> None:
    index = socket.if_nametoindex(name)
    packed = socket.inet_aton(address)
    broadcast = struct.pack("!I", struct.unpack("!I", packed)[0] | ((1 << (32 - prefix)) - 1))
    addr = struct.pack("=BBBBI", socket.AF_INET, prefix, 0, RT_SCOPE_UNIVERSE, index) + \
        _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed) + _attr(IFA_BROADCAST, broadcast)
    route = struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                        RTN_UNICAST, 0) + _attr(RTA_GATEWAY, socket.inet_aton(gateway)) + \
        _attr(RTA_OIF, struct.pack("=I", index))
    _transact([(RTM_SETLINK, _link(index=index, up=True)), (RTM_NEWADDR, addr), (RTM_NEWROUTE, route)],
              f"configuring {name} as {address}/{prefix}")
