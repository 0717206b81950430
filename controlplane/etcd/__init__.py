"""Shoal's asyncio client for etcd's v3 gRPC API (DESIGN.md §3; research/etcd-client.md).

Why our own: the `etcd3` package is dead and does not import with protobuf >= 4, and each
maintained alternative failed something the control plane needs (no TLS, split-brain election,
watches that hang on compaction or die silently, writes retried twice). The rules it keeps:
every call has a deadline; gRPC keepalive is on; reconnect backoff is 100 ms-1 s; watches resume
from the last revision + 1 and rebuild from a fresh range after compaction; one keepalive stream
per lease, renewed every TTL/3, with a local validity deadline the holder must respect; leader-only
writes are fenced on the election key's create revision; a transaction is never retried blindly.
"""

from controlplane.etcd.client import EtcdClient, EtcdConfig
from controlplane.etcd.election import Election, fence
from controlplane.etcd.errors import Compacted, EtcdError, EtcdTimeout, EtcdUnavailable, LeaseNotFound
from controlplane.etcd.keepalive import LeaseKeeper, LeaseRenewer
from controlplane.etcd.watch import WatchEvents, WatchReset

__all__ = ["Compacted", "Election", "EtcdClient", "EtcdConfig", "EtcdError", "EtcdTimeout", "EtcdUnavailable",
           "LeaseKeeper", "LeaseNotFound", "LeaseRenewer", "WatchEvents", "WatchReset", "fence"]
