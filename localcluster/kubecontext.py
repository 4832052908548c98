"""The user's kubeconfig gets a context named after the cluster, as kind and minikube add theirs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from localcluster import layout


def user_kubeconfig() -> Path:
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(first or os.path.expanduser("~/.kube/config"))


def _kubectl_config(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(layout.program("kubernetes", "kubectl")),
            "config",
            f"--kubeconfig={user_kubeconfig()}",
            *args,
        ],
        capture_output=True,
        text=True,
    )


def add() -> None:
    pki = layout.state_dir() / "pki"
    user_kubeconfig().parent.mkdir(parents=True, exist_ok=True)
    _kubectl_config(
        "set-cluster",
        layout.NAME,
        f"--server=https://{layout.NODE_IP}:{layout.API_PORT}",
        f"--certificate-authority={pki / 'ca.crt'}",
        "--embed-certs=true",
    )
    # The cluster's own super-admin credentials (group system:masters), as kind gives its user.
    admin = subprocess.run(
        [
            str(layout.program("kubernetes", "kubectl")),
            "config",
            "view",
            "--raw",
            "--flatten",
            f"--kubeconfig={layout.kubeconfig()}",
            "-o",
            "jsonpath={.users[0].user.client-certificate-data} {.users[0].user.client-key-data}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    import base64

    cert, key = pki / "user.crt", pki / "user.key"
    cert.write_bytes(base64.b64decode(admin[0]))
    key.write_bytes(base64.b64decode(admin[1]))
    key.chmod(0o600)
    _kubectl_config(
        "set-credentials",
        layout.NAME,
        f"--client-certificate={cert}",
        f"--client-key={key}",
        "--embed-certs=true",
    )
    _kubectl_config("set-context", layout.NAME, f"--cluster={layout.NAME}", f"--user={layout.NAME}")
    _kubectl_config("use-context", layout.NAME)


def remove() -> list[str]:
    if (
        not user_kubeconfig().exists()
        or _kubectl_config("get-contexts", layout.NAME).returncode != 0
    ):
        return []
    _kubectl_config("delete-context", layout.NAME)
    _kubectl_config("delete-cluster", layout.NAME)
    _kubectl_config("delete-user", layout.NAME)
    current = _kubectl_config("current-context").stdout.strip()
    if current == layout.NAME:
        _kubectl_config("unset", "current-context")
    return [f"context {layout.NAME} in {user_kubeconfig()}"]
