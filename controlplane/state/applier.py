"""Committing a plan: etcd transactions guarded so that a plan made from stale state never lands.

Each chunk is one transaction whose compares require, besides the leader's fence:
- every node it places on is unchanged since the snapshot (not cordoned, relabelled, removed);
- every placement it creates does not exist yet (no concurrent planner put one there);
- every placement it stops is unchanged since the snapshot.
A failed compare (or a timeout, whose outcome is unknown) is a conflict: the caller re-reads and
re-plans from a fresh snapshot, never retrying the same transaction blindly. Chunks stay under
etcd's default limit of 128 operations per transaction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from shoal.etcd.v3 import messages_pb2 as pb

from controlplane.etcd import EtcdClient, EtcdTimeout
from controlplane.etcd import txn as t
from controlplane.scheduling.model import Placement
from controlplane.state import keys
from controlplane.state.convert import placement_to_record
from controlplane.state.store import StateSnapshot

CHUNK = 40  # placements per transaction: at most 2 * 40 + 1 compares and 40 operations


@dataclass
class ApplyResult:
    committed: int = 0
    conflicts: int = 0  # placements in chunks that were refused or whose outcome is unknown


class PlanApplier:
    def __init__(self, client: EtcdClient, fence: pb.Compare | None = None) -> None:
        self.client = client
        self.fence = fence

    async def apply(self, snapshot: StateSnapshot, place: Sequence[Placement] = (),
                    stop: Sequence[Placement] = ()) -> ApplyResult:
        result = ApplyResult()
        changes = [(p, True) for p in place] + [(p, False) for p in stop]
        for start in range(0, len(changes), CHUNK):
            chunk = changes[start:start + CHUNK]
            try:
                response = await self.client.txn(self._compares(snapshot, chunk), self._operations(chunk))
                succeeded = response.succeeded
            except EtcdTimeout:
                succeeded = False  # may have landed: the re-read will tell
            if succeeded:
                result.committed += len(chunk)
            else:
                result.conflicts += len(chunk)
        return result

    def _compares(self, snapshot: StateSnapshot, chunk: list[tuple[Placement, bool]]) -> list[pb.Compare]:
        compares = [self.fence] if self.fence is not None else []
        for node_id in sorted({p.node_id for p, adding in chunk if adding}):
            compares.append(t.mod_revision(keys.node(node_id), "==", snapshot.node_revisions.get(node_id, 0)))
        for placement, adding in chunk:
            key = keys.placement(placement.node_id, placement.app, placement.index)
            compares.append(t.mod_revision(key, "==", 0 if adding else snapshot.placement_revisions.get(key, 0)))
        return compares

    @staticmethod
    def _operations(chunk: list[tuple[Placement, bool]]) -> list[pb.RequestOp]:
        now = time.time_ns()
        operations = []
        for placement, adding in chunk:
            key = keys.placement(placement.node_id, placement.app, placement.index)
            if adding:
                operations.append(t.put(key, placement_to_record(placement, now).SerializeToString()))
            else:
                operations.append(t.delete(key))
        return operations
