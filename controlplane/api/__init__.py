"""The control plane's gRPC edge: thin servicers and the one error table."""
