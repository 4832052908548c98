"""What the machine looks like from outside the cluster: compared before `up` and after `down`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from localcluster import layout, processes


def _lines(*command: str) -> list[str]:
    return sorted(
        subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    )


def _processes() -> list[str]:
    """Every process of the cluster's: its programs live in the cache (or are named with a path
    in it or in the state folder), and its containers run in its cgroups. Other work on the
    machine, which comes and goes on its own, is not the cluster's."""
    roots = (str(layout.cache_dir()), str(layout.state_dir()))
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                exe = os.readlink(proc / "exe")
                command = (
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
                cgroups = (proc / "cgroup").read_text()
            except OSError:
                continue
            if (
                exe.startswith(roots)
                or any(root in command for root in roots)
                or f"/{layout.NAME}/" in cgroups  # a pod's container, a shim
            ):
                found.append(f"{proc.name} {command.strip()}")
    return sorted(found)


def snapshot() -> dict[str, list[str]]:
    return {
        "processes": _processes(),
        "network namespaces": _lines("ip", "netns", "list"),
        "links": [line.split("@")[0] for line in _lines("ip", "-o", "link", "show")],
        "addresses": _lines("ip", "-o", "addr", "show"),
        "routes": _lines("ip", "route", "show", "table", "all"),
        "mounts": sorted(
            line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
        ),
        # Counters and comments aside, every rule of every table of the host's own iptables.
        "host iptables": [
            rule for rule in _lines("iptables-save") if not rule.startswith(("#", ":"))
        ],
        "cgroups": sorted(str(p) for p in processes.cgroup_dirs() if p.exists()),
    }


def differences(
    before: dict[str, list[str]], after: dict[str, list[str]], ignore_pids: set[int]
) -> dict[str, list[str]]:
    out = {}
    for key, old in before.items():
        new = after[key]
        added = sorted(set(new) - set(old))
        if key == "processes":
            added = [line for line in added if int(line.split()[0]) not in ignore_pids]
        if added:
            out[key] = added
    return out
