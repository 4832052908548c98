"""scripts/install-system-deps.sh, run with stand-ins for apt-get, id and sudo that record what
they were asked: it installs only what is missing, names each package and why before installing
it, says what to do when it cannot, and never fails `make test`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from scripts.serve import ROOT

SCRIPT = ROOT / "scripts" / "install-system-deps.sh"
BASH = shutil.which("bash") or "/bin/bash"


# What the script installs with no arguments; all but the last install a command of that name.
COMMANDS = ("shellcheck", "redis-server", "podman", "buildah", "runc", "debootstrap")
DNSNAME = "golang-github-containernetworking-plugin-dnsname"  # asked of dpkg-query
DEFAULTS = " ".join((*COMMANDS, DNSNAME))


class Machine:
    """A PATH of stand-ins; ``calls`` lists every apt-get and sudo call, one per line.
    ``dpkg-query`` reports installed exactly the packages named by ``registered``."""

    def __init__(self, tmp_path: Path, *, uid: int = 0, sudo: bool = False) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.calls = tmp_path / "calls"
        self.calls.touch()
        self.dpkg = tmp_path / "dpkg"
        self.dpkg.touch()
        for tool in ("env", "grep"):
            (self.bin / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
        self.program("id", f'[ "$1" = -u ] && echo {uid}')
        self.program("apt-get", f'echo "apt-get $*" >> "{self.calls}"')
        # dpkg-query -W -f='${Status}' NAME: the status line of an installed package, else 1.
        self.program(
            "dpkg-query",
            f'while read -r name; do [ "$name" = "$3" ] && printf "install ok installed" '
            f'&& exit 0; done < "{self.dpkg}"; exit 1',
        )
        if sudo:
            self.program("sudo", f'echo "sudo $*" >> "{self.calls}"; shift; "$@"')

    def program(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!{BASH}\n{body}\n")
        path.chmod(0o755)

    def installed(self, *names: str) -> None:
        for name in names:
            self.program(name, "exit 0")

    def registered(self, *names: str) -> None:
        with self.dpkg.open("a") as listed:
            listed.writelines(f"{name}\n" for name in names)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BASH, str(SCRIPT), *args],
            env={"PATH": str(self.bin), **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def recorded(self) -> list[str]:
        return self.calls.read_text().splitlines()


def test_nothing_missing_is_quick_and_silent(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    machine.installed(*COMMANDS)
    machine.registered(DNSNAME)
    result = machine.run()
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert machine.recorded() == []


def test_as_root_installs_only_what_is_missing(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    machine.installed("shellcheck", "podman", "buildah", "runc", "debootstrap")
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert machine.recorded() == [
        "apt-get update -qq",
        f"apt-get install -y -qq --no-install-recommends redis-server {DNSNAME}",
    ]
    assert result.stdout == (
        "install-system-deps: installing 2 Debian package(s) with apt-get, as root:\n"
        "  redis-server: Debian's Redis 7: the TLS tests and CI's second contract run\n"
        f"  {DNSNAME}: compose services find each other by name (tests/deploy/test_compose.py)\n"
        f"install-system-deps: SYSTEM_DEPS=basic leaves out {DNSNAME}; the tests that need them "
        "then skip\n"
    )


def test_every_package_is_named_with_why_once_before_apt_get_runs(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    machine.program("apt-get", f'echo "apt-get $*" >> "{machine.calls}"; echo "apt-get ran"')
    lines = machine.run().stdout.splitlines()
    assert lines.index("apt-get ran") == len(COMMANDS) + 3  # the heading, 7 packages, the hint
    named = [line.split(":")[0].strip() for line in lines[1 : len(COMMANDS) + 2]]
    assert named == DEFAULTS.split()
    assert all(line.split(": ", 1)[1] for line in lines[1 : len(COMMANDS) + 2])
    assert sum("installing" in line for line in lines) == 1


def test_system_deps_basic_leaves_out_the_container_tools(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    result = machine.run(SYSTEM_DEPS="basic")
    assert result.returncode == 0, result.stderr
    assert machine.recorded()[-1] == (
        "apt-get install -y -qq --no-install-recommends shellcheck redis-server"
    )
    assert "SYSTEM_DEPS=basic leaves out" not in result.stdout


def test_system_deps_none_installs_nothing_and_a_bad_value_is_one_line(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    quiet = machine.run(SYSTEM_DEPS="none")
    assert (quiet.returncode, quiet.stdout, quiet.stderr, machine.recorded()) == (0, "", "", [])
    bad = machine.run(SYSTEM_DEPS="some")
    assert bad.returncode == 2 and machine.recorded() == []
    assert bad.stderr == (
        "install-system-deps: SYSTEM_DEPS must be all, basic or none, got 'some'\n"
    )


def test_a_package_dpkg_knows_is_not_installed_again(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    machine.installed("shellcheck", "podman", "buildah", "runc", "debootstrap")
    machine.registered("redis-server", DNSNAME)  # no command on the PATH, but installed
    result = machine.run()
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert machine.recorded() == []


def test_arguments_name_the_packages(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    machine.run("hey")
    assert machine.recorded()[-1] == "apt-get install -y -qq --no-install-recommends hey"


def test_not_root_uses_passwordless_sudo(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=1000, sudo=True)
    assert machine.run("hey").returncode == 0
    assert machine.recorded() == [
        "sudo -n true",
        "sudo -n apt-get update -qq",
        "apt-get update -qq",
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        "--no-install-recommends hey",
        "apt-get install -y -qq --no-install-recommends hey",
    ]


def test_not_root_without_sudo_explains_and_succeeds(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=1000)
    result = machine.run()
    assert result.returncode == 0
    assert machine.recorded() == []
    assert result.stderr == (
        "install-system-deps: not root and no password-less sudo; "
        f"install {DEFAULTS} to run the tests that need them\n"
    )


def test_a_failing_apt_get_explains_and_succeeds(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    machine.program("apt-get", f'echo "apt-get $*" >> "{machine.calls}"; [ "$1" = update ]')
    result = machine.run("hey")
    assert result.returncode == 0
    assert result.stderr == (
        "install-system-deps: apt-get install failed; install hey to run the tests that need them\n"
    )
    machine.program("apt-get", "exit 100")
    result = machine.run("hey")
    assert result.returncode == 0
    assert result.stderr.startswith("install-system-deps: apt-get update failed; install hey")
