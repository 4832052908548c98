#!/usr/bin/env bash
# Installs Debian packages when they are missing, after naming each one and why it is needed.
# With no arguments, those the tests use; SYSTEM_DEPS chooses how many:
#   all (the default)  shellcheck, redis-server, and the container tools: podman, buildah, runc,
#                      debootstrap and CNI's dnsname plugin (tests/deploy builds and runs the image)
#   basic              shellcheck and redis-server only; the image and compose tests skip
#   none               nothing
# With arguments, those packages (`make bench` asks for hey).
# Quick and silent when everything is there. Without apt-get, or without root or password-less
# sudo, it prints what to install and exits 0: the tests that need a package then skip and say why.
set -euo pipefail

declare -A why=(
    [shellcheck]="lints scripts/*.sh and the workflow's shell steps (tests/deploy)"
    [redis-server]="Debian's Redis 7: the TLS tests and CI's second contract run"
    [podman]="builds and runs the function's image (tests/deploy/test_image.py, make image)"
    [buildah]="podman's image builder"
    [runc]="the container runtime podman uses here"
    [debootstrap]="makes the image's base from Debian's packages (scripts/build-base-image.sh)"
    [golang-github-containernetworking-plugin-dnsname]="compose services find each other by name (tests/deploy/test_compose.py)"
    [hey]="the benchmark's load generator (make bench)"
)
basic=(shellcheck redis-server)
containers=(podman buildah runc debootstrap golang-github-containernetworking-plugin-dnsname)

packages=("$@")
if [ "${#packages[@]}" -eq 0 ]; then
    case "${SYSTEM_DEPS:-all}" in
        all) packages=("${basic[@]}" "${containers[@]}") ;;
        basic) packages=("${basic[@]}") ;;
        none) exit 0 ;;
        *)
            echo "install-system-deps: SYSTEM_DEPS must be all, basic or none, got '${SYSTEM_DEPS}'" >&2
            exit 2
            ;;
    esac
fi
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

echo "install-system-deps: installing ${#missing[@]} Debian package(s) with apt-get, as root:"
optional=()
for package in "${missing[@]}"; do
    echo "  ${package}: ${why[$package]:-asked for by name}"
    [[ " ${containers[*]} " == *" $package "* ]] && optional+=("$package")
done
if [ "$#" -eq 0 ] && [ "${#optional[@]}" -gt 0 ]; then
    echo "install-system-deps: SYSTEM_DEPS=basic leaves out ${optional[*]}; the tests that need them then skip"
fi
"${as_root[@]}" apt-get update -qq || advise "apt-get update failed"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    advise "apt-get install failed"
