from shoal.agent.v1 import agent_pb2 as _agent_pb2
from shoal.agent.v1 import containers_pb2 as _containers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReplicaLogsRequest(_message.Message):
    __slots__ = ("target", "follow", "tail")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    target: str
    follow: bool
    tail: int
    def __init__(self, target: _Optional[str] = ..., follow: _Optional[bool] = ..., tail: _Optional[int] = ...) -> None: ...

class ReplicaLogsResponse(_message.Message):
    __slots__ = ("replica", "entries")
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    replica: str
    entries: _containers.RepeatedCompositeFieldContainer[_containers_pb2.LogEntry]
    def __init__(self, replica: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[_containers_pb2.LogEntry, _Mapping]]] = ...) -> None: ...
