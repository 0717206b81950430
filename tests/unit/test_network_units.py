"""Networking decisions without a kernel: address leases, firewall rules, /etc files, peers and
VXLAN endpoints, DNS messages, the cluster's network view, and host ports in scheduling."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from shoal.controlplane.v1 import assignment_service_pb2 as spb
from shoal.state.v1 import records_pb2 as rpb

from agent.containers.model import ContainerSpec, NetworkMode
from agent.containers.validate import validate
from agent.errors import Exhausted, InvalidSpec
from agent.network import dns
from agent.network.plan import (
    AddressPool,
    Chains,
    Peer,
    PortMapping,
    Subnet,
    firewall_rules,
    hosts_file,
    nameservers,
    remote_peers,
    resolv_conf,
    vtep_mac,
)
from cli.quantity import parse_port
from controlplane.apps.model import App, Port
from controlplane.apps.validate import InvalidApp
from controlplane.apps.validate import validate as validate_app
from controlplane.network import build_view
from controlplane.scheduling.model import Node, Placement, ReplicaRequest, Resources
from controlplane.scheduling.scheduler import Scheduler
from controlplane.scheduling.stack import ClusterSnapshot


def test_addresses_go_round_the_pool_and_never_twice() -> None:
    pool = AddressPool(Subnet.parse("10.1.0.0/29"))  # .1 is the bridge; .2 to .6 for containers
    assert pool.capacity == 5
    first = [str(pool.lease(f"c{i}")) for i in range(3)]
    assert first == ["10.1.0.2", "10.1.0.3", "10.1.0.4"]
    assert str(pool.lease("c1")) == "10.1.0.3"  # the same owner keeps its address
    pool.release("c0")
    assert [str(pool.lease("c3")), str(pool.lease("c4"))] == ["10.1.0.5", "10.1.0.6"]
    assert str(pool.lease("c5")) == "10.1.0.2"  # only then the freed one comes back
    with pytest.raises(Exhausted, match=r"no free address left in the node.s container subnet 10\.1\.0\.0/29"):
        pool.lease("c6")


def test_re_adoption_keeps_an_address_unless_someone_holds_it() -> None:
    pool = AddressPool(Subnet.parse("10.1.0.0/24"))
    assert str(pool.lease("old", "10.1.0.77")) == "10.1.0.77"
    assert str(pool.lease("other", "10.1.0.77")) != "10.1.0.77"
    assert str(pool.lease("outside", "192.0.2.9")) != "192.0.2.9"


def test_subnets_are_checked() -> None:
    for bad, message in (("10.1.0.0/30", "at most /29"), ("10.1.0.1/24", "host bits"), ("nope", "IPv4 network")):
        with pytest.raises(InvalidSpec, match=message):
            Subnet.parse(bad)
    subnet = Subnet.parse("10.244.3.0/24")
    assert (str(subnet.gateway), str(subnet.vtep), vtep_mac(subnet)) == ("10.244.3.1", "10.244.3.0",
                                                                           "0a:58:0a:f4:03:00")


def test_firewall_rules_masquerade_egress_only_and_publish_ports() -> None:
    chains = Chains("shoal0")
    rules = firewall_rules(chains, Subnet.parse("10.244.1.0/24"), "10.244.0.0/16",
                           [("10.244.1.5", PortMapping(host_port=8080, container_port=80)),
                            ("10.244.1.6", PortMapping(host_port=53, container_port=5353, protocol="udp"))])
    lines = rules.splitlines()
    assert lines[0] == "*nat" and lines.count("COMMIT") == 2
    assert "-A SHOAL-POST-shoal0 -s 10.244.1.0/24 ! -o shoal0 ! -d 10.244.0.0/16 -j MASQUERADE" in lines
    assert ("-A SHOAL-PORTS-shoal0 -p udp -m udp --dport 53 -j DNAT --to-destination 10.244.1.6:5353"
            in lines)
    assert lines.index(next(x for x in lines if "--dport 53 " in x)) < lines.index(
        next(x for x in lines if "--dport 8080 " in x))  # stable order: same ports, same text
    assert max(len(c) for c in (chains.nat_post, chains.nat_ports, chains.forward)) <= 28
    assert [(table, chain) for table, chain, _ in chains.jumps()] == [
        ("nat", "POSTROUTING"), ("nat", "PREROUTING"), ("nat", "OUTPUT"), ("filter", "FORWARD")]


def test_etc_files() -> None:
    assert "10.244.1.5\tweb-0\n" in hosts_file("web-0", "10.244.1.5")
    assert "127.0.1.1\tbox\n" in hosts_file("box", "")
    host = "# generated\nnameserver 127.0.0.53\nsearch example.com\noptions edns0\n"
    assert resolv_conf(host, "10.244.1.1") == "nameserver 10.244.1.1\nsearch example.com\noptions ndots:0\n"
    assert resolv_conf(host, "") == host
    assert nameservers(host) == ["127.0.0.53"]


def test_routes_go_to_remote_nodes_only() -> None:
    peers = [Peer(name="a", address="192.0.2.1", subnet="10.244.0.0/24"),
             Peer(name="b", address="192.0.2.2", subnet="10.244.1.0/24"),
             Peer(name="c", address="127.0.0.1", subnet="10.244.2.0/24"),
             Peer(name="d", address="", subnet="10.244.3.0/24")]
    remote = remote_peers(peers, Subnet.parse("10.244.0.0/24"), {"127.0.0.1"})
    assert [p.name for p in remote] == ["b"]
    assert (remote[0].vtep, remote[0].vtep_mac) == ("10.244.1.0", "0a:58:0a:f4:01:00")


def test_container_ports_need_bridge_mode_and_distinct_host_ports() -> None:
    web = PortMapping(host_port=8080, container_port=80)
    validate(ContainerSpec(image="x", network=NetworkMode.BRIDGE, ports=(web,)))
    with pytest.raises(InvalidSpec, match="ports: ports are published in bridge network mode only, not host"):
        validate(ContainerSpec(image="x", network=NetworkMode.HOST, ports=(web,)))
    with pytest.raises(InvalidSpec, match="host port 8080/tcp is published twice"):
        validate(ContainerSpec(image="x", network=NetworkMode.BRIDGE, ports=(web, web)))
    with pytest.raises(InvalidSpec, match=r"ports\[0\].protocol"):
        validate(ContainerSpec(image="x", network=NetworkMode.BRIDGE,
                               ports=(PortMapping(host_port=1, container_port=1, protocol="sctp"),)))


def test_port_syntax() -> None:
    assert parse_port("8080:80") == (8080, 80, "tcp")
    assert parse_port("53/udp") == (53, 53, "udp")
    for bad in ("80:http", "0:80", "1:2:3", "80/icmp", "70000"):
        with pytest.raises(ValueError):
            parse_port(bad)


def query(name: str, qtype: int = dns.TYPE_A, query_id: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", qtype, dns.CLASS_IN)


def test_dns_messages() -> None:
    question = dns.parse_question(query("Web.Default"))
    assert (question.id, question.name, question.qtype) == (0x1234, "web.default", dns.TYPE_A)
    reply = dns.answer(question, dns.RCODE_OK, ["10.244.0.2", "10.244.1.2"])
    query_id, flags, qd, an, _, _ = struct.unpack_from("!HHHHHH", reply)
    assert (query_id, flags & 0x8000, flags & 0x0400, flags & 0x000F, qd, an) == (0x1234, 0x8000, 0x0400, 0, 1, 2)
    assert socket.inet_ntoa(reply[-4:]) == "10.244.1.2"
    assert struct.unpack_from("!H", dns.answer(question, dns.RCODE_NXDOMAIN, []), 2)[0] & 0xF == 3
    for bad in (b"\0" * 5, query("x")[:-3], struct.pack("!HHHHHH", 1, 0x8000, 1, 0, 0, 0)):
        with pytest.raises(ValueError):
            dns.parse_question(bad)


def test_dns_server_answers_cluster_names() -> None:
    sent: list[tuple[bytes, object]] = []

    class Transport:
        def sendto(self, data: bytes, addr: object) -> None:
            sent.append((data, addr))

    server = dns.DnsServer(lambda name: {"web": ["10.0.0.2", "10.0.0.3"], "gone": []}.get(name), lambda: [])
    server.transport = Transport()  # type: ignore[assignment]
    answers = []
    for _ in range(2):
        server.datagram_received(query("web"), ("10.0.0.9", 5353))
        answers.append(socket.inet_ntoa(sent[-1][0][-20:-16]))  # the first of two 16-byte records
    assert sorted(answers) == ["10.0.0.2", "10.0.0.3"]  # the order rotates
    server.datagram_received(query("web", dns.TYPE_AAAA), ("10.0.0.9", 5353))
    assert struct.unpack_from("!HHHHHH", sent[-1][0])[3] == 0 and struct.unpack_from("!H", sent[-1][0], 2)[0] & 0xF == 0
    server.datagram_received(query("gone"), ("10.0.0.9", 5353))
    assert struct.unpack_from("!H", sent[-1][0], 2)[0] & 0xF == dns.RCODE_NXDOMAIN
    server.datagram_received(b"\1", ("10.0.0.9", 5353))
    assert struct.unpack_from("!H", sent[-1][0], 2)[0] & 0xF == dns.RCODE_FORMERR


def test_network_view_lists_running_replicas_on_live_nodes() -> None:
    nodes = [rpb.NodeRecord(id="n1", name="h1", node_ip="192.0.2.1", subnet="10.244.1.0/24"),
             rpb.NodeRecord(id="n0", name="h0", node_ip="192.0.2.0", subnet="10.244.0.0/24"),
             rpb.NodeRecord(id="n2", name="h2", node_ip="", subnet="10.244.2.0/24")]
    replicas = [("n1", spb.ReplicaStatus(app="web", index=1, state="running", address="10.244.1.2")),
                ("n0", spb.ReplicaStatus(app="web", index=0, state="running", address="10.244.0.2")),
                ("n0", spb.ReplicaStatus(app="web", index=2, state="exited", address="")),
                ("n2", spb.ReplicaStatus(app="web", index=3, state="running", address="10.244.2.2")),
                ("n1", spb.ReplicaStatus(app="db", index=0, state="running", address=""))]
    view = build_view(nodes, {"n0", "n1"}, ["web", "db", "idle"], replicas)
    assert [(p.name, p.subnet) for p in view.peers] == [("h0", "10.244.0.0/24"), ("h1", "10.244.1.0/24")]
    assert {n.name: list(n.addresses) for n in view.names} == {"web": ["10.244.0.2", "10.244.1.2"], "db": [],
                                                               "idle": []}


def test_a_host_port_is_held_once_per_node() -> None:
    nodes = [Node(id=f"n{i}", name=f"h{i}", capacity=Resources(4000, 8 << 30)) for i in range(2)]
    held = Placement(app="other", index=0, node_id="n0", resources=Resources(), host_ports=("8080/tcp",))
    wanted = [ReplicaRequest(app="web", index=i, resources=Resources(), host_ports=("8080/tcp",)) for i in range(2)]
    plan = Scheduler().place(wanted, ClusterSnapshot(nodes, [held]), seed="p")
    assert [p.node_id for p in plan.placements] == ["n1"]
    assert plan.failures[0].explain() == "no node fits: 2 host port 8080/tcp in use"
    udp = [ReplicaRequest(app="dns", index=0, resources=Resources(), host_ports=("8080/udp",))]
    assert Scheduler().place(udp, ClusterSnapshot(nodes, [held]), seed="p").placements


@pytest.mark.parametrize("app,field", [
    (App(name="a", image="x", network="overlay"), "network"),
    (App(name="a", image="x", network="host", ports=(Port(80, 80),)), "ports"),
    (App(name="a", image="x", ports=(Port(0, 80),)), "ports[0].host_port"),
    (App(name="a", image="x", ports=(Port(80, 80, "sctp"),)), "ports[0].protocol"),
    (App(name="a", image="x", ports=(Port(80, 80), Port(80, 81))), "ports[1]"),
])
def test_app_network_validation_names_the_field(app: App, field: str) -> None:
    with pytest.raises(InvalidApp) as raised:
        validate_app(app)
    assert raised.value.field == field



def test_dns_server_forwards_other_names_to_the_first_resolver_that_answers() -> None:
    async def scenario() -> list[bytes]:
        loop = asyncio.get_running_loop()

        class Upstream(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                self.transport.sendto(b"answer-to:" + data, addr)  # type: ignore[attr-defined]

        upstream, _ = await loop.create_datagram_endpoint(Upstream, local_addr=("127.0.0.1", 0))
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        port = upstream.get_extra_info("sockname")[1]
        server_transport, _ = await loop.create_datagram_endpoint(
            lambda: dns.DnsServer(lambda name: None, lambda: [silent.getsockname(), ("127.0.0.1", port)]),
            local_addr=("127.0.0.1", 0))
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setblocking(False)
        client.sendto(query("example.org"), server_transport.get_extra_info("sockname"))
        reply = await asyncio.wait_for(loop.sock_recv(client, 512), dns.FORWARD_TIMEOUT * 3)
        for closing in (upstream, server_transport):
            closing.close()
        client.close()
        silent.close()
        return [reply]

    assert asyncio.run(scenario()) == [b"answer-to:" + query("example.org")]
