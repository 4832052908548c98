"""Drive the `hey` load generator (Debian package `hey`) and read its summary.

A compiled generator keeps the client from being the bottleneck: a Python client on the same
two cores would saturate before the faster servers do.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

INSTALL_HINT = "install it with `apt-get install -y hey` (Debian package: hey)"

_TOTAL = re.compile(r"^\s*Total:\s+([\d.]+) secs", re.MULTILINE)
_PERCENTILE = re.compile(r"^\s*(\d+)% in ([\d.]+) secs", re.MULTILINE)
_STATUS = re.compile(r"^\s*\[(\d{3})\]\s+(\d+) responses", re.MULTILINE)
_ERROR = re.compile(r"^\s*\[(\d+)\]\s+(.+)$", re.MULTILINE)
_ERROR_SECTION = "Error distribution:"


class HeyOutputError(ValueError):
    """hey printed something this parser does not understand."""


@dataclass(frozen=True)
class LoadRequest:
    method: str
    url: str
    body: str | None = None
    content_type: str | None = None
    headers: tuple[str, ...] = ()  # "Name: value", each sent with -H


@dataclass(frozen=True)
class LoadResult:
    duration_seconds: float
    status_counts: dict[int, int]
    transport_errors: dict[str, int]
    p50_seconds: float | None
    p99_seconds: float | None

    @property
    def successes(self) -> int:
        return sum(count for status, count in self.status_counts.items() if 200 <= status < 300)

    @property
    def errors(self) -> int:
        """Non-2xx responses plus requests that got no response at all."""
        non_2xx = sum(self.status_counts.values()) - self.successes
        return non_2xx + sum(self.transport_errors.values())

    @property
    def requests_per_second(self) -> float:
        """2xx responses per second; hey's own figure would also count failed requests."""
        return self.successes / self.duration_seconds if self.duration_seconds else 0.0


def require_hey() -> str:
    path = shutil.which("hey")
    if path is None:
        raise SystemExit(f"the load generator `hey` is not on PATH: {INSTALL_HINT}")
    return path


def run_hey(
    request: LoadRequest,
    *,
    duration_seconds: float,
    concurrency: int,
    prefix: Sequence[str] = (),
) -> tuple[LoadResult, str]:
    """Run hey for a fixed time; return the parsed summary and hey's raw output. ``prefix``
    runs it through another command, such as nsenter into a network namespace."""
    command = [
        *prefix,
        require_hey(),
        "-z", f"{duration_seconds:g}s",
        "-c", str(concurrency),
        "-m", request.method,
    ]  # fmt: skip
    if request.body is not None:
        command += ["-d", request.body]
    if request.content_type is not None:
        command += ["-T", request.content_type]
    for header in request.headers:
        command += ["-H", header]
    command.append(request.url)
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"hey exited with {finished.returncode}: {finished.stderr.strip()}")
    return parse_summary(finished.stdout), finished.stdout


def parse_summary(output: str) -> LoadResult:
    """Read hey 0.1.x's default text summary."""
    total = _TOTAL.search(output)
    if total is None:
        raise HeyOutputError(f"no 'Total:' line in hey output:\n{output}")
    status_part, _, error_part = output.partition(_ERROR_SECTION)
    percentiles = {int(p): float(seconds) for p, seconds in _PERCENTILE.findall(status_part)}
    status_counts: dict[int, int] = {}
    for status, count in _STATUS.findall(status_part):
        status_counts[int(status)] = status_counts.get(int(status), 0) + int(count)
    transport_errors = {
        message.strip(): int(count) for count, message in _ERROR.findall(error_part)
    }
    if not status_counts and not transport_errors:
        raise HeyOutputError(f"hey output has neither status codes nor errors:\n{output}")
    return LoadResult(
        duration_seconds=float(total.group(1)),
        status_counts=status_counts,
        transport_errors=transport_errors,
        p50_seconds=percentiles.get(50),
        p99_seconds=percentiles.get(99),
    )
