"""The runtime supervisor: one per host, the parent of every container's init (DESIGN.md §2).

It runs single-threaded under `python -S` and imports only the standard library, `agent.cgroups`
and its own modules: gRPC's threads make fork unsafe in the agent, `setns(2)` into a mount
namespace is refused to multi-threaded processes, and fork cost grows with the forking process's
size (≈32 µs per MB), so a lean parent keeps container start fast.
Must not import: grpc, asyncio, protobuf, or anything under `agent` other than `agent.cgroups`
and `agent.supervisor` (tests/unit/test_supervisor_imports.py enforces it).
"""
