"""`func deploy --build=false` as docs/func.md tells it, on the real Knative of the local cluster,
then `func invoke`: run in a copy of func.yaml, so that what func writes into a project is seen.
Needs `make localcluster-deploy` first (the Secrets, Redis and the image in the node)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from localcluster import layout
from scripts.serve import ROOT
from tests.conftest import skip_for_mode
from tests.localcluster.live import kube

NAMESPACE = "kv-store"
HOST = f"kv-store.{NAMESPACE}.{layout.DOMAIN}"


def func(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """func in ``project``, with the route's name resolved to the node for this call alone."""
    hosts = project.parent / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text() + f"\n{layout.NODE_IP} {HOST}\n")
    command = [str(layout.program("func")), *args]
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    return subprocess.run(
        ["unshare", "--mount", "--", "sh", "-c", script, str(hosts), *command],
        cwd=project, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_func_deploy_with_the_projects_image_then_invoke(
    running_cluster: None, tmp_path: Path
) -> None:
    try:
        live = kube.get("ksvc", "kv-store", "-n", NAMESPACE)
    except AssertionError:
        skip_for_mode("the function is not deployed: `make localcluster-deploy` first")
    image = live["spec"]["template"]["spec"]["containers"][0]["image"]
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "func.yaml", project / "func.yaml")
    before_revision = live["status"]["latestReadyRevisionName"]

    deployed = func(project, "deploy", "--image", image, "--build=false", "--push=false")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    after = kube.get("ksvc", "kv-store", "-n", NAMESPACE)
    assert kube.condition(after, "Ready") == "True"
    assert after["status"]["latestReadyRevisionName"] != before_revision  # a new revision, always

    # What docs/func.md says func writes into the project.
    assert sorted(p.name for p in project.iterdir()) == [".func", ".gitignore", "func.yaml"]
    assert "/.func" in (project / ".gitignore").read_text().splitlines()
    written = yaml.safe_load((project / "func.yaml").read_text())
    assert written["image"] == image and written["deploy"]["image"] == image
    assert written["deploy"]["namespace"] == NAMESPACE
    assert written["deployer"] == "knative" and written["build"]["builder"] == "pack"
    assert "# " not in (project / "func.yaml").read_text().split("\n", 2)[2]  # comments gone

    invoked = func(project, "invoke", "--request-type=GET")
    assert invoked.returncode == 0, invoked.stdout + invoked.stderr
    assert invoked.stdout.startswith("Count is ")


def test_funcs_own_build_pushed_to_the_clusters_registry(running_cluster: None) -> None:
    """`DEPLOY_WITH=func-build make localcluster-deploy`: func's host builder on the Debian-made
    base, pushed to the cluster's registry, pulled by the node; the project's tree untouched."""
    status_before = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    deployed = subprocess.run(
        [str(ROOT / "scripts" / "localcluster-deploy.sh")],
        cwd=ROOT, env={**os.environ, "DEPLOY_WITH": "func-build", "PYTHON": sys.executable},
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    live = kube.get("ksvc", "kv-store", "-n", NAMESPACE)
    image = live["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith(f"{layout.NODE_IP}:{layout.REGISTRY_PORT}/kv-store@sha256:")
    assert kube.condition(live, "Ready") == "True"
    answer = kube.through_route(HOST, "/")
    assert answer.status_code == 200 and answer.text.startswith("Count is ")
    status_after = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert status_after == status_before  # func wrote into a scratch copy, not the project
