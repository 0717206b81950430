"""Shoal's etcd client against a real etcd (Debian's etcd-server): the failure behaviours of
research/etcd-client.md — kill -9 and restart under a watch and a lease, compaction, a hung etcd,
and a three-member cluster losing a member."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from controlplane.etcd import (
    Compacted,
    Election,
    EtcdClient,
    EtcdConfig,
    EtcdTimeout,
    EtcdUnavailable,
    LeaseKeeper,
    WatchEvents,
    WatchReset,
    fence,
)
from controlplane.etcd import txn as t
from controlplane.etcd.embedded import EmbeddedEtcd
from controlplane.etcd.watch import watch_prefix
from tests.integration.harness import free_port

T = TypeVar("T")

if shutil.which("etcd") is None:
    pytest.skip("etcd is not installed (apt-get install etcd-server)", allow_module_level=True)


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


def client_for(*members: EmbeddedEtcd, timeout: float = 5.0) -> EtcdClient:
    return EtcdClient(EtcdConfig(endpoints=tuple(m.endpoint for m in members), timeout=timeout))


def test_kv_and_transactions(etcd: EmbeddedEtcd) -> None:
    async def scenario() -> None:
        client = client_for(etcd)
        try:
            revision = await client.put("/shoal/apps/web", "v1")
            await client.put("/shoal/apps/db", "v1")
            await client.put("/shoal/other", "x")
            kv = await client.get("/shoal/apps/web")
            assert kv is not None and kv.value == b"v1" and kv.mod_revision == revision
            kvs, read_revision = await client.get_prefix("/shoal/apps/")
            assert [k.key for k in kvs] == [b"/shoal/apps/db", b"/shoal/apps/web"] and read_revision >= revision
            # Compare-and-set on mod_revision: the first writer wins, the stale one is refused.
            won = await client.txn([t.mod_revision("/shoal/apps/web", "==", revision)],
                                   [t.put("/shoal/apps/web", "v2")])
            lost = await client.txn([t.mod_revision("/shoal/apps/web", "==", revision)],
                                    [t.put("/shoal/apps/web", "v3")], [t.get("/shoal/apps/web")])
            assert won.succeeded and not lost.succeeded
            assert lost.responses[0].response_range.kvs[0].value == b"v2"
            created = await client.txn([t.mod_revision("/shoal/new", "==", 0)], [t.put("/shoal/new", "1")])
            assert created.succeeded  # "does not exist" is mod_revision == 0
            assert await client.delete("/shoal/apps/", prefix=True) == 2
            assert await client.get("/shoal/apps/web") is None
            assert (await client.status()).version.startswith("3.")
        finally:
            await client.close()
    run(scenario)


def test_leases_keepalive_expiry_and_revoke(etcd: EmbeddedEtcd) -> None:
    async def scenario() -> None:
        client = client_for(etcd)
        try:
            keeper = await LeaseKeeper.grant(client, ttl=2)
            await client.put("/nodes/a", "alive", lease=keeper.lease)
            await asyncio.sleep(4.5)  # more than twice the TTL: only the keepalive keeps it
            assert keeper.valid and await client.get("/nodes/a") is not None
            await keeper.stop(revoke=True)
            assert await client.get("/nodes/a") is None
            orphan = await client.grant(1)
            await client.put("/nodes/b", "alive", lease=orphan)
            await asyncio.sleep(3.0)  # nobody renews it
            assert await client.get("/nodes/b") is None and await client.time_to_live(orphan) == -1
        finally:
            await client.close()
    run(scenario)


def test_watch_resumes_across_etcd_kill_and_restart(etcd: EmbeddedEtcd) -> None:
    async def scenario() -> None:
        client = client_for(etcd, timeout=2.0)
        try:
            watch = watch_prefix(client, "/w/")
            first = asyncio.ensure_future(anext(watch))
            await asyncio.sleep(0.3)
            await client.put("/w/a", "1")
            batch = await asyncio.wait_for(first, 5)
            assert isinstance(batch, WatchEvents) and [e.kv.key for e in batch.events] == [b"/w/a"]
            following = asyncio.ensure_future(anext(watch))
            etcd.kill()
            await asyncio.sleep(1.0)
            etcd.start()
            etcd.wait_ready()
            deadline = time.monotonic() + 10
            while True:
                try:
                    await client.put("/w/b", "2")
                    break
                except (EtcdUnavailable, EtcdTimeout):
                    assert time.monotonic() < deadline, "etcd did not come back"
                    await asyncio.sleep(0.1)
            batch = await asyncio.wait_for(following, 10)
            assert isinstance(batch, WatchEvents)
            assert [e.kv.key for e in batch.events] == [b"/w/b"]  # nothing missed, nothing repeated
            await watch.aclose()
        finally:
            await client.close()
    run(scenario)


def test_watch_from_a_compacted_revision_resyncs(etcd: EmbeddedEtcd) -> None:
    async def scenario() -> None:
        client = client_for(etcd)
        try:
            old = await client.put("/c/a", "1")
            await client.put("/c/b", "2")
            latest = await client.put("/c/a", "3")
            await client.compact(latest)
            with pytest.raises(Compacted):
                await client.get_prefix("/c/", revision=old)
            watch = watch_prefix(client, "/c/", start_revision=old)
            reset = await asyncio.wait_for(anext(watch), 5)
            assert isinstance(reset, WatchReset)
            assert {k.key: k.value for k in reset.kvs} == {b"/c/a": b"3", b"/c/b": b"2"}
            after = asyncio.ensure_future(anext(watch))
            await asyncio.sleep(0.2)
            await client.put("/c/c", "4")
            batch = await asyncio.wait_for(after, 5)
            assert isinstance(batch, WatchEvents) and batch.events[0].kv.key == b"/c/c"
            await watch.aclose()
        finally:
            await client.close()
    run(scenario)


def test_lease_survives_an_etcd_restart_under_keepalive(etcd: EmbeddedEtcd) -> None:
    async def scenario() -> None:
        client = client_for(etcd, timeout=1.0)
        try:
            keeper = await LeaseKeeper.grant(client, ttl=5)
            await client.put("/nodes/steady", "up", lease=keeper.lease)
            etcd.kill()
            await asyncio.sleep(2.0)
            etcd.start()
            etcd.wait_ready()
            await asyncio.sleep(6.0)  # past the TTL: only renewals after the restart keep it
            assert keeper.valid and await client.get("/nodes/steady") is not None
            await keeper.stop()
        finally:
            await client.close()
    run(scenario)


def test_calls_to_a_hung_etcd_end_at_their_deadline(etcd: EmbeddedEtcd) -> None:
    async def scenario() -> None:
        client = client_for(etcd, timeout=0.5)
        try:
            await client.put("/h", "1")
            etcd.pause()
            began = time.monotonic()
            with pytest.raises(EtcdTimeout, match="may still have been applied"):
                await client.put("/h", "2")
            assert time.monotonic() - began < 2.0
        finally:
            etcd.resume()
            await client.close()
    run(scenario)


def test_election_one_leader_at_a_time_and_fenced_writes(etcd: EmbeddedEtcd) -> None:
    async def scenario() -> None:
        client = client_for(etcd)
        try:
            first, second = await LeaseKeeper.grant(client, 5), await LeaseKeeper.grant(client, 5)
            election = Election(client, "/shoal/leader")
            assert await election.leader() is None
            leader = await election.campaign(first.lease, "cp-1", timeout=5)
            contender = asyncio.ensure_future(election.campaign(second.lease, "cp-2"))
            await asyncio.sleep(1.0)
            assert not contender.done()  # a second leader would be split brain
            current = await election.leader()
            assert current is not None and current.value == b"cp-1"
            fenced = await client.txn([fence(leader)], [t.put("/shoal/plan", "from cp-1")])
            assert fenced.succeeded
            await election.resign(leader)
            new_leader = await asyncio.wait_for(contender, 5)
            stale = await client.txn([fence(leader)], [t.put("/shoal/plan", "late write from cp-1")])
            assert not stale.succeeded
            assert (await client.get("/shoal/plan")).value == b"from cp-1"  # type: ignore[union-attr]
            await election.proclaim(new_leader, "cp-2 again")
            assert (await election.leader()).value == b"cp-2 again"  # type: ignore[union-attr]
            await first.stop()
            await second.stop()
        finally:
            await client.close()
    run(scenario)


def test_three_member_cluster_survives_losing_a_member(test_root: str) -> None:
    base = os.path.join(test_root, f"etcd3-{free_port()}")
    ports = [(free_port(), free_port()) for _ in range(3)]
    cluster = ",".join(f"m{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
    members = [EmbeddedEtcd(data_dir=os.path.join(base, f"m{i}"), client_port=c, peer_port=p, name=f"m{i}",
                            initial_cluster=cluster) for i, (c, p) in enumerate(ports)]
    for member in members:
        member.start()
    try:
        for member in members:
            member.wait_ready()

        async def scenario() -> None:
            client = client_for(*members, timeout=2.0)
            try:
                deadline = time.monotonic() + 15
                while True:  # the cluster needs a leader first
                    try:
                        await client.put("/k", "0")
                        break
                    except (EtcdUnavailable, EtcdTimeout):
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.2)
                watch = watch_prefix(client, "/k")
                pending = asyncio.ensure_future(anext(watch))
                await asyncio.sleep(0.3)
                members[0].kill()
                began = time.monotonic()
                while True:
                    try:
                        await client.put("/k", "1")
                        break
                    except (EtcdUnavailable, EtcdTimeout):
                        assert time.monotonic() - began < 15, "no failover to the surviving members"
                        await asyncio.sleep(0.2)
                batch = await asyncio.wait_for(pending, 15)
                assert isinstance(batch, WatchEvents) and batch.events[-1].kv.value == b"1"
                await watch.aclose()
            finally:
                await client.close()
        run(scenario)
    finally:
        for member in members:
            member.stop()
        shutil.rmtree(base, ignore_errors=True)
