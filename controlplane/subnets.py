"""Node subnets: each node gets its own block of the cluster CIDR for its containers' addresses.

The cluster CIDR, the subnet size and the routing mode are fixed when the cluster is first started
(they are in every container's address and every node's routes); a control plane started later
with others is refused, naming both.
A node keeps its subnet across re-registrations and control-plane restarts, and gives it back
only when it is removed (`clusterctl node rm`). The carving is pure arithmetic, tested alone.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from controlplane.errors import Conflict, Exhausted, InvalidSpec
from controlplane.etcd import EtcdClient
from controlplane.etcd import txn as t
from controlplane.state import keys

DEFAULT_CIDR = "10.244.0.0/16"
DEFAULT_PREFIX = 24
ROUTINGS = ("host-gw", "vxlan")
ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class SubnetPlan:
    cidr: ipaddress.IPv4Network
    prefix: int
    routing: str = "host-gw"  # how nodes reach each other's subnets (see RegisterNodeResponse.routing)

    @classmethod
    def parse(cls, cidr: str, prefix: int, routing: str = "host-gw") -> SubnetPlan:
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError as e:
            raise InvalidSpec("--cluster-cidr", f"{cidr!r}: an IPv4 network such as 10.244.0.0/16 ({e})") from None
        if not network.prefixlen < prefix <= 29:
            raise InvalidSpec("--node-subnet-prefix", f"/{prefix}: longer than the cluster CIDR's "
                                                      f"/{network.prefixlen} and at most /29")
        if routing not in ROUTINGS:
            raise InvalidSpec("--network-routing", f"{routing!r}: expected one of {', '.join(ROUTINGS)}")
        return cls(network, prefix, routing)

    @property
    def capacity(self) -> int:
        return int(2 ** (self.prefix - self.cidr.prefixlen))

    def subnet(self, index: int) -> ipaddress.IPv4Network:
        size = 2 ** (32 - self.prefix)
        return ipaddress.IPv4Network((int(self.cidr.network_address) + index * size, self.prefix))

    def first_free(self, taken: set[int]) -> int | None:
        return next((index for index in range(self.capacity) if index not in taken), None)

    def to_json(self) -> bytes:
        return json.dumps({"cidr": str(self.cidr), "prefix": self.prefix, "routing": self.routing}).encode()


async def settle_plan(client: EtcdClient, wanted: SubnetPlan) -> SubnetPlan:
    """Stores the plan on the cluster's first start; afterwards the stored one must be the same."""
    written = await client.txn([t.create_revision(keys.NETWORK, "==", 0)], [t.put(keys.NETWORK, wanted.to_json())])
    if written.succeeded:
        return wanted
    stored = await client.get(keys.NETWORK)
    assert stored is not None
    data = json.loads(stored.value)
    existing = SubnetPlan(ipaddress.IPv4Network(data["cidr"]), int(data["prefix"]), data.get("routing", "host-gw"))
    if existing != wanted:
        raise Conflict(f"this cluster's network is {existing.cidr} in /{existing.prefix} node subnets with "
                       f"{existing.routing} routing, not {wanted.cidr} in /{wanted.prefix} with {wanted.routing}: "
                       f"start the control plane with --cluster-cidr {existing.cidr} --node-subnet-prefix "
                       f"{existing.prefix} --network-routing {existing.routing}")
    return existing


async def allocate(client: EtcdClient, plan: SubnetPlan, node_id: str) -> tuple[int, str]:
    """The node's subnet index and CIDR: the one it holds, else the first free one (claimed by a
    create-if-absent transaction, so two registrations never get the same)."""
    for _ in range(ATTEMPTS):
        kvs, _ = await client.get_prefix(keys.SUBNETS)
        holders = {int(kv.key.decode().removeprefix(keys.SUBNETS)): kv.value.decode() for kv in kvs}
        mine = next((index for index, holder in holders.items() if holder == node_id), None)
        if mine is not None:
            return mine, str(plan.subnet(mine))
        index = plan.first_free(set(holders))
        if index is None:
            raise Exhausted(f"no free /{plan.prefix} subnet left in the cluster CIDR {plan.cidr} "
                            f"({plan.capacity} nodes hold them all): remove nodes that are gone (clusterctl node rm)")
        claimed = await client.txn([t.create_revision(keys.subnet(index), "==", 0)],
                                   [t.put(keys.subnet(index), node_id)])
        if claimed.succeeded:
            return index, str(plan.subnet(index))
    raise Conflict(f"node {node_id}: subnets changed during {ATTEMPTS} attempts; register again")
