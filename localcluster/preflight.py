"""What `up` needs of the machine, each checked in one line before anything is built or started."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from localcluster import layout
from localcluster.progress import ClusterError

CGROUPS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
COMMANDS = {"ip": "iproute2", "iptables": "iptables", "podman": "podman", "go": "the Go toolchain"}
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
COLD_BUILD_DISK_GB = 20


def problems(building: bool) -> list[str]:
    found: list[str] = []
    if os.geteuid() != 0:
        found.append("needs root: it makes a network namespace, cgroups and mounts")
    for command, package in COMMANDS.items():
        if shutil.which(command) is None:
            found.append(f"`{command}` not found: install {package}")
    for plugin in CNI_PLUGINS:
        if not Path("/usr/lib/cni", plugin).exists():
            found.append(
                f"CNI plugin /usr/lib/cni/{plugin} missing: install containernetworking-plugins"
            )
    if shutil.which("catatonit") is None:
        found.append("catatonit not found (the pause image): install catatonit")
    for controller in CGROUPS:
        if not Path("/sys/fs/cgroup", controller, "cgroup.procs").exists():
            found.append(
                f"cgroup v1 controller {controller} is not mounted at /sys/fs/cgroup/{controller}"
            )
    if not Path("/dev/kmsg").exists():
        found.append("/dev/kmsg is missing (kubelet's OOM watcher reads it)")
    if "overlay" not in Path("/proc/filesystems").read_text() and _modprobe("overlay"):
        found.append("the kernel has no overlay file system (containerd's snapshotter)")
    if not Path("/proc/sys/net/bridge").exists() and _modprobe("br_netfilter"):
        found.append("the kernel has no br_netfilter (kube-proxy's rules for bridged pod traffic)")
    route = subprocess.run(
        ["ip", "-o", "route", "show", "to", "match", layout.HOST_IP], capture_output=True, text=True
    )
    for line in route.stdout.splitlines():
        if not line.startswith("default") and layout.HOST_VETH not in line:
            found.append(
                f"{layout.HOST_IP}/{layout.VETH_PREFIX} is already routed here: {line.strip()}"
            )
    if building:
        free = shutil.disk_usage(_existing_parent(layout.cache_dir())).free / 1e9
        if free < COLD_BUILD_DISK_GB:
            found.append(
                f"{free:.0f} GB free under {layout.cache_dir()}: "
                f"a cold build needs {COLD_BUILD_DISK_GB} GB"
            )
    return found


def check(building: bool) -> None:
    found = problems(building)
    if found:
        raise ClusterError(
            "this machine cannot run the local cluster yet:\n"
            + "\n".join(f"  - {p}" for p in found)
        )


def _modprobe(module: str) -> bool:
    """True when the module could not be loaded."""
    try:
        return subprocess.run(["modprobe", module], capture_output=True).returncode != 0
    except FileNotFoundError:
        return True


def _existing_parent(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path
