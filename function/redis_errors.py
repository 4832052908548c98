"""What a Redis failure means for the request that met it: one table for every client.

Both entry points meet redis-py's exception classes: the Flask pool and the cluster clients raise
them, and the shared connection (``redis_conn``) makes them from Redis's error replies with
``reply_error``. The table keys on Redis's own error code (redis-py keeps it as ``status_code``),
so a reply is answered alike whichever client read it.
"""

from __future__ import annotations

import re
from enum import Enum

from redis.exceptions import (
    AuthenticationError,
    ClusterDownError,
    ConnectionError,
    MaxConnectionsError,
    NoScriptError,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)


class Failure(Enum):
    OVERLOADED = "overloaded"  # this process has too many requests waiting on Redis
    UNAVAILABLE = "unavailable"  # the command did not run: Redis is away, starting or refusing
    UNCONFIRMED = "unconfirmed"  # the command left and no reply came: it may have run
    FULL = "full"  # Redis is out of memory and refused a write


class QueueFull(ConnectionError):
    """Too many requests of this process already wait on Redis: answered at once, not queued."""


class NotSent(ConnectionError):
    """No connection could be made (refused, timed out, handshake refused): nothing was sent."""


# Replies that say the command did not run and that Redis (or its operator) will be back:
# loading its data after a restart, a replica without its master, a read-only replica, a busy
# script, a cluster between owners of a slot, and a redirect to another node, which a client not
# in cluster mode cannot follow (REDIS_URL names a cluster node without REDIS_CLUSTER=1).
NOT_RUN_CODES = frozenset(
    {"LOADING", "MASTERDOWN", "READONLY", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MOVED", "ASK"}
)
# The same, as redis-py's cluster clients raise them after their own retries.
_NOT_RUN_CLASSES = (
    NotSent,
    AuthenticationError,
    SlotNotCoveredError,
    ClusterDownError,
    TryAgainError,
)
# Code, then the start of the message: Redis's refusal of one connection too many.
_NOT_RUN_MESSAGES = (("ERR", "max number of clients reached"),)
# Redis 6 wraps the refusal of a command a script ran in a script error: "ERR Error running
# script (call to f_...): @user_script:9: -OOM command not allowed ..."; Redis 7 passes it on.
_SCRIPT_REFUSAL = re.compile(r"Error running script .*?: -([A-Z]+) ")
# redis-py's class for a reply that its callers tell apart by class.
_REPLY_CLASSES: dict[str, type[ResponseError]] = {"NOSCRIPT": NoScriptError}


def reply_error(text: str) -> ResponseError:
    """The exception of an error reply (``"CODE message"``), shaped as redis-py shapes it."""
    code, _, message = text.partition(" ")
    if not code.isupper():
        return ResponseError(text)
    if code in _REPLY_CLASSES:
        return _REPLY_CLASSES[code](message, status_code=code)
    return ResponseError(text, status_code=code)  # the code stays in the text, for the log


def error_code(error: BaseException) -> str:
    """Redis's error code of a reply (``LOADING``, ``OOM``, ``ERR``), that of the command a
    script ran where the script's error wraps one; empty for errors that are not replies."""
    refused = _SCRIPT_REFUSAL.search(str(error)) if isinstance(error, ResponseError) else None
    if refused is not None:
        return refused[1]
    code = getattr(error, "status_code", None)
    if isinstance(code, str):
        return code
    word = str(error).partition(" ")[0]
    return word if isinstance(error, ResponseError) and word.isupper() else ""


def classify(error: BaseException) -> Failure | None:
    """The failure ``error`` is, or None for a fault (a wrong type, a refused command)."""
    code = error_code(error)
    message = str(error).removeprefix(f"{code} ")  # redis-py's messages come without it
    if code in NOT_RUN_CODES:
        return Failure.UNAVAILABLE
    if any(code == known and message.startswith(text) for known, text in _NOT_RUN_MESSAGES):
        return Failure.UNAVAILABLE
    if code == "OOM":
        return Failure.FULL
    if isinstance(error, QueueFull | MaxConnectionsError):
        return Failure.OVERLOADED
    if isinstance(error, _NOT_RUN_CLASSES):
        return Failure.UNAVAILABLE
    if isinstance(error, ConnectionError | TimeoutError):
        return Failure.UNCONFIRMED
    return None


def describe(error: BaseException) -> str:
    """The error for a log line, with the code redis-py strips from its message."""
    code = error_code(error) if isinstance(error, RedisError) else ""
    text = str(error)
    return f"{code} {text}" if code and not text.startswith(code) else text
