"""``handle_flask``: the same function in functions-framework's default Flask (WSGI) mode."""

from __future__ import annotations

import functools

import flask
from werkzeug.exceptions import ClientDisconnected

from . import resources, store
from . import settings as config
from .errors import RequestTimeout
from .messages import RedisCall, Request, Response
from .service import (
    body_limit,
    client_left,
    dispatch,
    error_response,
    internal_error,
    safe_response,
)

_READ_WHOLE = "function.body_read_whole"


@functools.cache
def _redis() -> store.SyncCommands:
    # Made on the first request, in the worker (gunicorn forks after import); thread-safe pool.
    return store.sync_client(config.loaded())


def handle_flask(request: flask.Request) -> flask.Response:
    answer = respond(request)
    if not _body_read(request):
        # What is left of the body is not read (nor held): the connection cannot carry another
        # request, so the answer says it closes (function.serving has gunicorn close it).
        answer.headers = {**answer.headers, "Connection": "close"}
    return safe_response(answer, _flask_response)


def _body_read(request: flask.Request) -> bool:
    """Whether the request's body, if it has one, was read to its end."""
    if not request.content_length and "transfer-encoding" not in request.headers:
        return True
    return bool(request.environ.get(_READ_WHOLE))


def respond(request: flask.Request) -> Response:
    """The answer to one request; never raises. Faults become a 500 and a log line."""
    settings = config.loaded()
    try:
        method = request.method
        limit = body_limit(method, request.headers, settings)
        try:
            body = request.stream.read(limit) if limit else b""
            if len(body) < min(request.content_length or 0, limit):
                # gunicorn ends the stream where the client ended its side, short or not.
                raise ClientDisconnected
            # Fewer bytes than asked for: the body ended (an over-long one fills the limit).
            request.environ[_READ_WHOLE] = bool(limit) and len(body) < limit
        except (ClientDisconnected, OSError) as error:
            # functions-framework drains the body after each request (get_data); with the socket
            # timed out or gone there is nothing left to read: say so.
            request._cached_data = b""
            if isinstance(error, TimeoutError):
                seconds = settings.head_timeout_seconds + settings.body_timeout_seconds
                timeout = RequestTimeout(f"the request did not arrive within {seconds} s")
                return error_response(timeout)
            return client_left()
        query = request.query_string
        outcome = dispatch(
            Request(method, _raw_path(request), query, request.headers, body), settings
        )
        if isinstance(outcome, RedisCall):
            outcome = store.run_sync(_redis(), outcome)
        return outcome
    except Exception:
        return internal_error()


def _raw_path(request: flask.Request) -> bytes:
    """The path as the client sent it, still percent-encoded: gunicorn and werkzeug's server keep
    the request target in RAW_URI / REQUEST_URI. Without either, the decoded path re-encoded."""
    environ = request.environ
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if target:
        return resources.path_from_target(target.encode("latin-1"))
    return resources.location(request.path).encode()


def _flask_response(response: Response) -> flask.Response:
    answer = flask.Response(
        response.body, response.status, response.headers, content_type=response.content_type
    )
    if response.content_type is None:
        del answer.headers["Content-Type"]  # Flask's default text/html would be a lie on a 204
    return answer
