"""The node's processes: started in the namespace, tracked by pid file and by cgroup.

Every daemon `up` starts joins the cgroup NAME/node in each cgroup v1 hierarchy, and kubelet puts
the pods under NAME/kubepods (its cgroupRoot), so everything the cluster runs, shims and containers
included, descends from what `up` started and can be found, and ended, by PID from that tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from localcluster import layout, network
from localcluster.progress import ClusterError

CGROUP_ROOT = Path("/sys/fs/cgroup")


def hierarchies() -> list[Path]:
    """Every mounted v1 hierarchy (the named systemd one too: runc writes there)."""
    return sorted(
        p
        for p in CGROUP_ROOT.iterdir()
        if p.is_dir() and not p.is_symlink() and p.name != "unified"
    )


def cgroup_dirs() -> list[Path]:
    return [h / layout.NAME for h in hierarchies()]


def make_cgroups() -> None:
    for top in cgroup_dirs():
        for path in (top, top / "node"):
            path.mkdir(exist_ok=True)
            if top.parent.name == "cpuset":  # a new cpuset is empty until told its cpus and memory
                for key in ("cpuset.cpus", "cpuset.mems"):
                    (path / key).write_text((top.parent / key).read_text())


def join_node_cgroup(pid: int) -> None:
    for top in cgroup_dirs():
        (top / "node" / "cgroup.procs").write_text(str(pid))


def pid_dir() -> Path:
    return layout.state_dir() / "pids"


def start(name: str, command: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Start a daemon inside the namespace, in its own session, logging to logs/<name>.log."""
    layout.log_dir().mkdir(parents=True, exist_ok=True)
    pid_dir().mkdir(parents=True, exist_ok=True)
    log = layout.log_dir() / f"{name}.log"
    with log.open("ab") as sink:
        child = subprocess.Popen(
            [*network.enter(), *command],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    join_node_cgroup(child.pid)
    (pid_dir() / f"{name}.pid").write_text(str(child.pid))
    return child.pid


def alive(name: str) -> bool:
    pid = read_pid(name)
    if pid is None:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


def read_pid(name: str) -> int | None:
    try:
        return int((pid_dir() / f"{name}.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None


def check_alive(name: str) -> None:
    if not alive(name):
        raise ClusterError(f"{name} exited", layout.log_dir() / f"{name}.log")


def pids_in_tree() -> set[int]:
    """Every process in the cluster's cgroups, read from one hierarchy that all share."""
    found: set[int] = set()
    for top in cgroup_dirs():
        if top.parent.name in ("pids", "memory") and top.exists():
            for procs in top.rglob("cgroup.procs"):
                found.update(int(line) for line in procs.read_text().split())
    return found


def end_all(grace: float = 10.0) -> int:
    """SIGTERM what the pid files name, then everything left in the tree; SIGKILL after grace."""
    targets = (
        {pid for name in os.listdir(pid_dir()) if (pid := read_pid(name[:-4]))}
        if pid_dir().exists()
        else set()
    )
    targets |= pids_in_tree()
    for pid in targets:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_exists(pid) for pid in targets | pids_in_tree()):
        time.sleep(0.2)
    for _ in range(50):
        left = {pid for pid in targets | pids_in_tree() if _exists(pid)}
        if not left:
            break
        for pid in left:
            _signal(pid, signal.SIGKILL)
        time.sleep(0.1)
    return len(targets)


def remove_cgroups() -> list[str]:
    removed = []
    for top in cgroup_dirs():
        if not top.exists():
            continue
        # Deepest first: a cgroup can be removed only once it has no children.
        for path in sorted(
            (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            path.rmdir()
        top.rmdir()
        removed.append(str(top))
    return removed


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _exists(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
