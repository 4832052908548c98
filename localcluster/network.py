"""The node's network namespace: the only place any cluster address exists.

The host reaches it through one veth pair (HOST_IP <-> NODE_IP). Inside, the default route is a
blackhole and pod traffic towards the host's end is dropped, so nothing in the cluster can send a
packet to any address outside the namespace. No rule is added to the host's own iptables.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from localcluster import layout
from localcluster.progress import ClusterError

NETNS_DIR = Path("/run/netns")
SERVICES_DEVICE = "knl-services"


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise ClusterError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


def enter() -> list[str]:
    """The prefix that runs a command in the node's network namespace. Not `ip netns exec`: it
    also mounts a fresh /sys, which hides the cgroup hierarchies that kubelet and runc need."""
    return ["nsenter", f"--net={NETNS_DIR / layout.NAME}"]


def in_node(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(*enter(), *command, check=check)


def exists() -> bool:
    return (NETNS_DIR / layout.NAME).exists()


def host_link_exists() -> bool:
    return run("ip", "link", "show", layout.HOST_VETH, check=False).returncode == 0


def create() -> None:
    run("ip", "netns", "add", layout.NAME)
    run("ip", "link", "add", layout.HOST_VETH, "type", "veth", "peer", "name", layout.NODE_VETH)
    run("ip", "link", "set", layout.NODE_VETH, "netns", layout.NAME)
    run("ip", "addr", "add", f"{layout.HOST_IP}/{layout.VETH_PREFIX}", "dev", layout.HOST_VETH)
    run("ip", "link", "set", layout.HOST_VETH, "up")
    in_node("ip", "link", "set", "lo", "up")
    in_node("ip", "addr", "add", f"{layout.NODE_IP}/{layout.VETH_PREFIX}", "dev", layout.NODE_VETH)
    in_node("ip", "link", "set", layout.NODE_VETH, "up")
    in_node("ip", "route", "add", "blackhole", "default")
    # Service addresses need a route for the node's own connections (the API server calling a
    # webhook): the kernel looks a route up before kube-proxy's DNAT rewrites the address, and
    # the blackhole answers EINVAL. An empty bridge takes them (kube-proxy's IPVS mode uses a
    # dummy device; a bridge needs no extra kernel module): a service address that no rule
    # rewrites goes nowhere.
    in_node("ip", "link", "add", SERVICES_DEVICE, "type", "bridge")
    in_node("ip", "link", "set", SERVICES_DEVICE, "up")
    in_node("ip", "route", "add", layout.SERVICE_CIDR, "dev", SERVICES_DEVICE)
    # Namespaced sysctls: these touch only the node's namespace.
    for key, value in {
        "net.ipv4.ip_forward": "1",
        "net.bridge.bridge-nf-call-iptables": "1",
        "net.ipv4.conf.all.route_localnet": "1",
        "net.ipv4.ip_unprivileged_port_start": "0",  # Traefik, as a non-root user, on port 80
    }.items():
        in_node("sysctl", "-qw", f"{key}={value}")
    # Pods may answer the host (a reply to the ingress) but never open anything towards it.
    for rule in (
        [
            "-A",
            "FORWARD",
            "-o",
            layout.NODE_VETH,
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        ],
        ["-A", "FORWARD", "-o", layout.NODE_VETH, "-j", "DROP"],
    ):
        in_node("iptables", "-w", *rule)


def delete() -> list[str]:
    removed = []
    if host_link_exists():
        run("ip", "link", "del", layout.HOST_VETH)
        removed.append(f"veth {layout.HOST_VETH}")
    if exists():
        run("ip", "netns", "del", layout.NAME)
        removed.append(f"network namespace {layout.NAME} (with its iptables rules and routes)")
    return removed
