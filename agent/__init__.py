"""shoal-agent: runs containers on one host through the kernel and serves the Agent gRPC API.

Owns: the image store (`images`), container records and lifecycle (`containers`), the runtime
supervisor (`supervisor`, stdlib only: it forks every container), cgroup managers (`cgroups`),
the gRPC edge (`api`) and the composition root (`wiring`).
Must not import: `controlplane` or `cli` (the protos are the only shared contract).
"""

import os

# gRPC's event-engine I/O for channels and listeners (experiments on by default since grpcio 1.6x)
# passes each call between its own threads about five more times per side than the posix path it
# replaced; on two cores that made an Agent API round trip ~15% dearer (README, "Performance").
# The same value in agent/, controlplane/ and cli/: each package is imported before grpc in its processes.
os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_client,-event_engine_listener")
# That path logs a peer's GOAWAY (an agent shutting down) at INFO on stderr unless told otherwise.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
