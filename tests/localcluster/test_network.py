"""The node's network namespace, made and removed for real: confined, and gone without a trace."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from localcluster import layout, network
from tests.conftest import skip_for_mode
from tests.localcluster.machine_state import snapshot


@pytest.fixture
def namespace() -> object:
    if network.exists() or network.host_link_exists():
        skip_for_mode(
            f"the local cluster's namespace {layout.NAME} is in use; this test makes its own"
        )
    before = snapshot()
    network.create()
    yield before
    network.delete()


def test_the_default_route_is_a_blackhole(namespace: object) -> None:
    routes = network.in_node("ip", "route", "show").stdout
    assert "blackhole default" in routes
    # A connection to an outside address (TEST-NET-1) fails at once: the kernel has no route.
    attempt = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=5)"
    refused = network.in_node(sys.executable, "-c", attempt, check=False)
    assert refused.returncode != 0 and "Errno 22" in refused.stderr  # EINVAL: a blackhole route


def test_the_host_reaches_the_node_only_through_the_veth(namespace: object) -> None:
    route = subprocess.run(
        ["ip", "route", "get", layout.NODE_IP], capture_output=True, text=True, check=True
    )
    assert f"dev {layout.HOST_VETH}" in route.stdout
    server = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            layout.NAME,
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            layout.NODE_IP,
            "18080",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(f"http://{layout.NODE_IP}:18080/", timeout=2).status_code == 200
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        server.kill()
        server.wait()


def test_pods_may_not_open_connections_towards_the_host(namespace: object) -> None:
    rules = network.in_node("iptables", "-S", "FORWARD").stdout
    assert f"-A FORWARD -o {layout.NODE_VETH} -j DROP" in rules
    assert rules.index("ESTABLISHED") < rules.index("-j DROP")


def test_delete_leaves_the_machine_as_it_was(namespace: dict[str, list[str]]) -> None:
    removed = network.delete()
    assert len(removed) == 2
    after = snapshot()
    for key in ("network namespaces", "links", "addresses", "routes", "host iptables"):
        assert after[key] == namespace[key], key
    assert network.delete() == []  # a second delete finds nothing and says so
