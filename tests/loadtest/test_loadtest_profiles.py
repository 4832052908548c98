"""Load profiles, profile files and the request mix."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from loadtest.errors import UsageError
from loadtest.mix import RequestMix
from loadtest.profiles import Level, Profile, Stage, built_in, resolve


def levels(profile: Profile) -> list[int | float | None]:
    return [stage.rate if stage.is_rate else stage.users for stage in profile.stages]


def test_steady_holds_the_level() -> None:
    profile = built_in("steady", 60, Level(users=8))
    assert profile.stages == (Stage(60, users=8),)
    assert profile.mode == "users"


def test_step_rises_to_the_level_in_five_steps() -> None:
    profile = built_in("step", 42, Level(users=20))
    assert levels(profile) == [4, 8, 12, 16, 20]
    assert profile.duration_s == 42
    assert [stage.duration_s for stage in profile.stages] == [8, 8, 8, 9, 9]


def test_step_in_rate_mode_and_short_runs() -> None:
    assert levels(built_in("step", 10, Level(rate=100))) == [20.0, 40.0, 60.0, 80.0, 100.0]
    assert levels(built_in("step", 3, Level(users=3))) == [1, 2, 3]
    with pytest.raises(UsageError, match="at least 2 seconds"):
        built_in("step", 1, Level(users=3))


def test_spike_is_idle_burst_idle_with_a_long_tail() -> None:
    profile = built_in("spike", 240, Level(rate=50))
    assert [(s.duration_s, s.rate) for s in profile.stages] == [(24, 0.0), (48, 50.0), (168, 0.0)]
    assert profile.mode == "rate"
    short = built_in("spike", 3, Level(users=5))
    assert [(s.duration_s, s.users) for s in short.stages] == [(1, 0), (1, 5), (1, 0)]


def test_idle_stages_carry_no_load() -> None:
    assert not Stage(10, rate=0.0).carries_load
    assert not Stage(10, users=0).carries_load
    assert Stage(10, rate=2.5).carries_load and Stage(10, users=4).carries_load


def test_stage_at() -> None:
    profile = Profile("p", (Stage(2, users=1), Stage(3, rate=10.0)))
    assert profile.stage_at(0) == Stage(2, users=1)
    assert profile.stage_at(1.99) == Stage(2, users=1)
    assert profile.stage_at(2.0) == Stage(3, rate=10.0)
    assert profile.stage_at(5.0) is None
    assert profile.mode == "mixed"


def test_profile_file_yaml(tmp_path: Path) -> None:
    path = tmp_path / "burst.yaml"
    path.write_text(
        "# idle, a rate stage, users, idle\n"
        "stages:\n"
        "  - {duration: 2, users: 0}\n"
        "  - {duration: 3, rate: 12.5}\n"
        "  - duration: 4\n"
        "    users: 6\n"
        "  - {duration: 5, rate: 0}\n"
    )
    profile = resolve(str(path), None, None)
    assert profile.name == "burst"
    assert profile.stages == (
        Stage(2, users=0),
        Stage(3, rate=12.5),
        Stage(4, users=6),
        Stage(5, rate=0.0),
    )
    assert resolve(str(path), 6, None).stages == (
        Stage(2, users=0),
        Stage(3, rate=12.5),
        Stage(1, users=6),
    )


def test_profile_file_json_list(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('[{"duration": 5, "users": 2}, {"duration": 5, "rate": 3}]')
    assert resolve(str(path), None, None).duration_s == 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "expected a non-empty list of stages"),
        ("stages: 3", "expected a non-empty list of stages"),
        ("- {users: 3}", "stage 1: duration must be a whole number"),
        ("- {duration: 0, users: 3}", "stage 1: duration must be a whole number"),
        ("- {duration: 2.5, users: 3}", "stage 1: duration must be a whole number"),
        ("- {duration: 5, users: 1}\n- {duration: 5}", "stage 2: needs exactly one of users or"),
        ("- {duration: 5, users: 1, rate: 2}", "stage 1: needs exactly one of users or rate"),
        ("- {duration: 5, users: -1}", "stage 1: users must be a whole number >= 0"),
        ("- {duration: 5, rate: fast}", "stage 1: rate must be a number"),
        ("- {duration: 5, users: 1, ramp: 3}", "stage 1: unknown key(s) ramp"),
        ("- [5, 1]", "stage 1: expected a mapping"),
        ("stages: [", "is not valid JSON/YAML"),
    ],
)
def test_profile_file_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        resolve(str(path), None, None)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_profile_file_and_command_line_conflicts(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("- {duration: 5, users: 2}\n")
    with pytest.raises(UsageError, match="lasts 5 s, shorter than --duration 9"):
        resolve(str(path), 9, None)
    with pytest.raises(UsageError, match="drop --users/--rate"):
        resolve(str(path), None, Level(users=3))


def test_unknown_profile() -> None:
    with pytest.raises(UsageError, match="unknown profile 'ramp': use steady, step, spike"):
        resolve("ramp", 10, None)


def test_built_in_defaults() -> None:
    assert resolve("steady", None, None).stages == (Stage(60, users=10),)


def test_mix_parse_and_pick() -> None:
    mix = RequestMix.parse("count=1, get=8,put=1")
    assert mix.weights == {"count": 1.0, "get": 8.0, "put": 1.0}
    rng = random.Random(7)
    picks = [mix.pick(rng) for _ in range(5000)]
    assert 0.75 < picks.count("get") / len(picks) < 0.85
    only_count = RequestMix.parse("count=1")
    assert {only_count.pick(rng) for _ in range(100)} == {"count"}
    assert str(only_count) == "count=1,get=0,put=0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("count=1,delete=2", "bad --mix part 'delete=2'"),
        ("get", "bad --mix part 'get'"),
        ("get=-1", "bad --mix weight '-1' for get"),
        ("get=lots", "bad --mix weight 'lots' for get"),
        ("get=0,put=0", "at least one weight above 0"),
    ],
)
def test_mix_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        RequestMix.parse(text)
