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


def verdict(stats: dict[str, int], results: str, equivalents_text: str) -> tuple[list[str], int]:
    """The report's lines and exit status: 1 when a survivor is not explained."""
    equivalents = listed_equivalents(equivalents_text)
    left = survivors(results)
    unexplained = [name for name in left if name not in equivalents]
    total, killed = stats["total"], stats["killed"]
    explained = len(left) - len(unexplained)
    rest = killed / (total - explained)
    listed = EQUIVALENTS.relative_to(ROOT)
    lines = [
        f"mutants of function/: {total}; killed {killed} ({killed / total:.1%}); "
        f"listed in {EQUIVALENTS.name} {explained}; killed of the rest {rest:.1%}"
    ]
    lines += [f"survived, not explained in {listed}: {name}" for name in unexplained]
    # A listed mutant that no longer survives was killed by a new test or changed with its code:
    # its line now explains nothing.
    stale = sorted(equivalents.keys() - set(left))
    lines += [f"listed in {listed}, but not a survivor: {name}" for name in stale]
    return lines, 1 if unexplained else 0


def main() -> int:
    results = subprocess.run(
        [str(Path(sys.executable).with_name("mutmut")), "results"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines, status = verdict(json.loads(STATS.read_text()), results, EQUIVALENTS.read_text())
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
