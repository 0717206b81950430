"""clusterctl: the command line for Shoal.

Owns: argument parsing, talking gRPC to an agent (later the control plane), and human output.
Must not import: `agent` or `controlplane` — the protos are the only shared contract.
"""
