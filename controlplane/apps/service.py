"""Apps as the API offers them: apply (idempotent, with a dry run), list, scale, delete."""

from __future__ import annotations

import time
from dataclasses import dataclass

from shoal.controlplane.v1 import app_service_pb2 as spb
from shoal.controlplane.v1 import apps_pb2 as pb
from shoal.controlplane.v1 import assignment_service_pb2 as asb
from shoal.state.v1 import records_pb2 as rpb

from controlplane import events as app_events
from controlplane.apps.convert import app_from_pb, version_of
from controlplane.apps.validate import InvalidApp, validate
from controlplane.errors import Conflict, InvalidSpec, NotFound
from controlplane.etcd import EtcdClient
from controlplane.etcd import txn as t
from controlplane.state import keys
from controlplane.state.store import StateSnapshot, load_snapshot

Kind = spb.AppChange


@dataclass(frozen=True, slots=True)
class _View:
    snapshot: StateSnapshot
    reasons: dict[str, str]  # app -> why replicas are pending
    reported: dict[tuple[str, str, int], asb.ReplicaStatus]  # (node, app, index) -> its agent's report


class AppService:
    def __init__(self, client: EtcdClient) -> None:
        self.client = client

    async def apply(self, specs: list[pb.AppSpec], dry_run: bool) -> list[spb.AppChange]:
        for index, spec in enumerate(specs):
            try:
                validate(app_from_pb(spec))
            except InvalidApp as e:
                raise InvalidSpec(f"apps[{index}] ({spec.name or 'unnamed'}): {e.field}", e.expected) from None
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise InvalidSpec("apps", "each app name may appear once per apply")
        return [await self._apply_one(spec, dry_run) for spec in specs]

    async def _apply_one(self, spec: pb.AppSpec, dry_run: bool) -> spb.AppChange:
        key = keys.app(spec.name)
        existing = await self.client.get(key)
        version = version_of(spec)
        now = time.time_ns()
        if existing is None:
            kind, record = Kind.KIND_CREATE, rpb.AppRecord(spec=spec, version=version, created_at=now, updated_at=now)
        else:
            record = rpb.AppRecord.FromString(existing.value)
            if record.version != version:
                kind = Kind.KIND_UPDATE
            elif record.spec.replicas != spec.replicas:
                kind = Kind.KIND_SCALE
            else:
                return spb.AppChange(name=spec.name, kind=Kind.KIND_NO_OP, version=version)
            record.spec.CopyFrom(spec)
            record.version, record.updated_at = version, now
        if not dry_run:
            expected = existing.mod_revision if existing else 0
            written = await self.client.txn([t.mod_revision(key, "==", expected)],
                                            [t.put(key, record.SerializeToString())])
            if not written.succeeded:
                raise Conflict(f"app {spec.name} was changed concurrently; apply again")
        return spb.AppChange(name=spec.name, kind=kind, version=version)

    async def _view(self) -> _View:
        """Everything the read APIs show, read once per call."""
        snapshot = await load_snapshot(self.client)
        reasons = {kv.key.decode().removeprefix(keys.STATUS): kv.value.decode()
                   for kv in (await self.client.get_prefix(keys.STATUS))[0]}
        kvs, _ = await self.client.get_prefix(keys.REPLICAS)
        reported = {keys.parse_replica(kv.key.decode()): asb.ReplicaStatus.FromString(kv.value) for kv in kvs}
        return _View(snapshot, reasons, reported)

    async def list_apps(self) -> list[spb.AppStatus]:
        return self._statuses(await self._view())

    async def list_replicas(self, app: str) -> list[spb.ReplicaInfo]:
        return self._replicas(await self._view(), app)

    @staticmethod
    def _statuses(view: _View) -> list[spb.AppStatus]:
        snapshot, reasons, reported = view.snapshot, view.reasons, view.reported
        statuses = []
        for name, record in sorted(snapshot.apps.items()):
            placed = sum(1 for p in snapshot.placements if p.app == name and p.version == record.version)
            running = sum(1 for p in snapshot.placements
                          if p.app == name and p.version == record.version and p.index < record.spec.replicas
                          and (report := reported.get((p.node_id, p.app, p.index))) is not None
                          and report.version == p.version and report.state == "running")
            statuses.append(spb.AppStatus(spec=record.spec, version=record.version, placed=placed, running=running,
                                          pending_reason=reasons.get(name, "") if placed < record.spec.replicas
                                          else ""))
        return statuses

    @staticmethod
    def _replicas(view: _View, app: str) -> list[spb.ReplicaInfo]:
        snapshot, reasons, reported = view.snapshot, view.reasons, view.reported
        if app and app not in snapshot.apps:
            raise NotFound(f"no such app: {app}")
        names = {node.id: node.name for node in snapshot.nodes}
        placed = {(p.app, p.index): p for p in snapshot.placements}
        found = []
        for name, record in sorted(snapshot.apps.items()):
            if app and name != app:
                continue
            for index in range(record.spec.replicas):
                placement = placed.get((name, index))
                if placement is None:
                    found.append(spb.ReplicaInfo(app=name, index=index, state="pending", version=record.version,
                                                 error=reasons.get(name, "waiting for the scheduler")))
                    continue
                report = reported.get((placement.node_id, name, index))
                if report is None or report.version != placement.version:
                    report = asb.ReplicaStatus(state="scheduled")  # its agent has not reported it yet
                found.append(spb.ReplicaInfo(
                    app=name, index=index, node=names.get(placement.node_id, placement.node_id), state=report.state,
                    version=placement.version, restarts=report.restarts, exit_code=report.exit_code,
                    error=report.error, placed_at=snapshot.placed_at.get((name, index), 0), address=report.address))
        return found

    async def describe(self, name: str) -> spb.DescribeAppResponse:
        view = await self._view()
        status = next((s for s in self._statuses(view) if s.spec.name == name), None)
        if status is None:
            raise NotFound(f"no such app: {name}")
        recorded = await app_events.read(self.client, name)
        return spb.DescribeAppResponse(status=status, replicas=self._replicas(view, name),
                                       events=[spb.AppEvent(at=at, message=message) for at, message in recorded])

    async def scale(self, name: str, replicas: int) -> spb.AppChange:
        existing = await self.client.get(keys.app(name))
        if existing is None:
            raise NotFound(f"no such app: {name}")
        spec = rpb.AppRecord.FromString(existing.value).spec
        spec.replicas = replicas
        [change] = await self.apply([spec], dry_run=False)
        return change

    async def delete(self, name: str) -> None:
        if not await self.client.delete(keys.app(name)):
            raise NotFound(f"no such app: {name}")
        await self.client.delete(keys.status(name))
        await self.client.delete(keys.events(name))
