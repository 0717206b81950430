"""shoal-agent: runs containers on one host through the kernel and serves the Agent gRPC API.

Owns: the image store (`images`), container records and lifecycle (`containers`), the runtime
supervisor (`supervisor`, stdlib only: it forks every container), cgroup managers (`cgroups`),
the gRPC edge (`api`) and the composition root (`wiring`).
Must not import: `controlplane` or `cli` (the protos are the only shared contract).
"""
