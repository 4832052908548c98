#!/usr/bin/env bash
# A stand-in for the official python:3.11-slim-bookworm base, made from Debian's own packages,
# for machines that cannot pull from a registry: Debian bookworm with its Python 3.11 in /usr.
# The Dockerfile takes it through `--build-arg BASE_IMAGE=localhost/debian-python:bookworm`.
#
# Quick when the image exists in podman's storage; otherwise it imports the root file system
# cached in .cache/container-base/ (ignored by git), and only the first run makes it with
# debootstrap (a minute or two) from the Debian mirror this machine's apt already uses.
# Needs root (debootstrap, podman's storage). Prints the image's name on success.
set -euo pipefail

IMAGE=${BASE_IMAGE_NAME:-localhost/debian-python:bookworm}
SUITE=bookworm
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${BASE_IMAGE_CACHE:-$ROOT/.cache/container-base}
ARCHIVE=$CACHE/debian-python-$SUITE.tar

die() { printf 'build-base-image: %s\n' "$*" >&2; exit 1; }

# The first `URIs:` (deb822) or `deb` (one-line) source that serves the suite itself.
debian_mirror() {
    local file
    for file in /etc/apt/sources.list.d/*.sources; do
        [ -f "$file" ] || continue
        awk -v suite="$SUITE" '
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) { print uri; exit } }
        ' "$file"
    done
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$file" ] || continue
        awk -v suite="$SUITE" '$1 == "deb" && $0 !~ /\[/ && $3 == suite { print $2 }' "$file"
    done
}

command -v podman >/dev/null 2>&1 || die "podman is not installed (scripts/install-system-deps.sh)"
if podman image exists "$IMAGE"; then
    echo "$IMAGE"
    exit 0
fi

if [ ! -s "$ARCHIVE" ]; then
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed"
    [ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
    mirror=$(debian_mirror | head -n 1)
    [ -n "$mirror" ] || die "no Debian $SUITE source found under /etc/apt"
    mkdir -p "$CACHE"
    rootfs=$(mktemp -d "$CACHE/rootfs-XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    echo "build-base-image: debootstrap $SUITE from $mirror (once; cached in $CACHE)" >&2
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        "$SUITE" "$rootfs" "$mirror" >&2
    # The official image has `python`; Debian has only `python3`.
    ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$ARCHIVE.partial" .
    mv "$ARCHIVE.partial" "$ARCHIVE"
fi

# Debian's Python refuses `pip install` outside a virtual environment without this (PEP 668);
# the official image has no such marker.
podman import --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' "$ARCHIVE" "$IMAGE" >/dev/null
echo "$IMAGE"
