"""A throw-away local Redis Cluster: three masters, a replica each, from one redis-server binary.

Built with the cluster's own commands (``CLUSTER MEET``, ``ADDSLOTS``, ``REPLICATE``), so it needs
no redis-cli. A short ``cluster-node-timeout`` lets a replica take over a killed master within
seconds. ``REDIS_SERVER`` names the binary, as for ``local_redis``.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from tests.support.local_redis import server_binary

SLOTS = 16384
BUS_OFFSET = 10_000  # each node also listens on its port + 10000 for the cluster bus


class LocalCluster:
    def __init__(self, data_dir: Path, *, masters: int = 3, node_timeout_ms: int = 1000) -> None:
        self.data_dir = data_dir
        self.masters = masters
        self.node_timeout_ms = node_timeout_ms
        self.ports = [_cluster_port() for _ in range(2 * masters)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """Any one node: a cluster client finds the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self, timeout: float = 30.0) -> LocalCluster:
        for port in self.ports:
            self._spawn(port)
        nodes = [self._client(port) for port in self.ports]
        try:
            self._form(nodes, timeout)
        except BaseException:
            self.stop()
            raise
        finally:
            for node in nodes:
                node.close()
        return self

    def _form(self, nodes: list[redis.Redis], timeout: float) -> None:
        for node in nodes:
            _wait_for(node.ping, timeout)
        for node in nodes[1:]:
            _command(node, "CLUSTER MEET", "127.0.0.1", self.ports[0])
        share = SLOTS // self.masters
        for index, node in enumerate(nodes[: self.masters]):
            last = SLOTS - 1 if index == self.masters - 1 else (index + 1) * share - 1
            _command(node, "CLUSTER ADDSLOTS", *range(index * share, last + 1))
        ids = [_text(_command(node, "CLUSTER MYID")) for node in nodes]

        def everyone_known() -> bool:
            return all(
                int(_cluster_info(node)["cluster_known_nodes"]) == len(nodes) for node in nodes
            )

        _wait_until(everyone_known, timeout, "cluster nodes did not meet")
        for replica, master_id in zip(nodes[self.masters :], ids, strict=False):
            _command(replica, "CLUSTER REPLICATE", master_id)
        _wait_until(self._healthy, timeout, "cluster did not reach state ok")

    def master_of(self, key: str) -> int:
        """The port of the master that serves ``key`` now."""
        with redis.RedisCluster.from_url(self.url) as cluster:
            node = cluster.get_node_from_key(key)
            assert node is not None
            return int(node.port)

    def kill(self, port: int) -> None:
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def _spawn(self, port: int) -> None:
        node_dir = self.data_dir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [server_binary(), "--port", str(port), "--bind", "127.0.0.1",
             "--dir", str(node_dir), "--save", "", "--appendonly", "no",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(self.node_timeout_ms),
             "--logfile", str(node_dir / "redis.log"), "--daemonize", "no"],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def _client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)

    def _healthy(self) -> bool:
        for port in self.processes:
            with self._client(port) as node:
                if _cluster_info(node)["cluster_state"] != "ok":
                    return False
                replication = node.info("replication")
                if replication["role"] == "slave" and replication["master_link_status"] != "up":
                    return False
        return True

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _command(node: redis.Redis, *args: Any) -> Any:
    return node.execute_command(*args)  # type: ignore[no-untyped-call]


def _cluster_info(node: redis.Redis) -> dict[str, str]:
    reply = _command(node, "CLUSTER INFO")
    if isinstance(reply, dict):
        return {str(k): _text(v) if isinstance(v, bytes) else str(v) for k, v in reply.items()}
    lines = _text(reply).splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _wait_for(probe: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _wait_until(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(message)
        time.sleep(0.1)


def _cluster_port() -> int:
    """A free port whose bus port (+10000) is free too; both at most 65535."""
    for _ in range(100):
        port = random.randint(20_000, 55_000)
        if _free(port) and _free(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free pair of ports for a cluster node")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
