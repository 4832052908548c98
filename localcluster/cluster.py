"""up, down and status: the steps, in order, each one undone by `down`."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from localcluster import (
    addons,
    build,
    footprint,
    kubecontext,
    layout,
    network,
    node,
    preflight,
    processes,
)
from localcluster.progress import ClusterError, say, step

DAEMONS = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "containerd",
    "registry",
    "kubelet",
    "kube-proxy",
]


def running() -> bool:
    return network.exists() and all(processes.alive(name) for name in DAEMONS)


def up() -> None:
    if running():
        say(f"{layout.NAME} is already running (`make localcluster-status` for details)")
        return
    if network.exists() or layout.state_dir().exists():
        raise ClusterError(
            f"a stopped or half-started {layout.NAME} is still here ({layout.state_dir()}): "
            "run `make localcluster-down` first"
        )
    todo = build.missing()
    preflight.check(building=bool(todo))
    started = time.monotonic()
    build.build_all()
    footprint.record()
    try:
        with step(
            f"network namespace {layout.NAME} (node {layout.NODE_IP}, blackhole default route)"
        ):
            network.create()
            processes.make_cgroups()
        with step("certificates and kubeconfigs (kubeadm phases)"):
            node.write_certificates()
        node.start_daemons()
        addons.install()
        kubecontext.add()
    except BaseException:
        say(f"`up` failed; logs stay in {layout.log_dir()} until `make localcluster-down`")
        raise
    say(f"{layout.NAME} is up in {time.monotonic() - started:.0f}s")
    print(next_steps())


def next_steps() -> str:
    return f"""
Kubernetes {server_version()}, Knative Serving {layout.pins()["knative"].release}, \
context "{layout.NAME}".
The ingress (Traefik) answers on http://{layout.NODE_IP}:{layout.INGRESS_PORT}/ \
with the route's Host header:
  curl -H "Host: <service>.<namespace>.{layout.DOMAIN}" http://{layout.NODE_IP}/
Next:
  make localcluster-status            what runs, with each component's log
  make localcluster-deploy            the function and its Redis, as a Knative Service
  make e2e                            then the contract suite and scaling through the route
  make localcluster-down              stop everything and remove what `up` made
"""


def server_version() -> str:
    done = addons.kubectl("version", "-o", "json", check=False)
    try:
        return str(json.loads(done.stdout)["serverVersion"]["gitVersion"])
    except (ValueError, KeyError):
        return "(API server not answering)"


def _mounts_under(root: Path) -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(root) or point.startswith(f"{root}/"):
            points.append(point)
    return points


def down() -> None:
    removed: list[str] = []
    if processes.pid_dir().exists() or processes.pids_in_tree():
        with step("stop every process the cluster started"):
            count = processes.end_all()
            removed.append(f"{count} processes")
    state = layout.state_dir()
    mounts = _mounts_under(state)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    if mounts:
        removed.append(f"{len(mounts)} mounts under {state}")
    removed += network.delete()
    removed += processes.remove_cgroups()
    removed += footprint.restore()
    removed += kubecontext.remove() if _kubectl_built() else []
    if state.exists():
        shutil.rmtree(state)
        removed.append(f"state {state}")
    if removed:
        say("removed: " + "; ".join(removed))
    else:
        say(f"{layout.NAME} is not running; nothing to remove")
    say(f"kept the built programs and images in {layout.cache_dir()}")


def _kubectl_built() -> bool:
    return build.built(layout.pins()["kubernetes"])


def status() -> int:
    if not network.exists():
        say(f"{layout.NAME} is not running (`make localcluster-up` starts it)")
        return 1
    ok = True
    for name in DAEMONS:
        alive = processes.alive(name)
        ok &= alive
        pid = processes.read_pid(name)
        print(
            f"  {name:24} {'running' if alive else 'STOPPED':8} pid {pid}"
            f"  log {layout.log_dir() / f'{name}.log'}"
        )
    print(f"  kubernetes               {server_version()}")
    for namespace in ("kube-system", "knative-serving", "traefik"):
        print(addons.kubectl("get", "deployments", "-n", namespace, check=False).stdout.rstrip())
    print(next_steps())
    return 0 if ok else 1


def shell_env() -> str:
    """What scripts need to use the running cluster: its programs, context and addresses."""
    values = {
        "LOCALCLUSTER_BIN": layout.bin_dir(layout.pins()["kubernetes"]),
        "LOCALCLUSTER_FUNC": layout.program("func"),
        "LOCALCLUSTER_CONTEXT": layout.NAME,
        "LOCALCLUSTER_NODE_IP": layout.NODE_IP,
        "LOCALCLUSTER_VOLUMES": layout.state_dir() / "volumes",
        "LOCALCLUSTER_REGISTRY": f"{layout.NODE_IP}:{layout.REGISTRY_PORT}",
    }
    return "\n".join(f"export {key}={shlex.quote(str(value))}" for key, value in values.items())
