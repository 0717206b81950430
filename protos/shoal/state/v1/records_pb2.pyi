from shoal.controlplane.v1 import apps_pb2 as _apps_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeRecord(_message.Message):
    __slots__ = ("id", "name", "address", "cpu_millis", "memory_bytes", "labels", "schedulable", "registered_at", "subnet", "node_ip")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULABLE_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    NODE_IP_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    address: str
    cpu_millis: int
    memory_bytes: int
    labels: _containers.ScalarMap[str, str]
    schedulable: bool
    registered_at: int
    subnet: str
    node_ip: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., address: _Optional[str] = ..., cpu_millis: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., schedulable: _Optional[bool] = ..., registered_at: _Optional[int] = ..., subnet: _Optional[str] = ..., node_ip: _Optional[str] = ...) -> None: ...

class AppRecord(_message.Message):
    __slots__ = ("spec", "version", "created_at", "updated_at")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    spec: _apps_pb2.AppSpec
    version: str
    created_at: int
    updated_at: int
    def __init__(self, spec: _Optional[_Union[_apps_pb2.AppSpec, _Mapping]] = ..., version: _Optional[str] = ..., created_at: _Optional[int] = ..., updated_at: _Optional[int] = ...) -> None: ...

class PlacementRecord(_message.Message):
    __slots__ = ("app", "index", "node_id", "cpu_millis", "memory_bytes", "version", "created_at", "host_ports")
    APP_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    HOST_PORTS_FIELD_NUMBER: _ClassVar[int]
    app: str
    index: int
    node_id: str
    cpu_millis: int
    memory_bytes: int
    version: str
    created_at: int
    host_ports: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, app: _Optional[str] = ..., index: _Optional[int] = ..., node_id: _Optional[str] = ..., cpu_millis: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., version: _Optional[str] = ..., created_at: _Optional[int] = ..., host_ports: _Optional[_Iterable[str]] = ...) -> None: ...
