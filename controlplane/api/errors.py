"""Domain errors → gRPC status codes, in one table applied by one interceptor.

(The agent has its own table for its own errors: the two programs share only the protos.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from controlplane import errors
from controlplane.etcd import EtcdTimeout, EtcdUnavailable

STATUS: list[tuple[type[Exception], grpc.StatusCode]] = [
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Conflict, grpc.StatusCode.ABORTED),
    (errors.InvalidSpec, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (EtcdUnavailable, grpc.StatusCode.UNAVAILABLE),
    (EtcdTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
]


MAPPED = tuple(cls for cls, _ in STATUS)


def _code(error: Exception) -> grpc.StatusCode:
    return next(code for cls, code in STATUS if isinstance(error, cls))


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Unary and server-streaming RPCs (all the control plane has): a mapped error aborts with its code."""

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def mapped_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    return await unary(request, context)
                except MAPPED as e:
                    await context.abort(_code(e), str(e))

            return grpc.unary_unary_rpc_method_handler(mapped_unary, handler.request_deserializer,
                                                       handler.response_serializer)
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            async def mapped_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    async for response in stream(request, context):
                        yield response
                except MAPPED as e:
                    await context.abort(_code(e), str(e))

            return grpc.unary_stream_rpc_method_handler(mapped_stream, handler.request_deserializer,
                                                        handler.response_serializer)
        return handler
