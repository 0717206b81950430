"""The scheduling core (DESIGN.md §4, Nomad's design): pure code over frozen dataclasses.

Owns: the model (`model`), placement constraints (`constraints`), the filter → score stack
(`stack`), placing replicas on nodes (`scheduler`) and deciding what to change (`reconciler`).
Must not import: grpc, protobuf, asyncio or etcd (tests/unit/test_layering.py checks it); the
control plane feeds it snapshots and commits its plans.
"""
