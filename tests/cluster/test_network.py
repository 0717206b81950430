"""Container networking across three namespace hosts, in both routing modes (host-gw and VXLAN):
container to container by address and by name on one host and across hosts without NAT, published
ports from another host and from the node itself, egress masqueraded towards "the internet" (a
namespace of its own), names that follow scaling and rescheduling, and nothing left behind."""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.cluster.conftest import Cluster, running_cluster
from tests.integration.harness import WHO, callers, eventually

APP = """name: {name}
image: busybox:local
replicas: {replicas}
command: ["sh", "-c", "{script}"]
ports: {ports}
"""
INTERNET = "198.51.100.1"  # TEST-NET-2: the address "the internet" answers on
ANSWER_PEER = f"""import socket
server = socket.create_server(("{INTERNET}", 9000))
print("ready", flush=True)
connection, peer = server.accept()
connection.recv(4096)
connection.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n" + peer[0].encode() + b"\\n")
connection.close()
"""


@pytest.fixture(scope="module", params=["host-gw", "vxlan"])
def net(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    with running_cluster("--network-routing", request.param) as cluster:
        yield cluster


def deploy(cluster: Cluster, name: str, replicas: int, ports: str = "[]", *flags: str) -> None:
    done = cluster.deploy(APP.format(name=name, replicas=replicas, script=WHO.replace('"', '\\"'), ports=ports),
                          *flags)
    assert done.returncode == 0, done.stderr + done.stdout


def running(cluster: Cluster, app: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {f"{r['app']}.{r['index']}": r for r in cluster.json("get", "containers", app) if r["state"] == "running"}


def in_replica(cluster: Cluster, replica: str, script: str) -> str:
    done = cluster.ctl("exec", replica, "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    return done.stdout


def on_host(cluster: Cluster, index: int, *command: str) -> subprocess.CompletedProcess[str]:
    namespace = cluster.record()["network"]["namespaces"][index]
    return subprocess.run(["nsenter", f"--net=/run/netns/{namespace}", "--", *command], capture_output=True,
                          text=True, timeout=30)


def resolved(cluster: Cluster, replica: str, name: str) -> list[str]:
    out = cluster.ctl("exec", replica, "nslookup", name).stdout
    return sorted(line.split()[-1] for line in out.split("Name:", 1)[-1].splitlines() if line.startswith("Address"))


def test_containers_reach_each_other_by_address_and_by_name_without_nat(net: Cluster) -> None:
    deploy(net, "who", 3)
    eventually(lambda: len(running(net, "who")) == 3, timeout=60)
    replicas = running(net, "who")
    assert len({r["node"] for r in replicas.values()}) == 3  # one per host: the calls cross hosts
    addresses = sorted(r["address"] for r in replicas.values())
    subnets = {n["name"]: ipaddress.IPv4Network(n["subnet"]) for n in net.json("nodes")}
    for replica in replicas.values():
        assert ipaddress.IPv4Address(replica["address"]) in subnets[replica["node"]]
    for name, replica in replicas.items():
        calls = " ".join(f"wget -q -O- http://{a}/cgi-bin/ip;" for a in addresses)
        # Every server saw the caller's own address: no NAT between containers.
        assert callers(in_replica(net, name, calls)) == [replica["address"]] * 3, name
    eventually(lambda: resolved(net, "who.0", "who") == addresses, timeout=20)
    assert in_replica(net, "who.0", "wget -q -O- http://who/index.html").strip() == "ok"


def test_published_ports_answer_from_other_hosts_and_from_the_node_itself(net: Cluster) -> None:
    deploy(net, "pub", 4, '["18080:80"]', "--detach")  # one of the four can never be placed
    eventually(lambda: len(running(net, "pub")) == 3, timeout=60)
    pending = [r for r in net.json("get", "containers", "pub") if r["state"] == "pending"]
    assert len(pending) == 1 and "3 host port 18080/tcp in use" in pending[0]["error"]
    hosts = net.record()["network"]["addresses"]
    for index, address in enumerate(hosts):
        other = (index + 1) % len(hosts)
        for source in (other, index):  # from another host, and from the node itself (hairpin)
            fetched = on_host(net, source, "busybox", "wget", "-q", "-O-", f"http://{address}:18080/")
            assert fetched.stdout.strip() == "ok", (index, source, fetched.stderr)
    assert net.ctl("delete", "pub").returncode == 0


@contextlib.contextmanager
def the_internet(cluster: Cluster) -> Iterator[subprocess.Popen[str]]:
    """A namespace on the hosts' network answering on INTERNET, a route to it on every host, and a
    one-shot server there that answers with the address it was called from. All removed after."""
    network = cluster.record()["network"]
    tag = network["bridge"].removeprefix("shbr")
    namespace, veth = f"shoal-{tag}-inet", f"sh{tag}in"
    address = str(ipaddress.IPv4Network(network["gateway"] + "/24", strict=False).network_address + 200)
    steps = [["ip", "netns", "add", namespace],
             ["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace],
             ["ip", "link", "set", veth, "master", network["bridge"], "up"],
             ["ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0"],
             ["ip", "-n", namespace, "link", "set", "eth0", "up"],
             ["ip", "-n", namespace, "link", "set", "lo", "up"],
             ["ip", "-n", namespace, "addr", "add", f"{INTERNET}/32", "dev", "lo"]]
    routes = [["ip", "-n", host, "route", "add", f"{INTERNET}/32", "via", address] for host in network["namespaces"]]
    server = None
    try:
        for step in steps + routes:
            subprocess.run(step, check=True, capture_output=True)
        server = subprocess.Popen(["nsenter", f"--net=/run/netns/{namespace}", "--", sys.executable, "-c",
                                   ANSWER_PEER], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield server
    finally:
        if server is not None:
            server.kill()
            server.wait()
        for route in routes:
            subprocess.run([*route[:4], "del", *route[5:]], capture_output=True)
        subprocess.run(["ip", "link", "del", veth], capture_output=True)  # at once; a namespace goes lazily
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


def test_egress_leaves_masqueraded_behind_the_node_address(net: Cluster) -> None:
    deploy(net, "who", 3)
    eventually(lambda: len(running(net, "who")) == 3, timeout=60)
    replica = running(net, "who")["who.0"]
    node_ip = next(n["node_ip"] for n in net.json("nodes") if n["name"] == replica["node"])
    with the_internet(net):
        seen = in_replica(net, "who.0", f"wget -q -O- http://{INTERNET}:9000/").strip()
    assert seen == node_ip != replica["address"]


def test_names_follow_scaling_and_rescheduling(net: Cluster) -> None:
    deploy(net, "who", 3)
    eventually(lambda: len(running(net, "who")) == 3, timeout=60)
    assert net.ctl("scale", "who", "1").returncode == 0
    eventually(lambda: resolved(net, "who.0", "who") == [running(net, "who")["who.0"]["address"]], timeout=30)
    assert net.ctl("scale", "who", "3").returncode == 0
    eventually(lambda: len(running(net, "who")) == 3, timeout=60)
    eventually(lambda: resolved(net, "who.0", "who") == sorted(r["address"] for r in running(net, "who").values()),
               timeout=30)
    moved = running(net, "who")["who.2"]
    if moved["node"] == running(net, "who")["who.0"]["node"]:
        moved = running(net, "who")["who.1"]
    assert net.ctl("drain", moved["node"]).returncode == 0
    try:
        key = f"who.{moved['index']}"
        eventually(lambda: key in running(net, "who") and running(net, "who")[key]["node"] != moved["node"],
                   timeout=60)
        eventually(lambda: resolved(net, "who.0", "who") == sorted(r["address"] for r in running(net, "who").values())
                   and moved["address"] not in resolved(net, "who.0", "who"), timeout=30)
    finally:
        assert net.ctl("uncordon", moved["node"]).returncode == 0


def test_an_agent_killed_and_restarted_keeps_routes_ports_and_names_without_duplicates(net: Cluster) -> None:
    from tests.cluster.test_operations import _restart_like_before

    deploy(net, "who", 3, '["18082:80"]')
    eventually(lambda: len(running(net, "who")) == 3, timeout=60)
    host = net.record()["agents"][0]

    def routes() -> list[str]:
        return on_host(net, 0, "ip", "route", "show", "proto", "115").stdout.splitlines()

    def dnat() -> list[str]:
        return [rule for rule in on_host(net, 0, "iptables", "-w", "-t", "nat", "-S").stdout.splitlines()
                if "-j DNAT" in rule]

    before = (sorted(routes()), dnat())
    assert len(before[0]) == 2 and len(before[1]) == 1

    def new_agent(record: dict, pid: int) -> None:  # type: ignore[type-arg]
        next(a for a in record["agents"] if a["name"] == host["name"])["pid"] = pid

    _restart_like_before(net, int(host["pid"]), new_agent, namespace=str(host["namespace"]))
    eventually(lambda: net.ctl("--agent", str(host["address"]), "ps").returncode == 0, timeout=30)
    eventually(lambda: all(n["state"] == "ready" for n in net.json("nodes")), timeout=30)
    assert (sorted(routes()), dnat()) == before
    addresses = sorted(r["address"] for r in running(net, "who").values())
    local = next(name for name, r in running(net, "who").items() if r["node"] == host["name"])
    calls = " ".join(f"wget -q -O- http://{a}/index.html;" for a in addresses)
    assert in_replica(net, local, calls).split() == ["ok"] * 3
    eventually(lambda: resolved(net, local, "who") == addresses, timeout=20)
    assert net.ctl("delete", "who").returncode == 0


def test_removed_containers_leave_no_veth_or_port_mapping(net: Cluster) -> None:
    deploy(net, "pub", 3, '["18081:80"]')
    eventually(lambda: len(running(net, "pub")) == 3, timeout=60)
    for app in ("pub", "who"):
        net.ctl("delete", app)
    def clean(host: int) -> bool:
        links = on_host(net, host, "ip", "-o", "link", "show").stdout
        rules = on_host(net, host, "iptables", "-w", "-t", "nat", "-S").stdout
        return "master shoal0" not in links and "-j DNAT" not in rules

    for host in range(3):
        eventually(lambda: clean(host), timeout=30)  # noqa: B023 (called before the loop moves on)
