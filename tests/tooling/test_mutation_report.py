"""`make mutation`'s verdict (scripts/mutation_report.py) on a hand-written mutmut result."""

from __future__ import annotations

from scripts import mutation_report

RESULTS = """
    function.a.x_f__mutmut_1: killed
    function.a.x_f__mutmut_2: survived
    function.a.x_f__mutmut_3: no tests
    function.a.x_g__mutmut_1: timeout
"""
STATS = {"total": 4, "killed": 1}


def test_every_survivor_explained_passes_and_a_stale_line_is_named() -> None:
    listed = """# a comment
function.a.x_f__mutmut_2: equivalent: a reason with a colon
function.a.x_f__mutmut_3: reached by no fast test

function.a.x_gone__mutmut_9: a mutant of code since removed
"""
    lines, status = mutation_report.verdict(STATS, RESULTS, listed)
    assert status == 0
    assert lines == [
        "mutants of function/: 4; killed 1 (25.0%); listed in equivalent_mutants.txt 2; "
        "killed of the rest 50.0%",
        "listed in tests/equivalent_mutants.txt, but not a survivor: function.a.x_gone__mutmut_9",
    ]


def test_a_survivor_not_explained_fails() -> None:
    lines, status = mutation_report.verdict(STATS, RESULTS, "function.a.x_f__mutmut_2: why\n")
    assert status == 1
    assert lines[1:] == [
        "survived, not explained in tests/equivalent_mutants.txt: function.a.x_f__mutmut_3"
    ]


def test_reasons_are_read_after_the_first_colon() -> None:
    listed = mutation_report.listed_equivalents("  a.b__mutmut_1 : x: y  \n#c: d\n\n")
    assert listed == {"a.b__mutmut_1": "x: y"}
