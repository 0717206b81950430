"""The agent's gRPC edge: protobuf ⇄ domain converters, the error table, thin servicers.

Must not contain logic beyond conversion: everything else lives in the domain services.
"""
