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


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Every control plane RPC is unary-unary for now; a mapped error aborts with its code."""

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        behavior = handler.unary_unary

        async def mapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                return await behavior(request, context)
            except tuple(cls for cls, _ in STATUS) as e:
                code = next(code for cls, code in STATUS if isinstance(e, cls))
                await context.abort(code, str(e))

        return grpc.unary_unary_rpc_method_handler(mapped, handler.request_deserializer,
                                                   handler.response_serializer)
