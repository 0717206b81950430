"""Every etcd key layout of Shoal, in one place.

    /shoal/nodes/<node id>                      NodeRecord
    /shoal/alive/<node id>                      on the node's lease: present while it heartbeats
    /shoal/apps/<app name>                      AppRecord
    /shoal/placements/<node id>/<app>/<index>   PlacementRecord (a node's agent watches its prefix)
    /shoal/status/<app name>                    why replicas are pending (written by the leader)
    /shoal/events/<app name>                    the app's recent events, JSON lines (written by the leader)
    /shoal/replicas/<node id>/<app>/<index>     ReplicaStatus as the node's agent last reported it
    /shoal/leader                               the control planes' election
    /shoal/network                              the cluster CIDR and node subnet size, fixed at first start
    /shoal/subnets/<index>                      the node id holding the index-th subnet of the cluster CIDR
"""

from __future__ import annotations

ROOT = "/shoal/"
NODES = ROOT + "nodes/"
ALIVE = ROOT + "alive/"
APPS = ROOT + "apps/"
PLACEMENTS = ROOT + "placements/"
STATUS = ROOT + "status/"
EVENTS = ROOT + "events/"
REPLICAS = ROOT + "replicas/"
LEADER = ROOT + "leader"
NETWORK = ROOT + "network"
SUBNETS = ROOT + "subnets/"


def node(node_id: str) -> str:
    return NODES + node_id


def alive(node_id: str) -> str:
    return ALIVE + node_id


def app(name: str) -> str:
    return APPS + name


def node_placements(node_id: str) -> str:
    return f"{PLACEMENTS}{node_id}/"


def placement(node_id: str, app_name: str, index: int) -> str:
    return f"{PLACEMENTS}{node_id}/{app_name}/{index}"


def status(app_name: str) -> str:
    return STATUS + app_name


def node_replicas(node_id: str) -> str:
    return f"{REPLICAS}{node_id}/"


def replica(node_id: str, app_name: str, index: int) -> str:
    return f"{REPLICAS}{node_id}/{app_name}/{index}"


def parse_replica(key: str) -> tuple[str, str, int]:
    """(node id, app, index) of a replica status key."""
    node_id, app_name, index = key.removeprefix(REPLICAS).split("/")
    return node_id, app_name, int(index)


def events(app_name: str) -> str:
    return EVENTS + app_name


def subnet(index: int) -> str:
    return f"{SUBNETS}{index}"
