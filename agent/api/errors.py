"""The one table that maps domain errors to gRPC status codes, applied by an interceptor."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from agent import errors

log = logging.getLogger(__name__)

STATUS: dict[type[errors.ShoalError], grpc.StatusCode] = {
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    errors.InvalidSpec: grpc.StatusCode.INVALID_ARGUMENT,
    errors.BadInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Exhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.AccessDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Failed: grpc.StatusCode.UNKNOWN,
}


def status_for(error: errors.ShoalError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return grpc.StatusCode.INTERNAL


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: errors.ShoalError) -> None:
    await context.abort(status_for(error), str(error))


class DomainErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Wraps every handler so a ShoalError becomes its status code with its one-line message.
    Each method's wrapped handler is made once: gRPC asks for it on every call."""

    def __init__(self) -> None:
        self._wrapped: dict[str, Any] = {}

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]],
                                handler_call_details: Any) -> Any:
        method = handler_call_details.method
        if method not in self._wrapped:
            handler = await continuation(handler_call_details)
            if handler is None:
                return None
            self._wrapped[method] = _wrapped(handler)
        return self._wrapped[method]


def _wrapped(handler: Any) -> Any:
    serializers = (handler.request_deserializer, handler.response_serializer)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(_wrap_unary(handler.unary_unary), *serializers)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(_wrap_unary(handler.stream_unary), *serializers)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(_wrap_stream(handler.unary_stream), *serializers)
    return grpc.stream_stream_rpc_method_handler(_wrap_stream(handler.stream_stream), *serializers)


def _wrap_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(request, context)
        except errors.ShoalError as e:
            await _abort(context, e)
    return wrapped


def _wrap_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            async for response in behavior(request, context):
                yield response
        except errors.ShoalError as e:
            await _abort(context, e)
    return wrapped
