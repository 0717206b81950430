from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WatchNetworkRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class NetworkPeer(_message.Message):
    __slots__ = ("node_id", "name", "node_ip", "subnet")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_IP_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    name: str
    node_ip: str
    subnet: str
    def __init__(self, node_id: _Optional[str] = ..., name: _Optional[str] = ..., node_ip: _Optional[str] = ..., subnet: _Optional[str] = ...) -> None: ...

class ServiceName(_message.Message):
    __slots__ = ("name", "addresses")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    name: str
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class NetworkView(_message.Message):
    __slots__ = ("peers", "names")
    PEERS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    peers: _containers.RepeatedCompositeFieldContainer[NetworkPeer]
    names: _containers.RepeatedCompositeFieldContainer[ServiceName]
    def __init__(self, peers: _Optional[_Iterable[_Union[NetworkPeer, _Mapping]]] = ..., names: _Optional[_Iterable[_Union[ServiceName, _Mapping]]] = ...) -> None: ...
