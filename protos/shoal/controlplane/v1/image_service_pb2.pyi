from shoal.agent.v1 import images_pb2 as _images_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClusterImportHeader(_message.Message):
    __slots__ = ("tag", "filename", "nodes")
    TAG_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    tag: str
    filename: str
    nodes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tag: _Optional[str] = ..., filename: _Optional[str] = ..., nodes: _Optional[_Iterable[str]] = ...) -> None: ...

class ClusterImportRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ClusterImportHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ClusterImportHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class NodeImport(_message.Message):
    __slots__ = ("node", "images", "error")
    NODE_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    node: str
    images: _containers.RepeatedCompositeFieldContainer[_images_pb2.Image]
    error: str
    def __init__(self, node: _Optional[str] = ..., images: _Optional[_Iterable[_Union[_images_pb2.Image, _Mapping]]] = ..., error: _Optional[str] = ...) -> None: ...

class ClusterImportResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeImport]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeImport, _Mapping]]] = ...) -> None: ...
