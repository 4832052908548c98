"""A TCP proxy on loopback that holds back the replies of the server behind it, or drops a
connection as a command arrives.

Put in front of a real Redis, it makes Redis slow without freezing it: the command runs at once
and its reply arrives ``delay_seconds`` later, which is how a client's read timeout shows itself.
``delay_open_connections`` slows only the connections open now, so that a client that retried on
a new connection would get its answer; ``drop_next_commands`` closes the connection that carries
the next commands before Redis sees them, as a Redis that restarts under a request does;
``drop_after_next_commands`` closes it after Redis has them, so their replies never come back.
``hold_replies`` keeps every reply back until ``release_replies``: commands still reach Redis and
run, so a test can count in Redis how many requests wait on it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class DelayingProxy:
    def __init__(self, target_port: int, delay_seconds: float = 0.0) -> None:
        self.target_port = target_port
        self.delay_seconds = delay_seconds
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._opened = 0  # connections accepted so far
        self._delayed_below: int | None = None  # only connections numbered below it are slow
        self.drops_left = 0
        self.drops_after_left = 0
        self._muted: set[int] = set()  # connections whose replies are dropped, and they with them
        self._replies_flow = threading.Event()
        self._replies_flow.set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def delay_all(self, seconds: float) -> None:
        self.delay_seconds, self._delayed_below = seconds, None

    def delay_open_connections(self, seconds: float) -> None:
        self.delay_seconds, self._delayed_below = seconds, self._opened

    def drop_next_commands(self, count: int = 1) -> None:
        self.drops_left = count

    def drop_after_next_commands(self, count: int = 1) -> None:
        self.drops_after_left = count

    def hold_replies(self) -> None:
        self._replies_flow.clear()

    def release_replies(self) -> None:
        self._replies_flow.set()

    def __enter__(self) -> DelayingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closed.set()
        self._replies_flow.set()
        for sock in [self._listener, *self._sockets]:
            sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            number, self._opened = self._opened, self._opened + 1
            for source, sink, replies in ((client, server, False), (server, client, True)):
                pump = threading.Thread(
                    target=self._pump, args=(source, sink, number, replies), daemon=True
                )
                pump.start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, connection: int, replies: bool
    ) -> None:
        """Copies one direction of the numbered connection: commands, or (``replies``) replies."""
        try:
            while data := source.recv(65536):
                if replies:
                    self._replies_flow.wait()
                    if connection in self._muted:
                        break  # the reply is lost with the connection
                    if self._is_slow(connection):
                        time.sleep(self.delay_seconds)
                elif self.drops_left:
                    self.drops_left -= 1
                    break  # the command never reaches the server
                elif self.drops_after_left:
                    self.drops_after_left -= 1
                    self._muted.add(connection)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _is_slow(self, connection: int) -> bool:
        if not self.delay_seconds:
            return False
        return self._delayed_below is None or connection < self._delayed_below
