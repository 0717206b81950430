"""Containers on this host: the records, their lifecycle, and the service the API calls.

Pure (no asyncio, grpc or kernel): `model`, `state`, `restart`, `validate`, `runspec`.
Effects: `records` (files), `logs` (reading log files), `service` (drives the supervisor).
Must not import: grpc or protobuf (the API edge converts), `agent.supervisor` internals other than
its protocol.
"""
