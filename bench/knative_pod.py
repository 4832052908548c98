"""``python -m bench.knative_pod``: one pod of the Knative Service, with and without its
queue-proxy in front, on the local cluster (docs/local-cluster.md).

The load (hey) runs inside the cluster's network namespace and goes straight to one pod: to the
queue-proxy's port (8012), as every request Knative routes does, and to the function's own port
(8080), alternated, at several concurrencies. Traefik and the activator are not in the path, so
the difference is the queue-proxy's alone. From the same run it derives the autoscaling target
(the concurrency past which a pod answers no more requests per second, only slower ones) and a
containerConcurrency that bounds the latency.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.hey import LoadRequest, LoadResult, run_hey
from localcluster import addons, network

QUEUE_PROXY_PORT = 8012
FUNCTION_PORT = 8080
CONCURRENCIES = (1, 2, 4, 8, 16, 32)


def one_pod(namespace: str, service: str) -> tuple[str, str]:
    """(name, IP) of the service's only ready pod; the Service must be held at one pod."""
    done = addons.kubectl(
        "get", "pods", "-n", namespace, "-l", f"serving.knative.dev/service={service}", "-o", "json"
    )
    pods = [
        p
        for p in json.loads(done.stdout)["items"]
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
    ]
    if len(pods) != 1:
        raise SystemExit(f"knative_pod: {len(pods)} ready pods of {service}; hold it at one")
    return pods[0]["metadata"]["name"], pods[0]["status"]["podIP"]


def write_token(namespace: str) -> str:
    done = addons.kubectl(
        "get", "secret", "kv-store-tokens", "-n", namespace, "-o", "jsonpath={.data.write-token}"
    )
    return base64.b64decode(done.stdout).decode()


def store(ip: str, path: str, token: str) -> None:
    """The document every GET reads: a real Redis round trip, as most requests make."""
    put = LoadRequest(
        "PUT",
        f"http://{ip}:{FUNCTION_PORT}{path}",
        body='{"bench": "knative-pod"}',
        content_type="application/json",
        headers=(f"Authorization: Bearer {token}",),
    )
    result, _ = run_hey(put, duration_seconds=0.2, concurrency=1, prefix=network.enter())
    if not result.successes:
        raise SystemExit(f"knative_pod: could not store {path}: {result.status_counts}")


def measure(ip: str, port: int, path: str, concurrency: int, seconds: float) -> LoadResult:
    result, _ = run_hey(
        LoadRequest("GET", f"http://{ip}:{port}{path}"),
        duration_seconds=seconds,
        concurrency=concurrency,
        prefix=network.enter(),
    )
    if result.errors:
        raise SystemExit(f"knative_pod: {result.errors} errors on port {port}")
    return result


def knee(rows: list[dict[str, Any]], key: str) -> int:
    """The lowest concurrency whose throughput is within 10% of the best seen."""
    best = max(r[key]["rps"] for r in rows)
    return min(int(r["concurrency"]) for r in rows if r[key]["rps"] >= 0.9 * best)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.knative_pod", description=__doc__)
    parser.add_argument("--namespace", default="kv-store")
    parser.add_argument("--service", default="kv-store")
    parser.add_argument("--path", default="/bench/knative-pod", help="the resource each GET reads")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/knative-pod.json"))
    args = parser.parse_args(argv)
    name, ip = one_pod(args.namespace, args.service)
    print(f"pod {name} at {ip}: queue-proxy :{QUEUE_PROXY_PORT} and function :{FUNCTION_PORT}")
    store(ip, args.path, write_token(args.namespace))
    rows = []
    for concurrency in CONCURRENCIES:
        taken: dict[str, list[LoadResult]] = {"queue_proxy": [], "function": []}
        for _ in range(args.rounds):  # alternated, so both see the same noise
            for key, port in (("queue_proxy", QUEUE_PROXY_PORT), ("function", FUNCTION_PORT)):
                taken[key].append(measure(ip, port, args.path, concurrency, args.seconds))
        row: dict[str, Any] = {"concurrency": concurrency}
        for key, results in taken.items():
            best = max(results, key=lambda r: r.requests_per_second)
            row[key] = {
                "rps": round(best.requests_per_second),
                "p50_ms": round((best.p50_seconds or 0) * 1000, 2),
                "p99_ms": round((best.p99_seconds or 0) * 1000, 2),
            }
        row["queue_proxy_share"] = round(row["queue_proxy"]["rps"] / row["function"]["rps"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "pod": name,
        "path": args.path,
        "seconds_per_point": args.seconds,
        "rounds": args.rounds,
        "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": rows,
        "knee_concurrency": {
            "queue_proxy": knee(rows, "queue_proxy"),
            "function": knee(rows, "function"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"knee: {result['knee_concurrency']}; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
