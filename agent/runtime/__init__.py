"""The agent's side of the runtime supervisor: starting it, and an asyncio client for its protocol.

Must not import: grpc or protobuf.
"""
