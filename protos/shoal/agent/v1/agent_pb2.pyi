from shoal.agent.v1 import containers_pb2 as _containers_pb2
from shoal.agent.v1 import images_pb2 as _images_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateContainerRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: _containers_pb2.ContainerSpec
    def __init__(self, spec: _Optional[_Union[_containers_pb2.ContainerSpec, _Mapping]] = ...) -> None: ...

class CreateContainerResponse(_message.Message):
    __slots__ = ("container",)
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    container: _containers_pb2.Container
    def __init__(self, container: _Optional[_Union[_containers_pb2.Container, _Mapping]] = ...) -> None: ...

class StartContainerRequest(_message.Message):
    __slots__ = ("container",)
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    container: str
    def __init__(self, container: _Optional[str] = ...) -> None: ...

class StartContainerResponse(_message.Message):
    __slots__ = ("container",)
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    container: _containers_pb2.Container
    def __init__(self, container: _Optional[_Union[_containers_pb2.Container, _Mapping]] = ...) -> None: ...

class StopContainerRequest(_message.Message):
    __slots__ = ("container", "timeout_seconds")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    container: str
    timeout_seconds: int
    def __init__(self, container: _Optional[str] = ..., timeout_seconds: _Optional[int] = ...) -> None: ...

class StopContainerResponse(_message.Message):
    __slots__ = ("container",)
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    container: _containers_pb2.Container
    def __init__(self, container: _Optional[_Union[_containers_pb2.Container, _Mapping]] = ...) -> None: ...

class KillContainerRequest(_message.Message):
    __slots__ = ("container", "signal")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    container: str
    signal: str
    def __init__(self, container: _Optional[str] = ..., signal: _Optional[str] = ...) -> None: ...

class KillContainerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveContainerRequest(_message.Message):
    __slots__ = ("container", "force")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    container: str
    force: bool
    def __init__(self, container: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RemoveContainerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListContainersRequest(_message.Message):
    __slots__ = ("all",)
    ALL_FIELD_NUMBER: _ClassVar[int]
    all: bool
    def __init__(self, all: _Optional[bool] = ...) -> None: ...

class ListContainersResponse(_message.Message):
    __slots__ = ("containers",)
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    containers: _containers.RepeatedCompositeFieldContainer[_containers_pb2.Container]
    def __init__(self, containers: _Optional[_Iterable[_Union[_containers_pb2.Container, _Mapping]]] = ...) -> None: ...

class InspectContainerRequest(_message.Message):
    __slots__ = ("container",)
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    container: str
    def __init__(self, container: _Optional[str] = ...) -> None: ...

class InspectContainerResponse(_message.Message):
    __slots__ = ("container",)
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    container: _containers_pb2.Container
    def __init__(self, container: _Optional[_Union[_containers_pb2.Container, _Mapping]] = ...) -> None: ...

class WaitContainerRequest(_message.Message):
    __slots__ = ("container",)
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    container: str
    def __init__(self, container: _Optional[str] = ...) -> None: ...

class WaitContainerResponse(_message.Message):
    __slots__ = ("container",)
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    container: _containers_pb2.Container
    def __init__(self, container: _Optional[_Union[_containers_pb2.Container, _Mapping]] = ...) -> None: ...

class RunContainerRequest(_message.Message):
    __slots__ = ("spec", "attach", "detach")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ATTACH_FIELD_NUMBER: _ClassVar[int]
    DETACH_FIELD_NUMBER: _ClassVar[int]
    spec: _containers_pb2.ContainerSpec
    attach: bool
    detach: bool
    def __init__(self, spec: _Optional[_Union[_containers_pb2.ContainerSpec, _Mapping]] = ..., attach: _Optional[bool] = ..., detach: _Optional[bool] = ...) -> None: ...

class RunContainerResponse(_message.Message):
    __slots__ = ("started", "output", "exited")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    EXITED_FIELD_NUMBER: _ClassVar[int]
    started: _containers_pb2.Container
    output: ContainerLogsResponse
    exited: _containers_pb2.Container
    def __init__(self, started: _Optional[_Union[_containers_pb2.Container, _Mapping]] = ..., output: _Optional[_Union[ContainerLogsResponse, _Mapping]] = ..., exited: _Optional[_Union[_containers_pb2.Container, _Mapping]] = ...) -> None: ...

class ContainerLogsRequest(_message.Message):
    __slots__ = ("container", "follow", "tail")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    container: str
    follow: bool
    tail: int
    def __init__(self, container: _Optional[str] = ..., follow: _Optional[bool] = ..., tail: _Optional[int] = ...) -> None: ...

class ContainerLogsResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_containers_pb2.LogEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[_containers_pb2.LogEntry, _Mapping]]] = ...) -> None: ...

