"""Build what is missing: the Go programs from their modules, then the node's images.

Programs land in the cache keyed by component and version, so a new version builds beside the old
and `up` after `down` builds nothing. Images are single-binary root file systems imported with
podman (FROM scratch) and saved as docker archives that containerd imports at each `up`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from localcluster import layout
from localcluster.progress import ClusterError, say, step

COMPLETE = ".complete"

# Images the node runs: component -> {binary: extra entrypoint arguments}.
IMAGES: dict[str, dict[str, list[str]]] = {
    "coredns": {"coredns": []},
    "knative": {"controller": [], "webhook": [], "activator": [], "autoscaler": [], "queue": []},
    "traefik": {"traefik": []},
}
USER = "65532:65532"  # a numeric non-root user, as the upstream images use


def _version_ldflags(pin: layout.Pin) -> list[str]:
    """Kubernetes stamps its version at link time: unstamped, it says v0.0.0 and Knative
    refuses to start."""
    if pin.name != "kubernetes":
        return ["-s", "-w"]
    major, minor = pin.version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={pin.version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return flags


def built(pin: layout.Pin) -> bool:
    return (layout.bin_dir(pin) / COMPLETE).exists()


def go_env() -> dict[str, str]:
    # The machine's own Go: a toolchain line in an upstream go.mod must not start a download.
    return {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"}


def build_program(pin: layout.Pin) -> None:
    out = layout.bin_dir(pin)
    out.mkdir(parents=True, exist_ok=True)
    log = layout.cache_dir() / "build-logs" / f"{pin.name}-{pin.version}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**go_env(), "CGO_ENABLED": "1" if pin.cgo else "0"}
    with (
        step(f"build {pin.name} {pin.version} ({', '.join(pin.programs())})"),
        log.open("w") as sink,
    ):
        for binary, package in pin.programs().items():
            command = ["go", "build", "-trimpath", "-ldflags", " ".join(_version_ldflags(pin))]
            if pin.tags:
                command += ["-tags", ",".join(pin.tags)]
            command += ["-o", str(out / binary), package]
            sink.write("$ " + " ".join(command) + "\n")
            sink.flush()
            done = subprocess.run(
                command, cwd=layout.GOMOD / pin.name, env=env, stdout=sink, stderr=sink
            )
            if done.returncode != 0:
                raise ClusterError(f"building {binary} from {pin.module} {pin.version} failed", log)
        (out / COMPLETE).touch()


def image_archive(component: str, binary: str) -> Path:
    return (
        layout.cache_dir()
        / "images"
        / f"{component}-{binary}-{layout.pins()[component].version}.tar"
    )


def pause_archive() -> Path:
    return layout.cache_dir() / "images" / "pause-catatonit.tar"


def _podman(*args: str, stdin: bytes | None = None) -> None:
    done = subprocess.run(["podman", *args], input=stdin, capture_output=True)
    if done.returncode != 0:
        raise ClusterError(
            f"podman {args[0]} failed: {done.stderr.decode(errors='replace').strip()}"
        )


def _rootfs_tar(program: Path) -> bytes:
    """/program and an empty world-writable /tmp: all a single static binary needs."""
    with tempfile.TemporaryDirectory() as scratch:
        tar_path = Path(scratch) / "rootfs.tar"
        with tarfile.open(tar_path, "w") as tar:
            tmp = tarfile.TarInfo("tmp")
            tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
            tar.addfile(tmp)
            tar.add(program, arcname="program")
        return tar_path.read_bytes()


def build_image(
    program: Path, name: str, archive: Path, arguments: list[str], user: str = USER
) -> None:
    entrypoint = ", ".join(f'"{part}"' for part in ["/program", *arguments])
    _podman(
        "import",
        "--change",
        f"ENTRYPOINT [{entrypoint}]",
        "--change",
        f"USER {user}",
        "-",
        name,
        stdin=_rootfs_tar(program),
    )
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_suffix(".partial")
    _podman("save", "--format", "docker-archive", "-o", str(partial), name)
    partial.rename(archive)


def build_images() -> None:
    wanted = [
        (c, b)
        for c, binaries in IMAGES.items()
        for b in binaries
        if not image_archive(c, b).exists()
    ]
    if not pause_archive().exists():
        catatonit = shutil.which("catatonit") or "/usr/bin/catatonit"
        with step(f"image {layout.PAUSE_IMAGE} (Debian's catatonit in pause mode)"):
            build_image(
                Path(catatonit), layout.PAUSE_IMAGE, pause_archive(), ["-P"], user="65535:65535"
            )
    for component, binary in wanted:
        with step(f"image {layout.image_name(component, binary)}"):
            build_image(
                layout.program(component, binary),
                layout.image_name(component, binary),
                image_archive(component, binary),
                IMAGES[component][binary],
            )


def missing() -> list[layout.Pin]:
    return [pin for pin in layout.pins().values() if not built(pin)]


def missing_images() -> list[str]:
    archives = [pause_archive()] + [
        image_archive(c, b) for c, binaries in IMAGES.items() for b in binaries
    ]
    return [a.name for a in archives if not a.exists()]


def build_all() -> None:
    todo = missing()
    if todo:
        say(
            "cold build of "
            + ", ".join(p.name for p in todo)
            + ": about 60 minutes on 2 cores and "
            "8 GB of disk for all of them (module and build caches included)"
        )
    for pin in todo:
        build_program(pin)
    build_images()
