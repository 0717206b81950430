"""Fixtures for the integration level: real kernel, root, real agent processes.

The session asserts at its end that nothing was left behind: no mount, cgroup, process, bridge
or iptables chain of a Shoal test agent, and IP forwarding as it was.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import grpc
import pytest
from make_busybox_image import busybox_entries, layer_tar, write_oci_layout

from controlplane.etcd.embedded import EmbeddedEtcd
from tests.integration.harness import ENV, AgentProcess, free_port

CGROUP_PREFIX = "shoal-test-"

if os.geteuid() != 0:
    pytest.skip("integration tests need root (namespaces, cgroups, mounts)", allow_module_level=True)


SESSION_CGROUPS: set[str] = set()  # cgroup parents of this session's agents (other sessions may run alongside)
SESSION_BRIDGES: set[str] = set()  # and their bridges, which also name their VXLAN devices and iptables chains


def leftovers(root: str) -> list[str]:
    found = []
    with open("/proc/mounts") as f:
        found += [f"mount: {line.split()[1]}" for line in f
                  if root in line or any(name in line for name in SESSION_CGROUPS)]
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        found += [f"cgroup: {os.path.join(dirpath, d)}" for d in dirnames if d in SESSION_CGROUPS]
        if dirpath.count("/") >= 4:
            dirnames.clear()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    for bridge in SESSION_BRIDGES:
        found += [f"link: {line.split(':')[1].strip()}" for line in links.splitlines() if bridge in line]
        found += [f"iptables: {line}" for line in rules.splitlines() if bridge in line]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if root.encode() in f.read():
                    found.append(f"process: {pid}")
        except OSError:
            continue
    return found


@pytest.fixture(scope="session")
def test_root() -> Iterator[str]:
    root = tempfile.mkdtemp(prefix="shoal-it-")
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forwarding = f.read()
    yield root
    leaked = leftovers(root)
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        if f.read() != forwarding:  # the agents turn it on; the last one to go puts it back
            leaked.append(f"sysctl net.ipv4.ip_forward, {forwarding.strip()} before the tests")
    shutil.rmtree(root, ignore_errors=True)
    assert not leaked, "the integration tests left these behind:\n" + "\n".join(leaked)


@pytest.fixture(scope="session")
def busybox_tar(test_root: str) -> str:
    path = os.path.join(test_root, "busybox.tar")
    write_oci_layout(path, [layer_tar(busybox_entries())], name="busybox:test")
    return path


@pytest.fixture
def etcd(test_root: str) -> Iterator[EmbeddedEtcd]:
    """A real single-member etcd (Debian's etcd-server) on free loopback ports, removed afterwards."""
    if shutil.which("etcd") is None:
        pytest.skip("etcd is not installed (apt-get install etcd-server)")
    member = EmbeddedEtcd(data_dir=os.path.join(test_root, f"etcd-{free_port()}", "data"), client_port=free_port(),
                          peer_port=free_port())
    member.start()
    try:
        member.wait_ready()
        yield member
    finally:
        member.stop()
        shutil.rmtree(os.path.dirname(member.data_dir), ignore_errors=True)


class ControlPlane:
    def __init__(self, channel: grpc.Channel, address: str, metrics_port: int) -> None:
        self.channel = channel
        self.address = address
        self.metrics_port = metrics_port


@pytest.fixture
def controlplane(test_root: str) -> Iterator[ControlPlane]:
    state = os.path.join(test_root, f"cp-{free_port()}")
    address = f"127.0.0.1:{free_port()}"
    metrics_port = free_port()
    os.makedirs(state)
    log = open(os.path.join(state, "controlplane.log"), "ab")
    process = subprocess.Popen([sys.executable, "-m", "controlplane.main", "--state-dir", state, "--listen", address,
                                "--embedded-etcd-ports", f"{free_port()},{free_port()}", "--node-grace", "3",
                                "--metrics-listen", f"127.0.0.1:{metrics_port}"],
                               stdout=log, stderr=log, env=ENV)
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield ControlPlane(channel, address, metrics_port)
    finally:
        channel.close()
        process.terminate()
        process.wait(timeout=20)
        log.close()
        shutil.rmtree(state, ignore_errors=True)



def make_agent(test_root: str) -> AgentProcess:
    name = secrets.token_hex(4)
    SESSION_CGROUPS.add(CGROUP_PREFIX + name)
    SESSION_BRIDGES.add("st" + name)
    return AgentProcess(state_dir=os.path.join(test_root, f"agent-{name}"), cgroup_parent=CGROUP_PREFIX + name,
                        bridge="st" + name)


@pytest.fixture(scope="module")
def agent(test_root: str, busybox_tar: str) -> Iterator[AgentProcess]:
    """One agent per test module, with busybox:test imported."""
    process = make_agent(test_root)
    process.start()
    try:
        result = process.cli("image", "import", busybox_tar)
        assert result.code == 0, result.err
        yield process
    finally:
        process.destroy()


@pytest.fixture
def fresh_agent(test_root: str, busybox_tar: str) -> Iterator[AgentProcess]:
    """An agent of the test's own, for tests that kill or restart it."""
    process = make_agent(test_root)
    process.start()
    try:
        assert process.cli("image", "import", busybox_tar).code == 0
        yield process
    finally:
        process.destroy()