class ExecStart(_message.Message):
    __slots__ = ("container", "command", "tty", "env", "user", "working_dir", "rows", "cols")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    TTY_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    container: str
    command: _containers.RepeatedScalarFieldContainer[str]
    tty: bool
    env: _containers.RepeatedScalarFieldContainer[str]
    user: str
    working_dir: str
    rows: int
    cols: int
    def __init__(self, container: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., tty: _Optional[bool] = ..., env: _Optional[_Iterable[str]] = ..., user: _Optional[str] = ..., working_dir: _Optional[str] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ...) -> None: ...

class TerminalSize(_message.Message):
    __slots__ = ("rows", "cols")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    cols: int
    def __init__(self, rows: _Optional[int] = ..., cols: _Optional[int] = ...) -> None: ...

class ExecRequest(_message.Message):
    __slots__ = ("start", "stdin", "close_stdin", "resize")
    START_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    CLOSE_STDIN_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    start: ExecStart
    stdin: bytes
    close_stdin: bool
    resize: TerminalSize
    def __init__(self, start: _Optional[_Union[ExecStart, _Mapping]] = ..., stdin: _Optional[bytes] = ..., close_stdin: _Optional[bool] = ..., resize: _Optional[_Union[TerminalSize, _Mapping]] = ...) -> None: ...

class ExecResponse(_message.Message):
    __slots__ = ("stdout", "stderr", "exit_code")
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    stdout: bytes
    stderr: bytes
    exit_code: int
    def __init__(self, stdout: _Optional[bytes] = ..., stderr: _Optional[bytes] = ..., exit_code: _Optional[int] = ...) -> None: ...

class ContainerStatsRequest(_message.Message):
    __slots__ = ("containers",)
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    containers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, containers: _Optional[_Iterable[str]] = ...) -> None: ...

class ContainerStatsResponse(_message.Message):
    __slots__ = ("stats",)
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: _containers.RepeatedCompositeFieldContainer[_containers_pb2.ContainerStats]
    def __init__(self, stats: _Optional[_Iterable[_Union[_containers_pb2.ContainerStats, _Mapping]]] = ...) -> None: ...

class ImportImageHeader(_message.Message):
    __slots__ = ("tag", "filename")
    TAG_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    tag: str
    filename: str
    def __init__(self, tag: _Optional[str] = ..., filename: _Optional[str] = ...) -> None: ...

class ImportImageRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ImportImageHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ImportImageHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ImportImageResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[_images_pb2.Image]
    def __init__(self, images: _Optional[_Iterable[_Union[_images_pb2.Image, _Mapping]]] = ...) -> None: ...

