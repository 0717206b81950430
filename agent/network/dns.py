"""The node's DNS server for its containers (RFC 1035 over UDP, on the bridge's address, port 53).

It answers A queries for cluster names (an app's name resolves to the addresses of its running
replicas, in rotating order; a container's name on this node to its address) from a table the
agent keeps current, and forwards every other query unchanged to the host's own resolvers. The
agent runs in the host's network namespace, so even a loopback resolver of the host (such as
systemd-resolved's 127.0.0.53) works, which a resolver inside the containers could not reach.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

log = logging.getLogger(__name__)

TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
RCODE_OK, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN = 0, 1, 2, 3
TTL = 5  # seconds: replicas come and go
FORWARD_TIMEOUT = 2.0
_HEADER = struct.Struct("!HHHHHH")


@dataclass(frozen=True, slots=True)
class Question:
    id: int
    flags: int
    name: str  # lower case, without the trailing dot
    qtype: int
    qclass: int
    raw: bytes  # the question section as sent, echoed in the answer


def parse_question(packet: bytes) -> Question:
    """The first question of a query; ValueError when it is not one."""
    if len(packet) < _HEADER.size:
        raise ValueError("short packet")
    query_id, flags, qdcount, _, _, _ = _HEADER.unpack_from(packet)
    if flags & 0x8000 or qdcount < 1:
        raise ValueError("not a query")
    labels, offset = [], _HEADER.size
    while True:
        if offset >= len(packet):
            raise ValueError("truncated name")
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length > 63:
            raise ValueError("compressed or bad label in a question")
        labels.append(packet[offset:offset + length].decode("ascii", "replace").lower())
        offset += length
    if offset + 4 > len(packet):
        raise ValueError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", packet, offset)
    return Question(query_id, flags, ".".join(labels), qtype, qclass, packet[_HEADER.size:offset + 4])


def answer(question: Question, rcode: int, addresses: list[str]) -> bytes:
    """An authoritative answer: A records pointing back at the question's name (offset 12)."""
    flags = 0x8000 | 0x0400 | (question.flags & 0x0100) | 0x0080 | rcode  # QR, AA, RD copied, RA
    records = b"".join(struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4) + ipaddress.IPv4Address(a).packed
                       for a in addresses)
    return _HEADER.pack(question.id, flags, 1, len(addresses), 0, 0) + question.raw + records


def failure(packet: bytes, rcode: int) -> bytes:
    """An error reply to a packet that may not even parse (echoes the id only)."""
    query_id = struct.unpack_from("!H", packet)[0] if len(packet) >= 2 else 0
    return _HEADER.pack(query_id, 0x8000 | 0x0080 | rcode, 0, 0, 0, 0)


Lookup = Callable[[str], list[str] | None]  # a name's addresses; None when it is not a cluster name
Upstreams = Callable[[], list[tuple[str, int]]]  # the resolvers to forward to, read at each query


class _Forward(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if not self.reply.done():
            self.reply.set_result(data)


class DnsServer(asyncio.DatagramProtocol):
    def __init__(self, lookup: Lookup, upstreams: Upstreams) -> None:
        self.lookup = lookup
        self.upstreams = upstreams
        self.transport: asyncio.DatagramTransport | None = None
        self._turn = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            question = parse_question(data)
        except ValueError:
            self._reply(failure(data, RCODE_FORMERR), addr)
            return
        addresses = self.lookup(question.name) if question.qclass == CLASS_IN else None
        if addresses is None:
            task = asyncio.get_running_loop().create_task(self._forward(data, addr))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        if question.qtype != TYPE_A:  # a cluster name has only IPv4 addresses: no data, no error
            self._reply(answer(question, RCODE_OK, []), addr)
            return
        self._turn += 1
        shift = self._turn % len(addresses) if addresses else 0
        rotated = addresses[shift:] + addresses[:shift]
        self._reply(answer(question, RCODE_OK if addresses else RCODE_NXDOMAIN, rotated), addr)

    def _reply(self, packet: bytes, addr: tuple[str | object, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(packet, addr)

    async def _forward(self, packet: bytes, addr: tuple[str | object, int]) -> None:
        loop = asyncio.get_running_loop()
        for upstream in self.upstreams():
            transport, protocol = await loop.create_datagram_endpoint(_Forward, remote_addr=upstream)
            try:
                transport.sendto(packet)
                self._reply(await asyncio.wait_for(protocol.reply, FORWARD_TIMEOUT), addr)
                return
            except (TimeoutError, OSError):
                continue
            finally:
                transport.close()
        self._reply(failure(packet, RCODE_SERVFAIL), addr)

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def serve(address: str, lookup: Lookup, upstreams: Upstreams) -> DnsServer:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(lambda: DnsServer(lookup, upstreams),
                                                      local_addr=(address, 53))
    return protocol
