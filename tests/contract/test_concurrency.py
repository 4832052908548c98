"""Exact counts and whole documents under concurrency, across server processes sharing one Redis."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import httpx

from tests.conftest import RunningFunction
from tests.contract.conftest import auth_headers

PARALLEL_HITS = 400


async def _hit_counter(urls: list[str], hits: int) -> list[int]:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        responses = await asyncio.gather(
            *(
                http.get(f"{urls[i % len(urls)]}/", headers={"Accept": "application/json"})
                for i in range(hits)
            )
        )
    assert all(response.status_code == 200 for response in responses)
    return [response.json()["count"] for response in responses]


def test_counter_is_exact_across_two_processes(start_function: Any) -> None:
    # Both entry points at once, with a fresh key prefix so the count starts at zero.
    env = {"KEY_PREFIX": f"kv:count-test-{uuid.uuid4().hex}:"}
    servers: list[RunningFunction] = [
        start_function("handle", env=env),
        start_function("handle_flask", env=env),
    ]
    counts = asyncio.run(_hit_counter([server.url for server in servers], PARALLEL_HITS))
    # Every hit got its own number, none lost, none repeated.
    assert sorted(counts) == list(range(1, PARALLEL_HITS + 1))
    final = httpx.get(f"{servers[0].url}/", headers={"Accept": "application/json"}).json()
    assert final["count"] == PARALLEL_HITS + 1


def test_counter_is_exact_across_workers(start_function: Any) -> None:
    env = {"KEY_PREFIX": f"kv:count-test-{uuid.uuid4().hex}:"}
    server: RunningFunction = start_function("handle", env=env, workers=2)
    counts = asyncio.run(_hit_counter([server.url], PARALLEL_HITS))
    assert sorted(counts) == list(range(1, PARALLEL_HITS + 1))


def _document(generation: int) -> dict[str, Any]:
    return {"generation": generation, "copy": generation, "items": [generation] * 200}


def test_readers_never_see_a_mix_of_two_documents(function: RunningFunction, path: str) -> None:
    with httpx.Client(base_url=function.url, timeout=10, headers=auth_headers()) as http:
        assert http.put(path, json=_document(0)).status_code == 201

    writes = 300
    done = threading.Event()
    seen: list[dict[str, Any]] = []
    failures: list[str] = []

    def write() -> None:
        with httpx.Client(base_url=function.url, timeout=10, headers=auth_headers()) as http:
            for generation in range(1, writes + 1):
                response = http.put(path, json=_document(generation))
                if response.status_code != 200:
                    failures.append(f"PUT {response.status_code}")
        done.set()

    def read() -> None:
        with httpx.Client(base_url=function.url, timeout=10, headers=auth_headers()) as http:
            while not done.is_set():
                response = http.get(path)
                if response.status_code != 200:
                    failures.append(f"GET {response.status_code}")
                    continue
                seen.append(response.json())

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not failures
    assert len(seen) > writes / 10, "the readers hardly ran; the test proved nothing"
    for document in seen:
        generation = document["generation"]
        assert document["copy"] == generation
        assert document["items"] == [generation] * 200
        assert document["ttl"] > 0  # never a document without an expiry
    generations = [document["generation"] for document in seen]
    assert len(set(generations)) > 1, "the readers never saw a replacement"