class RegistryAuth(_message.Message):
    __slots__ = ("username", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class PullImageRequest(_message.Message):
    __slots__ = ("reference", "auth")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    reference: str
    auth: RegistryAuth
    def __init__(self, reference: _Optional[str] = ..., auth: _Optional[_Union[RegistryAuth, _Mapping]] = ...) -> None: ...

class PullImageProgress(_message.Message):
    __slots__ = ("layer", "current", "total", "image")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    layer: str
    current: int
    total: int
    image: _images_pb2.Image
    def __init__(self, layer: _Optional[str] = ..., current: _Optional[int] = ..., total: _Optional[int] = ..., image: _Optional[_Union[_images_pb2.Image, _Mapping]] = ...) -> None: ...

class PushImageRequest(_message.Message):
    __slots__ = ("reference", "auth")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    reference: str
    auth: RegistryAuth
    def __init__(self, reference: _Optional[str] = ..., auth: _Optional[_Union[RegistryAuth, _Mapping]] = ...) -> None: ...

class PushImageProgress(_message.Message):
    __slots__ = ("layer", "current", "total", "manifest_digest")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    layer: str
    current: int
    total: int
    manifest_digest: str
    def __init__(self, layer: _Optional[str] = ..., current: _Optional[int] = ..., total: _Optional[int] = ..., manifest_digest: _Optional[str] = ...) -> None: ...

class SaveImageRequest(_message.Message):
    __slots__ = ("images", "format")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedScalarFieldContainer[str]
    format: str
    def __init__(self, images: _Optional[_Iterable[str]] = ..., format: _Optional[str] = ...) -> None: ...

class SaveImageChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class PruneImagesRequest(_message.Message):
    __slots__ = ("all",)
    ALL_FIELD_NUMBER: _ClassVar[int]
    all: bool
    def __init__(self, all: _Optional[bool] = ...) -> None: ...

class PruneImagesResponse(_message.Message):
    __slots__ = ("deleted", "reclaimed_bytes")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    RECLAIMED_BYTES_FIELD_NUMBER: _ClassVar[int]
    deleted: _containers.RepeatedCompositeFieldContainer[_images_pb2.Image]
    reclaimed_bytes: int
    def __init__(self, deleted: _Optional[_Iterable[_Union[_images_pb2.Image, _Mapping]]] = ..., reclaimed_bytes: _Optional[int] = ...) -> None: ...

class PinImageRequest(_message.Message):
    __slots__ = ("image", "pinned")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    image: str
    pinned: bool
    def __init__(self, image: _Optional[str] = ..., pinned: _Optional[bool] = ...) -> None: ...

class PinImageResponse(_message.Message):
    __slots__ = ("image",)
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: _images_pb2.Image
    def __init__(self, image: _Optional[_Union[_images_pb2.Image, _Mapping]] = ...) -> None: ...

class BuildHeader(_message.Message):
    __slots__ = ("tags", "dockerfile", "build_args", "target", "no_cache")
    class BuildArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DOCKERFILE_FIELD_NUMBER: _ClassVar[int]
    BUILD_ARGS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.RepeatedScalarFieldContainer[str]
    dockerfile: bytes
    build_args: _containers.ScalarMap[str, str]
    target: str
    no_cache: bool
    def __init__(self, tags: _Optional[_Iterable[str]] = ..., dockerfile: _Optional[bytes] = ..., build_args: _Optional[_Mapping[str, str]] = ..., target: _Optional[str] = ..., no_cache: _Optional[bool] = ...) -> None: ...

class BuildRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: BuildHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[BuildHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class BuildEvent(_message.Message):
    __slots__ = ("line", "image")
    LINE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    line: str
    image: _images_pb2.Image
    def __init__(self, line: _Optional[str] = ..., image: _Optional[_Union[_images_pb2.Image, _Mapping]] = ...) -> None: ...

class TagImageRequest(_message.Message):
    __slots__ = ("image", "name")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    image: str
    name: str
    def __init__(self, image: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class TagImageResponse(_message.Message):
    __slots__ = ("image",)
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: _images_pb2.Image
    def __init__(self, image: _Optional[_Union[_images_pb2.Image, _Mapping]] = ...) -> None: ...

class ListImagesRequest(_message.Message):
    __slots__ = ("all",)
    ALL_FIELD_NUMBER: _ClassVar[int]
    all: bool
    def __init__(self, all: _Optional[bool] = ...) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[_images_pb2.Image]
    def __init__(self, images: _Optional[_Iterable[_Union[_images_pb2.Image, _Mapping]]] = ...) -> None: ...

class InspectImageRequest(_message.Message):
    __slots__ = ("image",)
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: str
    def __init__(self, image: _Optional[str] = ...) -> None: ...

class InspectImageResponse(_message.Message):
    __slots__ = ("image",)
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: _images_pb2.Image
    def __init__(self, image: _Optional[_Union[_images_pb2.Image, _Mapping]] = ...) -> None: ...

class RemoveImageRequest(_message.Message):
    __slots__ = ("image",)
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: str
    def __init__(self, image: _Optional[str] = ...) -> None: ...

class RemoveImageResponse(_message.Message):
    __slots__ = ("untagged", "deleted")
    UNTAGGED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    untagged: _containers.RepeatedScalarFieldContainer[str]
    deleted: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, untagged: _Optional[_Iterable[str]] = ..., deleted: _Optional[_Iterable[str]] = ...) -> None: ...
