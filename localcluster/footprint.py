"""What the cluster changes outside its state folder, recorded at `up` so that `down` undoes it.

Some paths are fixed in the programs (containerd's shim sockets under /run/containerd, kubelet's
/var/log/containers) and kubelet may set a few kernel settings that are not namespaced. `up`
records which paths existed and each setting's value; `down` removes the paths that `up` found
absent and puts back every setting it changed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from localcluster import layout

FIXED_PATHS = [
    "/run/containerd",
    "/var/lib/cni",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/kubelet",
]
HOST_SYSCTLS = [
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/netfilter/nf_conntrack_max",
]


def _record_file() -> Path:
    return layout.state_dir() / "footprint.json"


def _read_sysctl(key: str) -> str | None:
    try:
        return Path("/proc/sys", key).read_text().strip()
    except OSError:
        return None


def record() -> None:
    if _record_file().exists():  # a second `up` after a failed one keeps the first record
        return
    _record_file().parent.mkdir(parents=True, exist_ok=True)
    _record_file().write_text(
        json.dumps(
            {
                "absent": [p for p in FIXED_PATHS if not Path(p).exists()],
                "sysctls": {k: v for k in HOST_SYSCTLS if (v := _read_sysctl(k)) is not None},
            },
            indent=2,
        )
    )


def restore() -> list[str]:
    if not _record_file().exists():
        return []
    recorded = json.loads(_record_file().read_text())
    undone = []
    for path in recorded["absent"]:
        if Path(path).exists():
            shutil.rmtree(path, ignore_errors=True)
            undone.append(path)
    for key, value in recorded["sysctls"].items():
        if _read_sysctl(key) != value:
            Path("/proc/sys", key).write_text(value)
            undone.append(f"sysctl {key.replace('/', '.')} back to {value}")
    return undone
