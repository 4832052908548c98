"""`make mutation`'s verdict: the score of the last mutmut run, and every surviving mutant that
tests/equivalent_mutants.txt does not explain. Exits 1 when one is left unexplained."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scripts.serve import ROOT

EQUIVALENTS = ROOT / "tests" / "equivalent_mutants.txt"
STATS = ROOT / "mutants" / "mutmut-cicd-stats.json"


def listed_equivalents(text: str) -> dict[str, str]:
    """``name: why no test can tell it apart`` per line; blank lines and ``#`` comments skipped."""
    listed = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, reason = line.partition(":")
            listed[name.strip()] = reason.strip()
    return listed


def survivors(results: str) -> list[str]:
    """The names ``mutmut results`` reports as survived (or untested: no test reached them)."""
    names = []
    for line in results.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if status in ("survived", "no tests"):
            names.append(name)
    return names


def main() -> int:
    stats = json.loads(STATS.read_text())
    results = subprocess.run(
        [str(Path(sys.executable).with_name("mutmut")), "results"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    equivalents = listed_equivalents(EQUIVALENTS.read_text())
    left = survivors(results)
    unexplained = [name for name in left if name not in equivalents]
    total, killed = stats["total"], stats["killed"]
    explained = len(left) - len(unexplained)
    rest = killed / (total - explained)
    print(
        f"mutants of function/: {total}; killed {killed} ({killed / total:.1%}); "
        f"listed in {EQUIVALENTS.name} {explained}; killed of the rest {rest:.1%}"
    )
    for name in unexplained:
        print(f"survived, not explained in {EQUIVALENTS.relative_to(ROOT)}: {name}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
