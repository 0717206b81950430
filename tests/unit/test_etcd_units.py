"""etcd client pieces that need no server."""

from __future__ import annotations

import pytest

from controlplane.etcd import txn as t
from controlplane.etcd.client import _target
from controlplane.etcd.embedded import EmbeddedEtcd, EtcdNotInstalled


@pytest.mark.parametrize(("prefix", "end"), [("/a/", b"/a0"), (b"a\xff", b"b"), (b"\xff\xff", b"\0"), ("", b"\0")])
def test_prefix_end(prefix: str | bytes, end: bytes) -> None:
    assert t.prefix_end(prefix) == end


def test_compares_name_their_operator() -> None:
    assert t.mod_revision("k", "==", 0).mod_revision == 0
    with pytest.raises(ValueError, match="compare operator '=~'"):
        t.value("k", "=~", "v")


def test_targets_list_every_endpoint() -> None:
    assert _target(["127.0.0.1:2379", "https://127.0.0.2:2379"]) == ("ipv4:127.0.0.1:2379,127.0.0.2:2379", "127.0.0.1")
    assert _target(["[::1]:2379"])[0] == "ipv6:[::1]:2379"


def test_missing_etcd_binary_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EtcdNotInstalled, match="apt-get install etcd-server"):
        EmbeddedEtcd(data_dir="/tmp/x", client_port=1, peer_port=2).command()
