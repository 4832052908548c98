#!/usr/bin/env bash
# Installs Debian packages when they are missing. With no arguments, those the tests use: the
# ShellCheck linter for scripts/*.sh (tests/deploy), redis-server, Debian's stock Redis 7, for
# the second run of the contract suite, and podman, buildah, runc and debootstrap, which build and
# run the function's image (tests/deploy/test_image.py, scripts/build-base-image.sh), with CNI's
# dnsname plugin, by which compose services find each other by name (tests/deploy/test_compose.py).
# `make bench` asks for hey, its load generator.
# Quick and silent when everything is there. Without apt-get, or without root or password-less
# sudo, it prints what to install and exits 0: the tests that need a package then skip and say why.
set -euo pipefail

packages=("$@")
[ "${#packages[@]}" -gt 0 ] || packages=(shellcheck redis-server podman buildah runc debootstrap
        golang-github-containernetworking-plugin-dnsname)
missing=()
for package in "${packages[@]}"; do
    # Most install a command of the same name; the others are asked of dpkg.
    command -v "$package" >/dev/null 2>&1 ||
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' ||
        missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

advise() {
    printf 'install-system-deps: %s; install %s to run the tests that need them\n' \
        "$1" "${missing[*]}" >&2
    exit 0
}

command -v apt-get >/dev/null 2>&1 || advise "no apt-get on this machine"
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    advise "not root and no password-less sudo"
fi

echo "install-system-deps: installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq || advise "apt-get update failed"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    advise "apt-get install failed"
