"""What Knative's autoscaler reads from each pod: the queue-proxy's stat, and its sum per second.

The queue-proxy counts the requests in its pod and, once a second, keeps their average as a
``metrics.Stat`` protocol-buffer message (knative.dev/serving, pkg/autoscaler/metrics/stat.proto),
which it serves on port 9090 at ``/metrics``; the autoscaler scrapes it from there. The load
test reads the same message through the API server's pod proxy, so it sees the concurrency the
autoscaler sees rather than the requests in flight at the client, which include the time spent
in the load generator, the ingress and on the wire.

A stat is kept once: a new report carries a new ``process_uptime``. Each report averages the
second before it was made, so a sample read at ``t`` is booked to the second around ``t - 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

QUEUE_METRICS_PORT = 9090
QUEUE_METRICS_PATH = "metrics"
# What one report averages over (the queue-proxy's reporting period), and so how far back a
# sample's middle lies from the moment it was read.
REPORT_PERIOD_S = 1.0

_DOUBLE = descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE
# stat.proto's Stat, field by field: (number, name, type).
_STAT_FIELDS = (
    (1, "pod_name", descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
    (2, "average_concurrent_requests", _DOUBLE),
    (3, "average_proxied_concurrent_requests", _DOUBLE),
    (4, "request_count", _DOUBLE),
    (5, "proxied_request_count", _DOUBLE),
    (6, "process_uptime", _DOUBLE),
    (7, "timestamp", descriptor_pb2.FieldDescriptorProto.TYPE_INT64),
)


class StatError(ValueError):
    """Bytes that are not a queue-proxy's Stat."""


def _stat_message() -> Any:
    schema = descriptor_pb2.FileDescriptorProto(
        name="knative_queue_stat.proto", package="metrics", syntax="proto3"
    )
    message = schema.message_type.add(name="Stat")
    for number, name, kind in _STAT_FIELDS:
        message.field.add(
            name=name,
            number=number,
            type=kind,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("metrics.Stat"))


_Stat = _stat_message()


@dataclass(frozen=True)
class PodStat:
    pod: str
    concurrency: float  # requests in the pod, averaged over the report's second
    proxied_concurrency: float  # the part of it that came through the activator
    requests_per_second: float
    uptime_s: float


def decode(data: bytes) -> PodStat:
    stat = _Stat()
    try:
        stat.ParseFromString(data)
    except DecodeError as error:
        raise StatError(f"not a queue-proxy stat: {error}") from None
    values = (stat.average_concurrent_requests, stat.average_proxied_concurrent_requests)
    if not all(math.isfinite(value) and value >= 0 for value in values):
        raise StatError(f"not a queue-proxy stat: concurrency {values}")
    return PodStat(
        pod=stat.pod_name,
        concurrency=stat.average_concurrent_requests,
        proxied_concurrency=stat.average_proxied_concurrent_requests,
        requests_per_second=stat.request_count,
        uptime_s=stat.process_uptime,
    )


@dataclass(frozen=True)
class PodSample:
    at: float  # when it was read
    pod: str
    concurrency: float

    @property
    def middle(self) -> float:
        """The moment the report's second is centred on, as well as a reader can tell."""
        return self.at - REPORT_PERIOD_S


def concurrency_per_second(
    samples: list[PodSample], started_at: float, duration_s: int
) -> list[float | None]:
    """Each second's requests in the pods, summed over the pods; None for a second with no
    report from any pod.

    A pod's second is the mean of its reports booked to it. Reports come once a second but are
    read twice a second, so one can land a second late and leave a one-second hole: a pod that
    reported on both sides of a hole is taken to have held its earlier value through it.
    """
    per_pod: dict[str, list[list[float]]] = {}
    for sample in samples:
        second = math.floor(sample.middle - started_at)
        if 0 <= second < duration_s:
            seconds = per_pod.setdefault(sample.pod, [[] for _ in range(duration_s)])
            seconds[second].append(sample.concurrency)
    totals: list[float | None] = [None] * duration_s
    for seconds in per_pod.values():
        means = [sum(values) / len(values) if values else None for values in seconds]
        for second in range(1, duration_s - 1):
            if means[second] is None and means[second + 1] is not None:
                means[second] = means[second - 1]
        for second, mean in enumerate(means):
            if mean is not None:
                totals[second] = (totals[second] or 0.0) + mean
    return totals
