"""How much CPU went to processes outside the benchmark while a cell ran.

On a small shared machine another process's work shows up as a slower server. The bench cannot
prevent that, but it can tell: CPU time the whole machine spent, less what the server tree, Redis,
hey and the bench itself spent, per second of the cell, is the share of a core others took.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

QUIET_PROBE_SECONDS = 1.0


@dataclass(frozen=True)
class CpuSnapshot:
    wall_seconds: float
    machine_busy_seconds: float  # every CPU: user, nice, system and steal
    own_seconds: float  # the tracked process trees, this process and its waited-for children


def snapshot(tracked_pids: Iterable[int]) -> CpuSnapshot:
    machine = psutil.cpu_times()
    # irq/softirq time is left out: under load it is mostly the loopback traffic of the cell
    # itself, which no process is charged for. Steal (the hypervisor's) counts as others'.
    busy = machine.user + machine.nice + machine.system + getattr(machine, "steal", 0.0)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # hey runs, once they have exited
    me = resource.getrusage(resource.RUSAGE_SELF)
    own = children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime
    for pid in tracked_pids:
        own += _tree_cpu_seconds(pid)
    return CpuSnapshot(time.monotonic(), busy, own)


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (a gunicorn arbiter and its workers)."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _tree_cpu_seconds(pid: int) -> float:
    try:
        tree = process_tree(pid)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for member in tree:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def foreign_cores(before: CpuSnapshot, after: CpuSnapshot) -> float:
    """Cores' worth of CPU used by anything else between the two snapshots."""
    wall = after.wall_seconds - before.wall_seconds
    if wall <= 0:
        return 0.0
    busy = after.machine_busy_seconds - before.machine_busy_seconds
    own = after.own_seconds - before.own_seconds
    return max(0.0, busy - own) / wall


def wait_until_quiet(
    tracked_pids: Iterable[int], *, threshold_cores: float, max_wait_seconds: float
) -> float:
    """Wait (up to a limit) for other processes to leave the CPU; return their last share."""
    started = time.monotonic()
    while True:
        before = snapshot(tracked_pids)
        time.sleep(QUIET_PROBE_SECONDS)
        foreign = foreign_cores(before, snapshot(tracked_pids))
        waited = time.monotonic() - started
        if foreign <= threshold_cores or waited >= max_wait_seconds:
            if waited > 2 * QUIET_PROBE_SECONDS:
                print(
                    f"   waited {waited:.0f} s for a quieter machine; others now use "
                    f"{foreign:.0%} of a core",
                    flush=True,
                )
            return foreign


def pin(pid: int, cores: set[int]) -> None:
    """Keep a process tree, every thread of it, on these CPUs (``taskset -a`` for a tree)."""
    for member in process_tree(pid):
        for thread in member.threads():
            try:
                os.sched_setaffinity(thread.id, cores)
            except (ProcessLookupError, PermissionError):
                continue
