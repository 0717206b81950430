from shoal.controlplane.v1 import apps_pb2 as _apps_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WatchAssignmentsRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("app", "index", "version", "spec")
    APP_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    app: str
    index: int
    version: str
    spec: _apps_pb2.AppSpec
    def __init__(self, app: _Optional[str] = ..., index: _Optional[int] = ..., version: _Optional[str] = ..., spec: _Optional[_Union[_apps_pb2.AppSpec, _Mapping]] = ...) -> None: ...

class AssignmentsUpdate(_message.Message):
    __slots__ = ("full", "assigned", "removed", "revision")
    FULL_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    full: bool
    assigned: _containers.RepeatedCompositeFieldContainer[Assignment]
    removed: _containers.RepeatedScalarFieldContainer[str]
    revision: int
    def __init__(self, full: _Optional[bool] = ..., assigned: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ..., removed: _Optional[_Iterable[str]] = ..., revision: _Optional[int] = ...) -> None: ...

class ReplicaStatus(_message.Message):
    __slots__ = ("app", "index", "version", "state", "exit_code", "restarts", "error", "container_id", "address")
    APP_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    app: str
    index: int
    version: str
    state: str
    exit_code: int
    restarts: int
    error: str
    container_id: str
    address: str
    def __init__(self, app: _Optional[str] = ..., index: _Optional[int] = ..., version: _Optional[str] = ..., state: _Optional[str] = ..., exit_code: _Optional[int] = ..., restarts: _Optional[int] = ..., error: _Optional[str] = ..., container_id: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class ReportStatusRequest(_message.Message):
    __slots__ = ("node_id", "replicas")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaStatus]
    def __init__(self, node_id: _Optional[str] = ..., replicas: _Optional[_Iterable[_Union[ReplicaStatus, _Mapping]]] = ...) -> None: ...

class ReportStatusResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
