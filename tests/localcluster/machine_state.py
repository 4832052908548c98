"""What the machine looks like from outside the cluster: compared before `up` and after `down`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from localcluster import processes


def _lines(*command: str) -> list[str]:
    return sorted(
        subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    )


def _processes() -> list[str]:
    """Every process's command line; kernel threads (no command line) come and go by themselves."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            if command.strip():
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
