"""The agent's image store: content-addressed blobs, layers unpacked once and shared, tags.

Owns: reading OCI image layouts and `docker save` archives (`archive`), hostile-input-safe layer
extraction (`extract`), image references (`reference`) and the store itself (`store`).
Must not import: grpc, the supervisor, container logic (the store is told what is in use).
"""
