"""The shell scripts lint clean; cluster-up stops at once, saying what to install, when a
prerequisite is missing (before it touches any cluster). Full runs against stand-in tools are in
test_cluster_scripts.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.manifests import ROOT

SCRIPTS = sorted((ROOT / "scripts").glob("*.sh")) + sorted(
    p for p in [ROOT / ".ci" / "run"] if p.is_file()
)
BASH = shutil.which("bash") or "/bin/bash"
# What the scripts run before their prerequisite check.
BASE_TOOLS = ("dirname", "mktemp", "rm")


def test_the_owned_scripts_exist_and_are_executable() -> None:
    names = {script.name for script in SCRIPTS}
    assert {"cluster-up.sh", "cluster-down.sh", "install-system-deps.sh"} <= names
    assert all(os.access(script, os.X_OK) for script in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (scripts/install-system-deps.sh installs it)")
    linted = subprocess.run(
        [shellcheck, "--external-sources", str(script)], capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_scripts_use_strict_mode() -> None:
    for script in SCRIPTS:
        assert "set -euo pipefail" in script.read_text(), script.name


def path_with(tmp_path: Path, *present: str) -> str:
    """A PATH holding the base tools and, for each name in ``present``, a program that must
    never run (it prints its name and fails)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in BASE_TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run the scripts"
        (bin_dir / tool).symlink_to(found)
    for name in present:
        program = bin_dir / name
        program.write_text(f"#!{BASH}\necho '{name} was run' >&2\nexit 99\n")
        program.chmod(0o755)
    return str(bin_dir)


def run_script(name: str, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(ROOT / "scripts" / name)],
        env={"PATH": path, "HOME": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_cluster_up_without_minikube_stops_and_says_what_to_install(tmp_path: Path) -> None:
    result = run_script("cluster-up.sh", path_with(tmp_path, "kubectl"))
    assert result.returncode == 1
    assert "minikube is not installed" in result.stderr
    assert "https://minikube.sigs.k8s.io" in result.stderr
    assert "was run" not in result.stderr


def test_cluster_up_without_kubectl_stops_and_says_what_to_install(tmp_path: Path) -> None:
    result = run_script("cluster-up.sh", path_with(tmp_path, "minikube"))
    assert result.returncode == 1
    assert "kubectl is not installed" in result.stderr
    assert "was run" not in result.stderr


def test_cluster_up_asked_to_use_func_without_it_stops(tmp_path: Path) -> None:
    path = path_with(tmp_path, "minikube", "kubectl")
    result = run_script("cluster-up.sh", path, DEPLOY_WITH="func")
    assert result.returncode == 1
    assert "func is not installed" in result.stderr
    assert "DEPLOY_WITH=kubectl" in result.stderr
    assert "was run" not in result.stderr


def test_cluster_up_rejects_an_unknown_domain_mode(tmp_path: Path) -> None:
    path = path_with(tmp_path, "minikube", "kubectl")
    result = run_script("cluster-up.sh", path, DOMAIN_MODE="nip", DEPLOY_WITH="kubectl")
    assert result.returncode == 1
    assert "DOMAIN_MODE must be sslip or host-header" in result.stderr


def test_cluster_down_without_minikube_stops(tmp_path: Path) -> None:
    result = run_script("cluster-down.sh", path_with(tmp_path))
    assert result.returncode == 1
    assert "minikube is not installed" in result.stderr


def test_install_system_deps_without_apt_get_explains_and_succeeds(tmp_path: Path) -> None:
    """Tests that need a missing package skip; the script must not fail `make test`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    result = subprocess.run(
        [BASH, str(ROOT / "scripts" / "install-system-deps.sh")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "no apt-get" in result.stderr
    assert "shellcheck redis-server podman buildah runc debootstrap" in result.stderr


def test_e2e_without_a_cluster_stops_at_once_with_one_line(tmp_path: Path) -> None:
    """`make e2e` needs a live cluster; with none it says so in one line (real kubectl, an empty
    kubeconfig), exit 2, and runs nothing else."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    result = subprocess.run(
        [BASH, str(ROOT / "scripts" / "e2e.sh")],
        env={
            "PATH": f"{Path(kubectl).parent}:/usr/bin:/bin",
            "KUBECONFIG": str(kubeconfig),
            "HOME": str(tmp_path),
            "PYTHON": "false",
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("e2e: no live cluster: ")


def test_e2e_with_an_unreachable_cluster_stops_with_one_line(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters: [{name: gone, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: u}}]\nusers: [{name: u}]\n"
    )
    result = subprocess.run(
        [BASH, str(ROOT / "scripts" / "e2e.sh")],
        env={
            "PATH": f"{Path(kubectl).parent}:/usr/bin:/bin",
            "KUBECONFIG": str(kubeconfig),
            "HOME": str(tmp_path),
            "PYTHON": "false",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "no live cluster" in line and "'gone'" in line


def run_wait_for_zero(tmp_path: Path, kubectl_body: str) -> subprocess.CompletedProcess[str]:
    """e2e.sh's own pods() and wait_for_zero(), unchanged, with k (its kubectl) a stand-in."""
    script = (ROOT / "scripts" / "e2e.sh").read_text()
    functions = [
        re.search(rf"^{name}\(\) \{{\n.*?^\}}\n", script, re.MULTILINE | re.DOTALL)
        for name in ("pods", "wait_for_zero")
    ]
    die = re.search(r"^die\(\) \{.*\}$", script, re.MULTILINE)
    assert die is not None and functions[0] is not None and functions[1] is not None
    program = "\n".join(
        ["set -euo pipefail", "NAMESPACE=kv-store SERVICE=kv-store E2E_IDLE_WAIT_SECONDS=0",
         die[0], f"k() {{ {kubectl_body}; }}", functions[0][0], functions[1][0],
         "zero=$(wait_for_zero)", 'echo "zero after $zero"']
    )  # fmt: skip
    return subprocess.run([BASH, "-c", program], capture_output=True, text=True, timeout=30)


def test_e2e_counts_no_pods_as_zero(tmp_path: Path) -> None:
    result = run_wait_for_zero(tmp_path, "echo 'No resources found in kv-store namespace.' >&2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "zero after 0\n"


def test_e2e_counts_pods_that_remain(tmp_path: Path) -> None:
    result = run_wait_for_zero(tmp_path, "echo pod/kv-store-00001-deployment-abc")
    assert result.returncode == 1
    assert "still 1 pod(s)" in result.stderr


def test_e2e_stops_when_kubectl_fails_instead_of_counting_zero_pods(tmp_path: Path) -> None:
    failing = "echo 'Unable to connect to the server: net/http: TLS handshake timeout' >&2; exit 1"
    result = run_wait_for_zero(tmp_path, failing)
    assert result.returncode == 1
    assert "zero after" not in result.stdout
    assert result.stderr.startswith("e2e: cannot list the pods of kv-store/kv-store: Unable to")
