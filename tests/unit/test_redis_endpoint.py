"""``Endpoint.from_url`` reads ``REDIS_URL`` as redis-py does: host, port, user, password,
database, ``unix://`` sockets, and ``rediss://`` with its ``ssl_*`` options turned into the
``ssl.SSLContext`` the connection uses."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from function.redis_conn import Endpoint
from tests.conftest import make_certificate


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"), "endpoint-test")


def test_redis_url_with_every_part() -> None:
    assert Endpoint.from_url("redis://alice:secret@redis.example:6390/4") == Endpoint(
        host="redis.example", port=6390, username="alice", password="secret", db=4
    )


def test_redis_url_defaults() -> None:
    endpoint = Endpoint.from_url("redis://")
    assert (endpoint.host, endpoint.port, endpoint.path, endpoint.db) == (
        "localhost",
        6379,
        None,
        0,
    )
    assert (endpoint.username, endpoint.password, endpoint.ssl_context) == (None, None, None)


def test_unix_socket_url() -> None:
    endpoint = Endpoint.from_url("unix:///run/redis/redis.sock?db=2&password=pw")
    assert endpoint == Endpoint(path="/run/redis/redis.sock", password="pw", db=2)


def test_handshake_authenticates_and_selects_only_when_asked() -> None:
    assert Endpoint().handshake() == []
    assert Endpoint(db=1).handshake() == [("SELECT", 1)]
    assert Endpoint(password="pw").handshake() == [("AUTH", "pw")]
    assert Endpoint(username="", password="pw").handshake() == [("AUTH", "pw")]
    assert Endpoint(username="alice", password="pw", db=5).handshake() == [
        ("AUTH", "alice", "pw"),
        ("SELECT", 5),
    ]
    assert Endpoint.from_url("redis://alice:pw@h/0").handshake() == [("AUTH", "alice", "pw")]
    assert Endpoint.from_url("redis://:pw@h/7").handshake() == [("AUTH", "pw"), ("SELECT", 7)]


def test_rediss_verifies_certificate_and_hostname_by_default() -> None:
    context = Endpoint.from_url("rediss://redis.example:6380").ssl_context
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert Endpoint.from_url("redis://redis.example").ssl_context is None


@pytest.mark.parametrize("value", ["none", "NONE", "0"])
def test_rediss_cert_reqs_none_turns_verification_off(value: str) -> None:
    context = Endpoint.from_url(f"rediss://h?ssl_cert_reqs={value}").ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False


@pytest.mark.parametrize("value", ["required", "optional"])
def test_rediss_cert_reqs_other_values_keep_verification(value: str) -> None:
    context = Endpoint.from_url(f"rediss://h?ssl_cert_reqs={value}").ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


@pytest.mark.parametrize("value", ["false", "False", "0", "no"])
def test_rediss_check_hostname_false_keeps_certificate_check(value: str) -> None:
    context = Endpoint.from_url(f"rediss://h?ssl_check_hostname={value}").ssl_context
    assert context is not None
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_rediss_check_hostname_true_keeps_it(value: str) -> None:
    context = Endpoint.from_url(f"rediss://h?ssl_check_hostname={value}").ssl_context
    assert context is not None
    assert context.check_hostname is True


def test_rediss_ca_certs_are_trusted(certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    context = Endpoint.from_url(f"rediss://h?ssl_ca_certs={cert}").ssl_context
    assert context is not None
    subjects = [ca["subject"] for ca in context.get_ca_certs()]
    assert ((("commonName", "endpoint-test"),),) in subjects


def handshake_succeeds(context: ssl.SSLContext, certificate: tuple[Path, Path]) -> bool:
    """A real TLS handshake on loopback against a server presenting the test certificate."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(*certificate)

    async def attempt() -> bool:
        server = await asyncio.start_server(
            lambda r, w: w.close(), "127.0.0.1", 0, ssl=server_context
        )
        port = server.sockets[0].getsockname()[1]
        try:
            _, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname="endpoint-test"
            )
        except ssl.SSLCertVerificationError:
            return False
        finally:
            server.close()
        writer.close()
        return True

    return asyncio.run(attempt())


def test_rediss_ca_path_is_trusted(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(cert)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    trusted, empty = tmp_path / "trusted", tmp_path / "empty"
    trusted.mkdir()
    empty.mkdir()
    shutil.copy(cert, trusted / f"{subject_hash}.0")
    with_ca_path = Endpoint.from_url(f"rediss://h?ssl_ca_path={trusted}").ssl_context
    without = Endpoint.from_url(f"rediss://h?ssl_ca_path={empty}").ssl_context
    assert with_ca_path is not None and without is not None
    assert handshake_succeeds(with_ca_path, certificate)
    assert not handshake_succeeds(without, certificate)


def test_rediss_ca_certs_verify_a_real_handshake(certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    trusted = Endpoint.from_url(f"rediss://h?ssl_ca_certs={cert}").ssl_context
    untrusted = Endpoint.from_url("rediss://h").ssl_context
    unverified = Endpoint.from_url("rediss://h?ssl_cert_reqs=none").ssl_context
    assert trusted is not None and untrusted is not None and unverified is not None
    assert handshake_succeeds(trusted, certificate)
    assert not handshake_succeeds(untrusted, certificate)
    assert handshake_succeeds(unverified, certificate)


def test_rediss_client_certificate_and_key(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = Endpoint.from_url(f"rediss://h?ssl_certfile={cert}&ssl_keyfile={key}").ssl_context
    assert context is not None
    with pytest.raises(ssl.SSLError):  # the key is needed: the certificate file holds none
        Endpoint.from_url(f"rediss://h?ssl_certfile={cert}")
    with pytest.raises(OSError):
        Endpoint.from_url(f"rediss://h?ssl_certfile={cert.with_name('absent.pem')}")
