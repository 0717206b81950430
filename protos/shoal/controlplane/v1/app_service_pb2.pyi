from shoal.controlplane.v1 import apps_pb2 as _apps_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeAppRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class AppEvent(_message.Message):
    __slots__ = ("at", "message")
    AT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    at: int
    message: str
    def __init__(self, at: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class DescribeAppResponse(_message.Message):
    __slots__ = ("status", "replicas", "events")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    status: AppStatus
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaInfo]
    events: _containers.RepeatedCompositeFieldContainer[AppEvent]
    def __init__(self, status: _Optional[_Union[AppStatus, _Mapping]] = ..., replicas: _Optional[_Iterable[_Union[ReplicaInfo, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[AppEvent, _Mapping]]] = ...) -> None: ...

class ListReplicasRequest(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: str
    def __init__(self, app: _Optional[str] = ...) -> None: ...

class ReplicaInfo(_message.Message):
    __slots__ = ("app", "index", "node", "state", "restarts", "exit_code", "error", "version", "placed_at", "address")
    APP_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    app: str
    index: int
    node: str
    state: str
    restarts: int
    exit_code: int
    error: str
    version: str
    placed_at: int
    address: str
    def __init__(self, app: _Optional[str] = ..., index: _Optional[int] = ..., node: _Optional[str] = ..., state: _Optional[str] = ..., restarts: _Optional[int] = ..., exit_code: _Optional[int] = ..., error: _Optional[str] = ..., version: _Optional[str] = ..., placed_at: _Optional[int] = ..., address: _Optional[str] = ...) -> None: ...

class ListReplicasResponse(_message.Message):
    __slots__ = ("replicas",)
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaInfo]
    def __init__(self, replicas: _Optional[_Iterable[_Union[ReplicaInfo, _Mapping]]] = ...) -> None: ...

class ApplyAppsRequest(_message.Message):
    __slots__ = ("apps", "dry_run")
    APPS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    apps: _containers.RepeatedCompositeFieldContainer[_apps_pb2.AppSpec]
    dry_run: bool
    def __init__(self, apps: _Optional[_Iterable[_Union[_apps_pb2.AppSpec, _Mapping]]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class AppChange(_message.Message):
    __slots__ = ("name", "kind", "version")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[AppChange.Kind]
        KIND_CREATE: _ClassVar[AppChange.Kind]
        KIND_UPDATE: _ClassVar[AppChange.Kind]
        KIND_SCALE: _ClassVar[AppChange.Kind]
        KIND_NO_OP: _ClassVar[AppChange.Kind]
    KIND_UNSPECIFIED: AppChange.Kind
    KIND_CREATE: AppChange.Kind
    KIND_UPDATE: AppChange.Kind
    KIND_SCALE: AppChange.Kind
    KIND_NO_OP: AppChange.Kind
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: AppChange.Kind
    version: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[AppChange.Kind, str]] = ..., version: _Optional[str] = ...) -> None: ...

class ApplyAppsResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[AppChange]
    def __init__(self, changes: _Optional[_Iterable[_Union[AppChange, _Mapping]]] = ...) -> None: ...

class ListAppsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AppStatus(_message.Message):
    __slots__ = ("spec", "version", "placed", "pending_reason", "running")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PLACED_FIELD_NUMBER: _ClassVar[int]
    PENDING_REASON_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    spec: _apps_pb2.AppSpec
    version: str
    placed: int
    pending_reason: str
    running: int
    def __init__(self, spec: _Optional[_Union[_apps_pb2.AppSpec, _Mapping]] = ..., version: _Optional[str] = ..., placed: _Optional[int] = ..., pending_reason: _Optional[str] = ..., running: _Optional[int] = ...) -> None: ...

class ListAppsResponse(_message.Message):
    __slots__ = ("apps",)
    APPS_FIELD_NUMBER: _ClassVar[int]
    apps: _containers.RepeatedCompositeFieldContainer[AppStatus]
    def __init__(self, apps: _Optional[_Iterable[_Union[AppStatus, _Mapping]]] = ...) -> None: ...

class ScaleAppRequest(_message.Message):
    __slots__ = ("name", "replicas")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    replicas: int
    def __init__(self, name: _Optional[str] = ..., replicas: _Optional[int] = ...) -> None: ...

class ScaleAppResponse(_message.Message):
    __slots__ = ("change",)
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    change: AppChange
    def __init__(self, change: _Optional[_Union[AppChange, _Mapping]] = ...) -> None: ...

class DeleteAppRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteAppResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
