"""A replica's output and commands run in it, proxied to the agent of the node it is placed on.

Targets are what operators type: `app.index` for one replica, or an app's name (logs: all of its
placed replicas; exec: its first running one). On its node, a replica is the container named
`app.index` (agent/membership.py), so the agent is asked for it by that name.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from shoal.agent.v1 import agent_pb2 as apb
from shoal.controlplane.v1 import assignment_service_pb2 as asb
from shoal.controlplane.v1 import replica_service_pb2 as pb
from shoal.state.v1 import records_pb2 as rpb

from controlplane import agents
from controlplane.agents import AgentDirectory
from controlplane.errors import ControlPlaneError, InvalidSpec, NotFound, NotReady
from controlplane.state import keys

FOLLOW_BUFFER = 256


@dataclass(frozen=True, slots=True)
class PlacedReplica:
    app: str
    index: int
    node: rpb.NodeRecord
    state: str  # as its agent last reported it; "scheduled" before any report

    @property
    def name(self) -> str:
        return f"{self.app}.{self.index}"


def parse_target(target: str) -> tuple[str, int | None]:
    """`web.2` → ("web", 2); `web` → ("web", None). App names are DNS labels, so never hold a dot."""
    app, dot, index = target.rpartition(".")
    if dot and index.isdigit() and app:
        return app, int(index)
    if not target or "." in target or "/" in target:
        raise InvalidSpec("target", f"{target!r}: expected an app name or a replica `APP.INDEX`")
    return target, None


class ReplicaProxy:
    def __init__(self, directory: AgentDirectory) -> None:
        self.directory = directory
        self.client = directory.client

    async def resolve(self, target: str) -> list[PlacedReplica]:
        """The target's placed replicas, by index. NOT_FOUND for an unknown app or index; a pending
        replica (not placed) is NotReady, saying so."""
        app, index = parse_target(target)
        record = await self.client.get(keys.app(app))
        if record is None:
            raise NotFound(f"no such app: {app}")
        replicas = rpb.AppRecord.FromString(record.value).spec.replicas
        if index is not None and index >= replicas:
            raise NotFound(f"no such replica: {target} ({app} has {replicas})")
        kvs, _ = await self.client.get_prefix(keys.PLACEMENTS)
        placements = [p for p in (rpb.PlacementRecord.FromString(kv.value) for kv in kvs)
                      if p.app == app and p.index < replicas and (index is None or p.index == index)]
        if index is not None and not placements:
            raise NotReady(f"{target} is pending: it is not placed on any node yet (clusterctl describe {app})")
        found = []
        for placement in sorted(placements, key=lambda p: p.index):
            node = await self.directory.node(placement.node_id)
            reported = await self.client.get(keys.replica(placement.node_id, app, placement.index))
            state = asb.ReplicaStatus.FromString(reported.value).state if reported else "scheduled"
            found.append(PlacedReplica(app, placement.index, node, state))
        return found

    async def logs(self, request: pb.ReplicaLogsRequest) -> AsyncIterator[pb.ReplicaLogsResponse]:
        """Without follow, each replica's output in turn (by index); with follow, all of them as it
        comes. A replica whose agent fails does not cut the others short: the first failure is
        raised once they are done."""
        replicas = await self.resolve(request.target)
        if not request.follow:
            failure: ControlPlaneError | None = None
            for replica in replicas:
                try:
                    async for response in self._replica_logs(replica, request):
                        yield response
                except ControlPlaneError as e:
                    failure = failure or e
            if failure is not None:
                raise failure
            return
        merged: asyncio.Queue[pb.ReplicaLogsResponse | None] = asyncio.Queue(FOLLOW_BUFFER)
        failures: list[ControlPlaneError] = []

        async def pump(replica: PlacedReplica) -> None:
            try:
                async for response in self._replica_logs(replica, request):
                    await merged.put(response)
            except ControlPlaneError as e:
                failures.append(e)

        async def finish(pumps: list[asyncio.Task[None]]) -> None:
            await asyncio.gather(*pumps)
            await merged.put(None)

        pumps = [asyncio.create_task(pump(replica)) for replica in replicas]
        finisher = asyncio.create_task(finish(pumps))
        try:
            while (item := await merged.get()) is not None:
                yield item
        finally:
            for task in (finisher, *pumps):
                task.cancel()
        if failures:
            raise failures[0]

    async def _replica_logs(self, replica: PlacedReplica,
                            request: pb.ReplicaLogsRequest) -> AsyncIterator[pb.ReplicaLogsResponse]:
        stub = self.directory.stub(replica.node)
        call = stub.ContainerLogs(apb.ContainerLogsRequest(container=replica.name, follow=request.follow,
                                                           tail=request.tail))
        try:
            async for response in agents.stream(replica.node, call):
                yield pb.ReplicaLogsResponse(replica=replica.name, entries=response.entries)
        finally:
            call.cancel()

    async def exec(self, requests: AsyncIterator[apb.ExecRequest]) -> AsyncIterator[apb.ExecResponse]:
        first = await anext(requests, None)
        if first is None or first.WhichOneof("request") != "start":
            raise InvalidSpec("start", "the first message of an exec stream must be `start`")
        start = apb.ExecStart()
        start.CopyFrom(first.start)
        replica = await self._exec_target(start.container)
        start.container = replica.name

        async def forwarded() -> AsyncIterator[apb.ExecRequest]:
            yield apb.ExecRequest(start=start)
            async for request in requests:
                yield request

        call = self.directory.stub(replica.node).Exec(forwarded())
        try:
            async for response in agents.stream(replica.node, call):
                yield response
        finally:
            with contextlib.suppress(Exception):
                call.cancel()

    async def _exec_target(self, target: str) -> PlacedReplica:
        replicas = await self.resolve(target)
        running = [r for r in replicas if r.state == "running"]
        if running:
            return running[0]
        if parse_target(target)[1] is not None:
            replica = replicas[0]
            raise NotReady(f"{replica.name} is not running on {replica.node.name} (state: {replica.state})")
        raise NotReady(f"{target} has no running replica (clusterctl get containers {target})")
