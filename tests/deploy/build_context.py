"""The build context as `minikube image build` packs it, and what the Dockerfile copies from it.

minikube (third_party/go-dockerclient/tar.go, CreateTarStream) reads .dockerignore line by line,
drops what its patterns exclude, and adds back only .dockerignore and the file named by `-f`
(none by default): unlike docker and podman, it does not add back the Dockerfile. The patterns
are matched by docker-py's implementation of the same .dockerignore rules.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from docker.utils.build import PatternMatcher


def dockerignore_patterns(root: Path) -> list[str]:
    """The patterns as minikube splits them: every non-empty line (a comment matches nothing)."""
    ignore = root / ".dockerignore"
    if not ignore.is_file():
        return []
    return [line.strip() for line in ignore.read_text().split("\n") if line.strip()]


def minikube_context(root: Path, dockerfile: str | None = None) -> set[str]:
    """Paths (files and folders, relative, '/'-separated) that minikube sends to the build."""
    sent = set(PatternMatcher(dockerignore_patterns(root)).walk(str(root)))
    for forced in (".dockerignore", dockerfile):
        if forced and (root / forced).exists():
            sent.add(forced)
    return sent


def copy_sources(dockerfile_text: str) -> list[str]:
    """The context paths the Dockerfile's COPY and ADD instructions read (not --from stages)."""
    sources: list[str] = []
    logical = ""
    for raw in dockerfile_text.splitlines():
        line = raw.strip()
        if line.startswith("#") and not logical:
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        words = shlex.split(logical) if logical else []
        logical = ""
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        arguments = [word for word in words[1:] if not word.startswith("--")]
        if any(word.startswith("--from") for word in words[1:]):
            continue
        sources.extend(source.rstrip("/") or "." for source in arguments[:-1])
    return sources


def missing_from_context(root: Path, dockerfile: str | None = None) -> list[str]:
    """What a build through minikube would not find: the Dockerfile, or a file a COPY needs."""
    context = minikube_context(root, dockerfile)
    name = dockerfile or "Dockerfile"
    if name not in context:
        return [name]
    missing = []
    for source in copy_sources((root / name).read_text()):
        path = root / source
        if source not in context:
            missing.append(source)
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(root).as_posix()
                if file.is_file() and "__pycache__" not in file.parts and relative not in context:
                    missing.append(relative)
    return missing
