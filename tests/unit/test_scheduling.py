"""The scheduling core with real objects: filters, scores, spread, constraints, pending reasons,
and properties that must hold for any cluster."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.scheduling.constraints import ConstraintError, parse_constraint, parse_spread
from controlplane.scheduling.model import Node, NodeState, Placement, ReplicaRequest, Resources
from controlplane.scheduling.reconciler import AppSpec, reconcile
from controlplane.scheduling.scheduler import Scheduler
from controlplane.scheduling.stack import ClusterSnapshot, build_stack

GIB = 1 << 30


def node(name: str, cpu: int = 4000, memory: int = 8 * GIB, **labels: str) -> Node:
    return Node(id=f"id-{name}", name=name, capacity=Resources(cpu, memory), labels=labels)


def requests(app: str, count: int, cpu: int = 100, memory: int = 64 << 20, **kwargs: object) -> list[ReplicaRequest]:
    return [ReplicaRequest(app=app, index=i, resources=Resources(cpu, memory), **kwargs)  # type: ignore[arg-type]
            for i in range(count)]


def placed_on(plan_placements: list[Placement]) -> Counter[str]:
    return Counter(p.node_id for p in plan_placements)


def test_constraint_grammar() -> None:
    assert parse_constraint("node.labels.zone == a").value == "a"
    assert parse_constraint("node.name!=web-3").op == "!="
    for bad in ("zone == a", "node.labels.zone = a", "node.labels.zone == ", "node.cpu > 2"):
        with pytest.raises(ConstraintError, match="expected"):
            parse_constraint(bad)
    assert parse_spread("node.labels.zone") == "node.labels.zone"
    with pytest.raises(ConstraintError):
        parse_spread("zone")


def test_spreads_an_app_evenly_over_nodes() -> None:
    snapshot = ClusterSnapshot([node("a"), node("b"), node("c")], [])
    plan = Scheduler().place(requests("web", 6, spread_by="node"), snapshot, seed="e1")
    assert not plan.failures and sorted(placed_on(plan.placements).values()) == [2, 2, 2]


def test_spreads_over_a_label_and_honours_constraints() -> None:
    nodes = [node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b"), node("b2", zone="b"),
             node("c1", zone="c", disk="hdd")]
    plan = Scheduler().place(requests("db", 4, spread_by="node.labels.zone",
                                      constraints=(parse_constraint("node.labels.zone != c"),)),
                             ClusterSnapshot(nodes, []), seed="e2")
    zones = Counter(next(n.labels["zone"] for n in nodes if n.id == p.node_id) for p in plan.placements)
    assert zones == Counter({"a": 2, "b": 2})


def test_binpack_fills_one_node_first() -> None:
    snapshot = ClusterSnapshot([node("a"), node("b")], [])
    plan = Scheduler(strategy="binpack").place(requests("batch", 4, cpu=1000), snapshot, seed="e3")
    assert list(placed_on(plan.placements).values()) == [4]


def test_pending_replicas_say_why_and_are_placed_when_capacity_appears() -> None:
    cordoned = Node(id="id-c", name="c", capacity=Resources(8000, 16 * GIB), schedulable=False)
    down = Node(id="id-d", name="d", capacity=Resources(8000, 16 * GIB), state=NodeState.DOWN)
    small = node("s", cpu=500)
    plan = Scheduler().place(requests("big", 2, cpu=2000), ClusterSnapshot([cordoned, down, small], []), seed="e4")
    assert not plan.placements and len(plan.failures) == 2
    assert plan.failures[0].filtered == {"node cordoned": 1, "node down": 1, "insufficient cpu": 1}
    assert plan.failures[0].explain() == "no node fits: 1 insufficient cpu, 1 node cordoned, 1 node down"
    grown = ClusterSnapshot([cordoned, down, small, node("new")], [])
    assert len(Scheduler().place(requests("big", 2, cpu=2000), grown, seed="e5").placements) == 2


def test_existing_placements_count_against_capacity() -> None:
    existing = [Placement(app="old", index=0, node_id="id-a", resources=Resources(3900, GIB))]
    plan = Scheduler().place(requests("new", 1, cpu=200), ClusterSnapshot([node("a"), node("b")], existing), "e6")
    assert plan.placements[0].node_id == "id-b"


def test_same_seed_same_plan_and_large_clusters_use_the_candidate_limit() -> None:
    nodes = [node(f"n{i}") for i in range(500)]
    first = Scheduler().place(requests("web", 50), ClusterSnapshot(nodes, []), seed="same")
    second = Scheduler().place(requests("web", 50), ClusterSnapshot(nodes, []), seed="same")
    assert first.placements == second.placements
    assert len(set(p.node_id for p in first.placements)) == 50  # the walk moves on: no node reused


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of spread, binpack"):
        build_stack("random")


clusters = st.lists(st.builds(lambda i, cpu, mem, zone, ready, sched: Node(
    id=f"n{i}", name=f"n{i}", capacity=Resources(cpu, mem), labels={"zone": zone},
    state=NodeState.READY if ready else NodeState.DOWN, schedulable=sched),
    st.integers(0, 10_000), st.integers(0, 4000), st.integers(0, 4 * GIB), st.sampled_from("abc"),
    st.booleans(), st.booleans()), max_size=12, unique_by=lambda n: n.id)
asks = st.lists(st.tuples(st.integers(1, 2000), st.integers(1, 2 * GIB), st.sampled_from(["", "a", "b"]),
                          st.sampled_from(["", "node", "node.labels.zone"])), max_size=25)


@settings(max_examples=150, deadline=None)
@given(clusters, asks, st.sampled_from(["spread", "binpack"]), st.text(max_size=4))
def test_plans_never_break_the_rules(nodes: list[Node], wanted: list[tuple[int, int, str, str]], strategy: str,
                                     seed: str) -> None:
    reqs = [ReplicaRequest(app="app", index=i, resources=Resources(cpu, mem), spread_by=spread,
                           constraints=(parse_constraint(f"node.labels.zone == {zone}"),) if zone else ())
            for i, (cpu, mem, zone, spread) in enumerate(wanted)]
    plan = Scheduler(strategy).place(reqs, ClusterSnapshot(nodes, []), seed)
    by_id = {n.id: n for n in nodes}
    used: dict[str, Resources] = {}
    for placement in plan.placements:
        chosen = by_id[placement.node_id]
        assert chosen.state is NodeState.READY and chosen.schedulable
        request = reqs[placement.index]
        assert all(chosen.labels["zone"] == c.value for c in request.constraints)
        used[chosen.id] = used.get(chosen.id, Resources()) + placement.resources
        assert used[chosen.id].fits_in(chosen.capacity)
    assert sorted([p.index for p in plan.placements] + [f.index for f in plan.failures]) == list(range(len(reqs)))
    for failure in plan.failures:  # a pending replica always says why, one reason per node
        assert sum(failure.filtered.values()) == len(nodes)


# ---- reconciler ----------------------------------------------------------------------------------

NODES = {n.id: n for n in [node("a"), node("b"), Node(id="id-gone", name="gone", capacity=Resources(1, 1),
                                                        state=NodeState.DOWN)]}
WEB = AppSpec(name="web", replicas=3, resources=Resources(100, 1 << 20), version="v2")


def at(index: int, node_id: str = "id-a", version: str = "v2", app: str = "web") -> Placement:
    return Placement(app=app, index=index, node_id=node_id, resources=Resources(100, 1 << 20), version=version)


def test_reconcile_scale_up_down_and_deleted_apps() -> None:
    result = reconcile([WEB], [at(0), at(4), at(5), at(0, app="gone-app")], NODES)
    assert [p.index for p in result.place] == [1, 2]
    assert [(p.app, p.index) for p in result.stop] == [("gone-app", 0), ("web", 5), ("web", 4)]
    assert [p.index for p in result.ignore] == [0]


def test_reconcile_lost_updated_and_duplicates() -> None:
    placements = [at(0, "id-gone"), at(1, version="v1"), at(2, "id-a"), at(2, "id-b", version="v1")]
    result = reconcile([WEB], placements, NODES)
    assert [p.index for p in result.replace_lost] == [0]
    assert [p.index for p in result.update] == [1]
    assert [(p.index, p.node_id) for p in result.stop] == [(2, "id-b")]  # the stale duplicate goes
    assert [p.index for p in result.place] == [0, 1]
    assert [p.index for p in result.ignore] == [2]


def test_node_subnets_are_carved_from_the_cluster_cidr() -> None:
    from controlplane.errors import InvalidSpec
    from controlplane.subnets import SubnetPlan

    plan = SubnetPlan.parse("10.244.0.0/16", 24)
    assert plan.capacity == 256 and str(plan.subnet(0)) == "10.244.0.0/24"
    assert str(plan.subnet(255)) == "10.244.255.0/24"
    assert plan.first_free({0, 1, 3}) == 2 and SubnetPlan.parse("10.9.0.0/23", 24).first_free({0, 1}) is None
    for cidr, prefix, flag in (("10.244.0.0/33", 24, "--cluster-cidr"), ("10.244.0.1/16", 24, "--cluster-cidr"),
                               ("10.244.0.0/16", 16, "--node-subnet-prefix"),
                               ("10.0.0.0/8", 31, "--node-subnet-prefix")):
        with pytest.raises(InvalidSpec, match=flag):
            SubnetPlan.parse(cidr, prefix)
