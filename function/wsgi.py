"""``handle_flask``: the same function in functions-framework's default Flask (WSGI) mode."""

from __future__ import annotations

import functools
import os

import flask

from . import store
from .service import RedisCall, Request, Response, body_limit, dispatch, internal_error
from .settings import Settings

settings = Settings.from_env(os.environ)


@functools.cache
def _redis() -> store.SyncCommands:
    # Made on the first request, in the worker (gunicorn forks after import); thread-safe pool.
    return store.sync_client(settings)


def handle_flask(request: flask.Request) -> flask.Response:
    try:
        method = request.method
        limit = body_limit(method, request.headers, settings)
        body = request.stream.read(limit) if limit else b""
        request_ = Request(method, request.path, request.query_string, request.headers, body)
        outcome = dispatch(request_, settings)
        if isinstance(outcome, RedisCall):
            outcome = store.run_sync(_redis(), outcome)
    except Exception:
        outcome = internal_error()
    return _to_flask(outcome)


def _to_flask(response: Response) -> flask.Response:
    return flask.Response(
        response.body, response.status, response.headers, content_type=response.content_type
    )
