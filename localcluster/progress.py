"""Progress lines with elapsed time, and the one error type that `up` reports and stops on."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_START = time.monotonic()


class ClusterError(Exception):
    """A failure the user can act on: what failed, and where to look."""

    def __init__(self, message: str, log: Path | None = None, tail: int = 15) -> None:
        text = message
        if log is not None:
            lines = log.read_text(errors="replace").splitlines()[-tail:] if log.exists() else []
            text += f"\n  log: {log}" + "".join(f"\n  | {line}" for line in lines)
        super().__init__(text)


def say(message: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f}s] {message}", flush=True)


@contextmanager
def step(message: str) -> Iterator[None]:
    say(f"{message} ...")
    started = time.monotonic()
    yield
    say(f"{message}: done in {time.monotonic() - started:.1f}s")


def warn(message: str) -> None:
    print(f"localcluster: {message}", file=sys.stderr, flush=True)
