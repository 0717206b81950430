"""The Nodes and Apps services: proto in, await the domain service, proto out."""

from __future__ import annotations

from typing import Any

from shoal.controlplane.v1 import app_service_pb2 as apb
from shoal.controlplane.v1 import (
    app_service_pb2_grpc,
    assignment_service_pb2_grpc,
    image_service_pb2_grpc,
    network_service_pb2_grpc,
    node_service_pb2_grpc,
    replica_service_pb2_grpc,
)
from shoal.controlplane.v1 import assignment_service_pb2 as spb
from shoal.controlplane.v1 import image_service_pb2 as ipb
from shoal.controlplane.v1 import network_service_pb2 as netpb
from shoal.controlplane.v1 import node_service_pb2 as npb
from shoal.controlplane.v1 import replica_service_pb2 as rpb

from controlplane.apps.service import AppService
from controlplane.assignments import AssignmentService
from controlplane.images import ImageDistributor
from controlplane.network import NetworkViews
from controlplane.nodes import NodeRegistry
from controlplane.replicas import ReplicaProxy

Context = Any


class NodesServicer(node_service_pb2_grpc.NodesServicer):
    def __init__(self, registry: NodeRegistry) -> None:
        self.registry = registry

    async def RegisterNode(self, request: npb.RegisterNodeRequest, context: Context) -> Any:
        return await self.registry.register(request)

    async def Heartbeat(self, request: npb.HeartbeatRequest, context: Context) -> Any:
        await self.registry.heartbeat(request.node_id, request.lease)
        return npb.HeartbeatResponse()

    async def ListNodes(self, request: npb.ListNodesRequest, context: Context) -> Any:
        return npb.ListNodesResponse(nodes=await self.registry.list_nodes())

    async def SetSchedulable(self, request: npb.SetSchedulableRequest, context: Context) -> Any:
        return npb.SetSchedulableResponse(node=await self.registry.set_schedulable(request.node, request.schedulable))

    async def DrainNode(self, request: npb.DrainNodeRequest, context: Context) -> Any:
        node, moved = await self.registry.drain(request.node)
        return npb.DrainNodeResponse(node=node, moved=moved)

    async def RemoveNode(self, request: npb.RemoveNodeRequest, context: Context) -> Any:
        await self.registry.remove(request.node, request.force)
        return npb.RemoveNodeResponse()


class AppsServicer(app_service_pb2_grpc.AppsServicer):
    def __init__(self, apps: AppService) -> None:
        self.apps = apps

    async def ApplyApps(self, request: apb.ApplyAppsRequest, context: Context) -> Any:
        return apb.ApplyAppsResponse(changes=await self.apps.apply(list(request.apps), request.dry_run))

    async def ListApps(self, request: apb.ListAppsRequest, context: Context) -> Any:
        return apb.ListAppsResponse(apps=await self.apps.list_apps())

    async def ScaleApp(self, request: apb.ScaleAppRequest, context: Context) -> Any:
        return apb.ScaleAppResponse(change=await self.apps.scale(request.name, request.replicas))

    async def DeleteApp(self, request: apb.DeleteAppRequest, context: Context) -> Any:
        await self.apps.delete(request.name)
        return apb.DeleteAppResponse()

    async def DescribeApp(self, request: apb.DescribeAppRequest, context: Context) -> Any:
        return await self.apps.describe(request.name)

    async def ListReplicas(self, request: apb.ListReplicasRequest, context: Context) -> Any:
        return apb.ListReplicasResponse(replicas=await self.apps.list_replicas(request.app))


class AssignmentsServicer(assignment_service_pb2_grpc.AssignmentsServicer):
    def __init__(self, assignments: AssignmentService) -> None:
        self.assignments = assignments

    async def WatchAssignments(self, request: spb.WatchAssignmentsRequest, context: Context) -> Any:
        async for update in self.assignments.watch(request.node_id):
            yield update

    async def ReportStatus(self, request: spb.ReportStatusRequest, context: Context) -> Any:
        await self.assignments.report(request.node_id, list(request.replicas))
        return spb.ReportStatusResponse()


class ReplicasServicer(replica_service_pb2_grpc.ReplicasServicer):
    def __init__(self, proxy: ReplicaProxy) -> None:
        self.proxy = proxy

    async def ReplicaLogs(self, request: rpb.ReplicaLogsRequest, context: Context) -> Any:
        async for response in self.proxy.logs(request):
            yield response

    async def ReplicaExec(self, request_iterator: Any, context: Context) -> Any:
        async for response in self.proxy.exec(request_iterator):
            yield response


class ImagesServicer(image_service_pb2_grpc.ImagesServicer):
    def __init__(self, distributor: ImageDistributor) -> None:
        self.distributor = distributor

    async def ImportImage(self, request_iterator: Any, context: Context) -> Any:
        return ipb.ClusterImportResponse(nodes=await self.distributor.import_archive(request_iterator))


class NetworkServicer(network_service_pb2_grpc.NetworkServicer):
    def __init__(self, views: NetworkViews) -> None:
        self.views = views

    async def WatchNetwork(self, request: netpb.WatchNetworkRequest, context: Context) -> Any:
        async for view in self.views.watch(request.node_id):
            yield view
