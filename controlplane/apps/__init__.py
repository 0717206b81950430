"""Apps as the control plane keeps them: the model and its validation (pure; no gRPC or etcd).

The protobuf AppSpec is converted to `model.App` at the API edge; validation errors name the
field path (`resources.memory_bytes`) so that clusterctl can point at the file and line.
"""
