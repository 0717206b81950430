from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AppResources(_message.Message):
    __slots__ = ("cpu_millis", "memory_bytes", "pids_limit")
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    PIDS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    cpu_millis: int
    memory_bytes: int
    pids_limit: int
    def __init__(self, cpu_millis: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., pids_limit: _Optional[int] = ...) -> None: ...

class AppRestartPolicy(_message.Message):
    __slots__ = ("kind", "max_retries")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_NO: _ClassVar[AppRestartPolicy.Kind]
        KIND_ON_FAILURE: _ClassVar[AppRestartPolicy.Kind]
        KIND_ALWAYS: _ClassVar[AppRestartPolicy.Kind]
    KIND_NO: AppRestartPolicy.Kind
    KIND_ON_FAILURE: AppRestartPolicy.Kind
    KIND_ALWAYS: AppRestartPolicy.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    kind: AppRestartPolicy.Kind
    max_retries: int
    def __init__(self, kind: _Optional[_Union[AppRestartPolicy.Kind, str]] = ..., max_retries: _Optional[int] = ...) -> None: ...

class AppPlacement(_message.Message):
    __slots__ = ("constraints", "spread")
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    SPREAD_FIELD_NUMBER: _ClassVar[int]
    constraints: _containers.RepeatedScalarFieldContainer[str]
    spread: str
    def __init__(self, constraints: _Optional[_Iterable[str]] = ..., spread: _Optional[str] = ...) -> None: ...

class AppPort(_message.Message):
    __slots__ = ("host_port", "container_port", "protocol")
    HOST_PORT_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_PORT_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    host_port: int
    container_port: int
    protocol: str
    def __init__(self, host_port: _Optional[int] = ..., container_port: _Optional[int] = ..., protocol: _Optional[str] = ...) -> None: ...

class AppSpec(_message.Message):
    __slots__ = ("name", "image", "command", "args", "env", "replicas", "resources", "restart", "placement", "labels", "pull_policy", "network", "ports")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    RESTART_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PULL_POLICY_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    image: str
    command: _containers.RepeatedScalarFieldContainer[str]
    args: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    replicas: int
    resources: AppResources
    restart: AppRestartPolicy
    placement: AppPlacement
    labels: _containers.ScalarMap[str, str]
    pull_policy: str
    network: str
    ports: _containers.RepeatedCompositeFieldContainer[AppPort]
    def __init__(self, name: _Optional[str] = ..., image: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., args: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., replicas: _Optional[int] = ..., resources: _Optional[_Union[AppResources, _Mapping]] = ..., restart: _Optional[_Union[AppRestartPolicy, _Mapping]] = ..., placement: _Optional[_Union[AppPlacement, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., pull_policy: _Optional[str] = ..., network: _Optional[str] = ..., ports: _Optional[_Iterable[_Union[AppPort, _Mapping]]] = ...) -> None: ...
