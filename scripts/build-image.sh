#!/usr/bin/env bash
# Builds an image with podman on the Debian-made base (scripts/build-base-image.sh):
#   scripts/build-image.sh TAG [CONTEXT [CONTAINERFILE]]
# A machine that reaches PyPI through a proxy with its own certificate authority has it in
# /etc/ssl/certs and pip's settings in /etc/pip.conf: both are lent to the build, read-only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=${1:?usage: build-image.sh TAG [CONTEXT [CONTAINERFILE]]}
CONTEXT=${2:-$ROOT}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/scripts/podman/containers.conf}

base=$("$ROOT/scripts/build-base-image.sh")
args=(build --quiet --isolation chroot --network host --build-arg "BASE_IMAGE=$base" -t "$TAG")
for path in /etc/ssl/certs /etc/pip.conf; do
    [ -e "$path" ] && args+=(-v "$path:$path:ro")
done
[ -n "${3:-}" ] && args+=(-f "$3")
podman "${args[@]}" "$CONTEXT" > /dev/null
echo "$TAG"
