"""Fixtures for the integration level: real kernel, root, real agent processes.

The session asserts at its end that nothing was left behind: no mount, cgroup or process of a
Shoal test agent.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from make_busybox_image import busybox_entries, layer_tar, write_oci_layout

from tests.integration.harness import AgentProcess

CGROUP_PREFIX = "shoal-test-"

if os.geteuid() != 0:
    pytest.skip("integration tests need root (namespaces, cgroups, mounts)", allow_module_level=True)


def leftovers(root: str) -> list[str]:
    found = []
    with open("/proc/mounts") as f:
        found += [f"mount: {line.split()[1]}" for line in f if root in line or CGROUP_PREFIX in line]
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        found += [f"cgroup: {os.path.join(dirpath, d)}" for d in dirnames if d.startswith(CGROUP_PREFIX)]
        if dirpath.count("/") >= 4:
            dirnames.clear()
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
    yield root
    leaked = leftovers(root)
    shutil.rmtree(root, ignore_errors=True)
    assert not leaked, "the integration tests left these behind:\n" + "\n".join(leaked)


@pytest.fixture(scope="session")
def busybox_tar(test_root: str) -> str:
    path = os.path.join(test_root, "busybox.tar")
    write_oci_layout(path, [layer_tar(busybox_entries())], name="busybox:test")
    return path


def make_agent(test_root: str) -> AgentProcess:
    name = secrets.token_hex(4)
    return AgentProcess(state_dir=os.path.join(test_root, f"agent-{name}"), cgroup_parent=CGROUP_PREFIX + name)


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
