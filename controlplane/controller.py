"""The leader's loop: campaign, then evaluate whenever the state changes (and every second).

One evaluation, level-triggered from etcd alone:
  1. read a snapshot; reconcile the desired apps against the placements;
  2. commit the stops first (excess, deleted apps, replicas on down nodes, old versions), so the
     resources they free are available, and re-read;
  3. schedule the replicas still missing and commit them (fenced, revision-guarded);
  4. record, per app, why replicas are pending (only when that changes).
A conflict just means the next evaluation plans again from fresh state. The controller stops
acting the moment its lease may have expired, and campaigns again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from shoal.controlplane.v1.assignment_service_pb2 import ReplicaStatus

from controlplane import events as app_events
from controlplane.apps.convert import scheduling_app
from controlplane.etcd import Election, EtcdClient, EtcdError, LeaseKeeper, WatchReset, fence
from controlplane.etcd.watch import watch_prefix
from controlplane.metrics import ControlPlaneMetrics
from controlplane.scheduling.reconciler import Reconciliation, reconcile
from controlplane.scheduling.scheduler import Scheduler
from controlplane.scheduling.stack import ClusterSnapshot
from controlplane.state import keys
from controlplane.state.applier import PlanApplier
from controlplane.state.store import StateSnapshot, load_snapshot

log = logging.getLogger(__name__)
TICK = 1.0
SCHEDULING_INPUTS = (keys.NODES, keys.ALIVE, keys.APPS, keys.PLACEMENTS)
LEADER_TTL = 10


class Controller:
    def __init__(self, client: EtcdClient, identity: str, metrics: ControlPlaneMetrics,
                 strategy: str = "spread") -> None:
        self.client = client
        self.metrics = metrics
        self.identity = identity
        self.scheduler = Scheduler(strategy)
        self.is_leader = False
        self._changed = asyncio.Event()
        self._reasons: dict[str, str] = {}

    async def run(self) -> None:
        watcher = asyncio.get_running_loop().create_task(self._watch())
        try:
            while True:
                try:
                    await self._lead()
                except EtcdError as e:
                    log.warning("controller: %s; campaigning again", e)
                    await asyncio.sleep(TICK)
        finally:
            watcher.cancel()

    async def _watch(self) -> None:
        """Evaluates again when what scheduling reads changes; the agents' status reports, events and
        pending reasons (most of the writes) do not wake it."""
        async for change in watch_prefix(self.client, keys.ROOT):
            if isinstance(change, WatchReset) or any(
                    event.kv.key.decode().startswith(SCHEDULING_INPUTS) for event in change.events):
                self._changed.set()

    async def _lead(self) -> None:
        keeper = await LeaseKeeper.grant(self.client, LEADER_TTL)
        try:
            leader = await Election(self.client, keys.LEADER).campaign(keeper.lease, self.identity)
            log.info("%s leads the control plane", self.identity)
            self.is_leader = True
            self.metrics.leader.set(1)
            applier = PlanApplier(self.client, fence(leader))
            while keeper.valid:
                self._changed.clear()
                await self.evaluate(applier)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), TICK)
            log.error("%s lost its leadership lease; it stops scheduling", self.identity)
        finally:
            self.is_leader = False
            self.metrics.leader.set(0)
            await keeper.stop(revoke=True)

    async def evaluate(self, applier: PlanApplier) -> None:
        began = time.perf_counter()
        state = await load_snapshot(self.client)
        result = self._reconcile(state)
        stops = result.stop + result.replace_lost + result.update
        names = {node.id: node.name for node in state.nodes}
        events: dict[str, list[str]] = {}
        if stops:
            stopped = await applier.apply(state, stop=stops)
            self.metrics.stops.inc(stopped.committed)
            if not stopped.conflicts:
                for cause, placements in (("not wanted (scaled down or deleted)", result.stop),
                                          ("its node is down: placing it again", result.replace_lost),
                                          ("new version: replacing it", result.update)):
                    for p in placements:
                        events.setdefault(p.app, []).append(
                            f"stopped {p.app}.{p.index} on {names.get(p.node_id, p.node_id)}: {cause}")
            state = await load_snapshot(self.client)
            result = self._reconcile(state)
        plan = self.scheduler.place(result.place, ClusterSnapshot(state.nodes, state.placements),
                                    seed=str(state.revision))
        if plan.placements:
            committed = await applier.apply(state, place=plan.placements)
            self.metrics.placements.inc(committed.committed)
            if not committed.conflicts:
                for p in plan.placements:
                    node = names.get(p.node_id, p.node_id)
                    events.setdefault(p.app, []).append(f"placed {p.app}.{p.index} on {node}")
        reasons = {name: "" for name in state.apps}
        for failure in plan.failures:
            reasons[failure.app] = failure.explain()
        for app, reason in reasons.items():
            if reason and self._reasons.get(app) != reason:
                events.setdefault(app, []).append(f"pending: {reason}")
        await self._record_reasons(reasons)
        for app, messages in events.items():
            if app in state.apps:
                await app_events.record(self.client, app, messages)
        await self._refresh_metrics(state)
        self.metrics.evaluation.observe(time.perf_counter() - began)
        log.debug("evaluation at revision %d: %d placed, %d stopped, %d pending in %.1f ms", state.revision,
                  len(plan.placements), len(stops), len(plan.failures), (time.perf_counter() - began) * 1000)

    @staticmethod
    def _reconcile(state: StateSnapshot) -> Reconciliation:
        apps = [scheduling_app(record.spec, record.version) for record in state.apps.values()]
        return reconcile(apps, state.placements, {node.id: node for node in state.nodes})

    async def _refresh_metrics(self, state: StateSnapshot) -> None:
        kvs, _ = await self.client.get_prefix(keys.REPLICAS)
        running: dict[str, int] = {}
        for kv in kvs:
            report = ReplicaStatus.FromString(kv.value)
            record = state.apps.get(report.app)
            if record is not None and report.state == "running" and report.version == record.version:
                running[report.app] = running.get(report.app, 0) + 1
        apps = {name: (record.spec.replicas, record.version) for name, record in state.apps.items()}
        self.metrics.refresh(state.nodes, apps, state.placements, running)

    async def _record_reasons(self, reasons: dict[str, str]) -> None:
        for app, reason in reasons.items():
            if self._reasons.get(app) != reason:
                if reason:
                    await self.client.put(keys.status(app), reason)
                else:
                    await self.client.delete(keys.status(app))
                self._reasons[app] = reason
