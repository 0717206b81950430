"""shoal-controlplane: desired state in etcd, scheduling, healing (issue #3; being built).

Owns today: `etcd`, Shoal's own asyncio client for etcd's v3 gRPC API, and the embedded etcd.
Must not import: `agent` or `cli` (the protos are the only shared contract).
"""
