"""``handle``: the function in functions-framework's ASGI mode (``--asgi``)."""

from __future__ import annotations

import functools
import os

from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse

from . import store
from .service import RedisCall, Request, Response, body_limit, dispatch, internal_error
from .settings import Settings

settings = Settings.from_env(os.environ)


@functools.cache
def _redis() -> store.AsyncCommands:
    # Made on the first request, inside the worker's event loop (workers fork after import).
    return store.async_client(settings)


async def handle(request: StarletteRequest) -> StarletteResponse:
    try:
        scope = request.scope
        method: str = scope["method"]
        limit = body_limit(method, request.headers, settings)
        body = await _read_body(request, limit) if limit else b""
        request_ = Request(method, scope["path"], scope["query_string"], request.headers, body)
        outcome = dispatch(request_, settings)
        if isinstance(outcome, RedisCall):
            outcome = await store.run_async(_redis(), outcome)
    except Exception:
        outcome = internal_error()
    return _to_starlette(outcome)


async def _read_body(request: StarletteRequest, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) >= limit:
            break  # already too large: the rest need not be read
    return bytes(body)


def _to_starlette(response: Response) -> StarletteResponse:
    return StarletteResponse(
        response.body, response.status, response.headers, media_type=response.content_type
    )
