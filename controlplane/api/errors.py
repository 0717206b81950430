"""Domain errors → gRPC status codes, in one table applied by one interceptor.

(The agent has its own table for its own errors: the two programs share only the protos.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from controlplane import errors
from controlplane.etcd import EtcdTimeout, EtcdUnavailable

STATUS: list[tuple[type[Exception], grpc.StatusCode]] = [
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Conflict, grpc.StatusCode.ABORTED),
    (errors.InvalidSpec, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotReady, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Exhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.AgentCallFailed, grpc.StatusCode.UNKNOWN),  # replaced by the agent's own code below
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (EtcdUnavailable, grpc.StatusCode.UNAVAILABLE),
    (EtcdTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
]


MAPPED = tuple(cls for cls, _ in STATUS)


def _code(error: Exception) -> grpc.StatusCode:
    if isinstance(error, errors.AgentCallFailed):
        return getattr(grpc.StatusCode, error.code_name, grpc.StatusCode.UNKNOWN)
    return next(code for cls, code in STATUS if isinstance(error, cls))


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Every RPC shape: a mapped error aborts with its code and its one-line message. Each
    method's wrapped handler is made once: gRPC asks for it on every call."""

    def __init__(self) -> None:
        self._wrapped: dict[str, Any] = {}

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        if details.method not in self._wrapped:
            handler = await continuation(details)
            if handler is None:
                return handler
            self._wrapped[details.method] = _mapped(handler)
        return self._wrapped[details.method]


def _mapped(handler: Any) -> Any:
    serializers = (handler.request_deserializer, handler.response_serializer)
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_mapped_single(handler.unary_unary), *serializers)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_mapped_single(handler.stream_unary), *serializers)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_mapped_stream(handler.unary_stream), *serializers)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(_mapped_stream(handler.stream_stream), *serializers)
    return handler


Context = grpc.aio.ServicerContext[Any, Any]


def _mapped_single(method: Callable[[Any, Context], Awaitable[Any]]) -> Callable[[Any, Context], Awaitable[Any]]:
    async def mapped(request: Any, context: Context) -> Any:
        try:
            return await method(request, context)
        except MAPPED as e:
            await context.abort(_code(e), str(e))

    return mapped


Streaming = Callable[[Any, Context], AsyncIterator[Any]]


def _mapped_stream(method: Streaming) -> Streaming:
    async def mapped(request: Any, context: Context) -> AsyncIterator[Any]:
        try:
            async for response in method(request, context):
                yield response
        except MAPPED as e:
            await context.abort(_code(e), str(e))

    return mapped
