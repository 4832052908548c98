"""Reading the requirement files as pip does: ``-r`` includes, ``-c`` constraints, markers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class Pin:
    name: str  # canonical: lower case, runs of -_. as one -
    version: str
    file: str
    applies: bool  # its environment marker holds here (or it has none)


def read(
    path: Path, *, constraint: bool = False, follow: bool = True
) -> tuple[list[Pin], list[Pin]]:
    """The requirements and the constraints a file brings in, following ``-r`` and ``-c`` unless
    ``follow`` is false (then only the file's own lines)."""
    requirements: list[Pin] = []
    constraints: list[Pin] = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "-c ")):
            if not follow:
                continue
            nested_requirements, nested_constraints = read(
                path.parent / line[3:].strip(), constraint=constraint or line.startswith("-c")
            )
            requirements += nested_requirements
            constraints += nested_constraints
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise AssertionError(f"{path.name}: {line!r} is not one exact == pin")
        pin = Pin(
            canonicalize_name(requirement.name),
            specifiers[0].version,
            path.name,
            requirement.marker is None or requirement.marker.evaluate(),
        )
        (constraints if constraint else requirements).append(pin)
    return requirements, constraints
