"""The control plane's state in etcd: key layouts (`keys`), record conversion (`convert`), reading
a consistent snapshot (`store`) and committing plans (`applier`).

Must not import: gRPC servicers or the scheduler's internals beyond its model.
"""
