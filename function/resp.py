"""The shared connection's Redis protocol codec: hiredis (C) where it imports, else redis-py's own
pure-Python reply parser.

hiredis is the one compiled package the function cannot do without, and func's host builder
installs packages for the machine it runs on and ships them to every platform it builds for: an
arm64 node gets an x86-64 ``hiredis`` (or a macOS one), whose import fails. The function then
runs on redis-py's RESP2 parser (the one redis-py itself uses without hiredis) fed the same way
``hiredis.Reader`` is, and says so once in its log (``warn_if_slow``): it costs more CPU per
command (docs/func.md has the figure). redis-py's own clients (the Flask entry point, the cluster
clients) make the same choice by themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import SEEK_END
from typing import Any, Protocol

from redis._parsers import Encoder, _RESP2Parser
from redis._parsers.socket import SocketBuffer
from redis.connection import PythonRespSerializer
from redis.exceptions import ConnectionError, InvalidResponse

log = logging.getLogger(__name__)


class Reader(Protocol):
    """What the shared connection needs of ``hiredis.Reader``."""

    def feed(self, data: bytes, /) -> None: ...

    def gets(self) -> Any: ...  # a reply, or False while the buffer ends inside one


@dataclass(frozen=True)
class Codec:
    name: str
    reader: Callable[[type[Exception]], Reader]  # its argument: the class of error replies
    pack: Callable[[tuple[Any, ...]], bytes]
    protocol_error: type[Exception]  # what ``gets`` raises on bytes that are no reply


class ProtocolError(Exception):
    """Redis sent bytes that are no RESP2 reply (the pure-Python codec's ``ProtocolError``)."""


class _Incomplete(Exception):
    """The buffer ends inside a reply: more bytes are needed."""


class _FedBuffer(SocketBuffer):
    """redis-py's reply buffer, fed by the caller instead of reading a socket of its own."""

    def __init__(self) -> None:
        super().__init__(None, 0, None)  # type: ignore[arg-type]  # no socket: fed instead

    def _read_from_socket(self, *args: Any, **kwargs: Any) -> bool:
        # redis-py reads its socket here when the buffer runs out; the parser then rewinds to
        # where the unfinished reply began, so the next feed parses it again from its start.
        raise _Incomplete

    def feed(self, data: bytes) -> None:
        buffer = self._buffer
        if buffer.tell():  # drop the replies already parsed, keep the unfinished one
            rest = buffer.read()
            buffer.seek(0)
            buffer.truncate()
            buffer.write(rest)
        else:
            buffer.seek(0, SEEK_END)
        buffer.write(data)
        buffer.seek(0)


class _Parser(_RESP2Parser):
    def __init__(self, reply_error: type[Exception]) -> None:
        super().__init__(socket_read_size=0)  # type: ignore[no-untyped-call]
        self.reply_error = reply_error

    # An instance's method where redis-py has a class method: it is called on the instance.
    def parse_error(self, response: str) -> Exception:  # type: ignore[override]
        # As hiredis does: the whole error line in one class, told apart by redis_errors.
        return self.reply_error(response)


class PythonReader:
    """``hiredis.Reader``'s ``feed`` and ``gets`` on redis-py's RESP2 parser; replies as bytes."""

    def __init__(self, reply_error: type[Exception]) -> None:
        self.buffer = _FedBuffer()
        self.parser = _Parser(reply_error)
        self.parser._buffer = self.buffer

    def feed(self, data: bytes, /) -> None:
        self.buffer.feed(data)

    def gets(self) -> Any:
        try:
            return self.parser.read_response(disable_decoding=True)
        except _Incomplete:
            return False
        except (InvalidResponse, ConnectionError, ValueError) as error:  # e.g. "$x", a bare CRLF
            raise ProtocolError(str(error)) from error


# redis-py's defaults: str as UTF-8, arguments over 6000 bytes not copied into the command.
_serializer = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)  # type: ignore[no-untyped-call]


def python_pack(command: Sequence[Any]) -> bytes:
    return b"".join(_serializer.pack(*command))  # type: ignore[no-untyped-call]


PYTHON = Codec("redis-py", PythonReader, python_pack, ProtocolError)
HIREDIS: Codec | None
HIREDIS_MISSING: str | None  # why hiredis could not be imported
try:
    import hiredis
except ImportError as error:  # a wheel of another platform, or none at all
    HIREDIS, HIREDIS_MISSING = None, f"{type(error).__name__}: {error}"
else:
    HIREDIS_MISSING = None
    HIREDIS = Codec(
        "hiredis",
        lambda reply_error: hiredis.Reader(replyError=reply_error),
        hiredis.pack_command,
        hiredis.ProtocolError,
    )
# What the shared connection uses; a connection reads it when it opens.
CODEC = HIREDIS or PYTHON

_warned = False


def warn_if_slow() -> None:
    """At start: one warning line when hiredis is missing, none afterwards or with hiredis."""
    global _warned
    if HIREDIS_MISSING is not None and not _warned:
        _warned = True
        log.warning(
            "hiredis cannot be imported (%s): Redis replies are parsed by redis-py's pure-Python "
            "parser, which costs more CPU per request (docs/func.md, 'Host builder'). Install "
            "hiredis built for this platform.",
            HIREDIS_MISSING,
        )
