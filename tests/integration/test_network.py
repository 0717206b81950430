"""Container networking on one host, with the real kernel: the bridge, addresses, /etc files, names,
published ports (from the host, conflicts), network modes, an agent restart, and a clean stop."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import urllib.request

from tests.integration.harness import WHO, AgentProcess, callers, eventually, free_port


def inspect(agent: AgentProcess, name: str) -> dict:  # type: ignore[type-arg]
    [found] = agent.cli_json("inspect", name)  # type: ignore[misc]
    return found  # type: ignore[no-any-return]


def gateway(agent: AgentProcess) -> str:
    return str(ipaddress.IPv4Network(agent.subnet).network_address + 1)


def nat_rules(agent: AgentProcess) -> list[str]:
    done = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True, check=True)
    return [line for line in done.stdout.splitlines() if agent.bridge in line]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode().strip())


def test_bridged_containers_get_an_address_their_files_and_reach_each_other_by_name(agent: AgentProcess) -> None:
    assert agent.cli("run", "-d", "--name", "srv", "busybox:test", "sh", "-c", WHO).code == 0
    server = inspect(agent, "srv")
    assert ipaddress.IPv4Address(server["ip_address"]) in ipaddress.IPv4Network(agent.subnet)
    script = ("ip -4 -o addr show eth0 | awk '{print $4}'; cat /etc/resolv.conf /etc/hosts; "
              "until wget -q -O- http://srv/cgi-bin/ip; do sleep 0.1; done; ip route")
    result = agent.cli("run", "--rm", "--hostname", "client", "busybox:test", "sh", "-c", script)
    assert result.code == 0, result.err
    own = result.out.splitlines()[0].split("/")[0]
    assert ipaddress.IPv4Address(own) in ipaddress.IPv4Network(agent.subnet) and own != server["ip_address"]
    assert f"nameserver {gateway(agent)}" in result.out and f"{own}\tclient" in result.out
    assert callers(result.out) == [own]  # the server saw the client's own address: no NAT on the bridge
    assert f"default via {gateway(agent)} dev eth0" in result.out
    assert agent.cli("rm", "-f", "srv").code == 0


def test_published_ports_reach_the_container_and_conflicts_are_refused(agent: AgentProcess) -> None:
    port = free_port()
    assert agent.cli("run", "-d", "--name", "pub", "-p", f"{port}:80", "busybox:test", "sh", "-c", WHO).code == 0
    address = inspect(agent, "pub")["ip_address"]
    assert any(f"--dport {port} -j DNAT --to-destination {address}:80" in rule for rule in nat_rules(agent))
    url = f"http://{gateway(agent)}:{port}/index.html"  # any of the host's own addresses
    eventually(lambda: _answers(url))
    assert fetch(url) == "ok"
    taken = agent.cli("run", "-d", "--name", "again", "-p", f"{port}:80", "busybox:test", "sleep", "9")
    assert taken.code == 125 and f"host port {port}/tcp is already published by container pub" in taken.err
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        refused = agent.cli("run", "-d", "--name", "busy", "-p", f"{busy}:80", "busybox:test", "sleep", "9")
        assert refused.code == 125 and f"host port {busy}/tcp is in use on this host" in refused.err
    body = urllib.request.urlopen(f"http://127.0.0.1:{agent.metrics_port}/metrics", timeout=5).read().decode()
    assert "shoal_network_published_ports 1.0" in body and "shoal_network_address_capacity 253.0" in body
    assert "shoal_network_address_leases 1.0" in body
    for name in ("pub", "again", "busy"):
        agent.cli("rm", "-f", name)
    eventually(lambda: not any(f"--dport {port} " in rule for rule in nat_rules(agent)))


UDP_ECHO = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 5353))\n"
            "while True:\n    data, peer = s.recvfrom(100)\n    s.sendto(b'pong ' + data, peer)\n")
# The host's python3, read-only (busybox has no UDP server).
HOST_PYTHON = tuple(flag for path in ("/usr", "/lib", "/lib64") if os.path.exists(path)
                    for flag in ("-v", f"{path}:{path}:ro"))


def test_a_published_udp_port_answers(agent: AgentProcess) -> None:
    port = free_port()
    started = agent.cli("run", "-d", "--name", "udp", "-p", f"{port}:5353/udp", *HOST_PYTHON, "busybox:test",
                        "/usr/bin/python3", "-c", UDP_ECHO)
    assert started.code == 0, started.err

    def pong() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.5)
            probe.sendto(b"ping", (gateway(agent), port))
            try:
                return probe.recv(100) == b"pong ping"
            except TimeoutError:
                return False

    eventually(pong, timeout=20)
    assert agent.cli("rm", "-f", "udp").code == 0


def _answers(url: str) -> bool:
    try:
        fetch(url)
        return True
    except OSError:
        return False


def test_a_subnet_overlapping_the_hosts_networks_is_refused_with_the_reason(test_root: str, busybox_tar: str) -> None:
    from tests.integration.conftest import make_agent

    other = "sto" + secrets.token_hex(4)  # a network of the host's own, inside the agent's subnet
    subprocess.run(["ip", "link", "add", other, "type", "bridge"], check=True)  # any link with an address
    try:
        subprocess.run(["ip", "addr", "add", "10.199.77.1/24", "dev", other], check=True)
        subprocess.run(["ip", "link", "set", other, "up"], check=True)
        agent = make_agent(test_root)
        agent.subnet = "10.199.0.0/16"
        agent.start()
        try:
            assert agent.cli("image", "import", busybox_tar).code == 0
            refused = agent.cli("run", "--rm", "busybox:test", "true")
            assert refused.code == 125, refused.err
            assert (f"the container subnet 10.199.0.0/16 overlaps the host's network 10.199.77.0/24 on {other}"
                    in refused.err)
            assert agent.cli("run", "--rm", "--network", "none", "busybox:test", "true").code == 0
        finally:
            agent.destroy()
    finally:
        subprocess.run(["ip", "link", "del", other], check=True)


def test_network_modes(agent: AgentProcess) -> None:
    none = agent.cli("run", "--rm", "--network", "none", "busybox:test", "ip", "-o", "link")
    assert none.code == 0 and [line.split(":")[1].strip() for line in none.out.splitlines()] == ["lo"]
    host = agent.cli("run", "--rm", "--network", "host", "busybox:test", "ip", "-o", "link")
    assert host.code == 0 and agent.bridge in host.out
    refused = agent.cli("run", "--rm", "--network", "host", "-p", "80:80", "busybox:test", "true")
    assert refused.code == 125 and "published in bridge network mode only" in refused.err


def test_an_agent_restart_keeps_addresses_and_ports_without_duplicates(fresh_agent: AgentProcess) -> None:
    agent = fresh_agent
    port = free_port()
    assert agent.cli("run", "-d", "--name", "kept", "-p", f"{port}:80", "busybox:test", "sh", "-c", WHO).code == 0
    before = inspect(agent, "kept")
    eventually(lambda: _answers(f"http://{gateway(agent)}:{port}/"))
    agent.kill_agent(signal.SIGKILL)
    agent.start()
    after = inspect(agent, "kept")
    assert (after["pid"], after["ip_address"]) == (before["pid"], before["ip_address"])
    assert len([rule for rule in nat_rules(agent) if f"--dport {port} " in rule]) == 1
    assert len([rule for rule in nat_rules(agent) if rule.startswith("-A POSTROUTING")]) == 1
    assert fetch(f"http://{gateway(agent)}:{port}/index.html") == "ok"
    other = agent.cli("run", "--rm", "busybox:test", "sh", "-c", "ip -4 -o addr show eth0")
    assert before["ip_address"] + "/" not in other.out  # the lease survived the restart
    # A crashed container's address and port are given back.
    assert agent.cli("kill", "kept").code == 0
    eventually(lambda: inspect(agent, "kept")["state"] == "CONTAINER_STATE_EXITED")
    assert inspect(agent, "kept").get("ip_address", "") == ""
    eventually(lambda: not any(f"--dport {port} " in rule for rule in nat_rules(agent)))


def test_a_clean_stop_removes_the_network_once_no_container_is_attached(fresh_agent: AgentProcess) -> None:
    agent = fresh_agent
    assert agent.cli("run", "-d", "--name", "stays", "busybox:test", "sleep", "300").code == 0
    agent.kill_agent(signal.SIGTERM)
    assert os.path.exists(f"/sys/class/net/{agent.bridge}")  # its container still runs, and needs it
    agent.start()
    assert agent.cli("rm", "-f", "stays").code == 0
    agent.kill_agent(signal.SIGTERM)
    assert not os.path.exists(f"/sys/class/net/{agent.bridge}")
    assert nat_rules(agent) == []
    assert not os.path.exists(os.path.join(agent.state_dir, "network.json"))
    agent.start()  # for the fixture's teardown
    assert json.loads(agent.cli("ps", "-a", "-o", "json").out) == []


def test_a_bridged_container_holds_its_address_from_create_across_an_agent_restart(fresh_agent: AgentProcess) -> None:
    """As a pod sandbox: the address is leased at create and eth0 set up before the start. An agent
    restart in between keeps the lease, and removing a container never started gives it back."""
    from shoal.agent.v1 import agent_pb2 as apb
    from shoal.agent.v1 import containers_pb2 as cpb

    agent = fresh_agent
    stub = agent.stub()

    def create(name: str) -> str:
        spec = cpb.ContainerSpec(name=name, image="busybox:test", network_mode=cpb.NETWORK_MODE_BRIDGE,
                                 command=["sh", "-c", "ip -4 -o addr show eth0; ip route"])
        address = stub.CreateContainer(apb.CreateContainerRequest(spec=spec)).container.ip_address
        assert ipaddress.IPv4Address(address) in ipaddress.IPv4Network(agent.subnet)
        return str(address)

    def leases() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{agent.metrics_port}/metrics", timeout=5) as response:
            lines = response.read().decode().splitlines()
        return float(next(line.split()[-1] for line in lines if line.startswith("shoal_network_address_leases")))

    started, unstarted = create("sandboxed"), create("unstarted")
    agent.kill_agent(signal.SIGKILL)
    agent.start()
    other = agent.cli("run", "--rm", "busybox:test", "sh", "-c", "ip -4 -o addr show eth0")
    assert other.code == 0 and f"{started}/" not in other.out and f"{unstarted}/" not in other.out
    assert agent.cli("start", "sandboxed").code == 0
    eventually(lambda: f"default via {gateway(agent)} dev eth0" in agent.cli("logs", "sandboxed").out)
    assert f" {started}/" in agent.cli("logs", "sandboxed").out
    held = leases()
    assert agent.cli("rm", "unstarted").code == 0
    assert leases() == held - 1
    assert agent.cli("rm", "sandboxed").code == 0
