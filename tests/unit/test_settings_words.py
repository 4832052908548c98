"""Settings in the words docs/configuration.md gives: every spelling of a flag, the exact refusal
of a bad value of each kind, and the token rule's edges."""

from __future__ import annotations

import pytest

from function.settings import ConfigError, Settings


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", True), ("true", True), ("yes", True), ("on", True), ("TRUE", True), ("Yes", True),
     ("0", False), ("false", False), ("no", False), ("off", False), ("OFF", False)],
)  # fmt: skip
def test_every_spelling_of_a_flag(raw: str, value: bool) -> None:
    assert Settings.from_env({"REDIS_CLUSTER": raw}).redis_cluster is value


@pytest.mark.parametrize(
    ("name", "raw", "wanted"),
    [("REDIS_CLUSTER", "maybe", "1 or 0 (yes/no, true/false, on/off)"),
     ("REDIS_CLUSTER", "2", "1 or 0 (yes/no, true/false, on/off)"),
     ("MAX_JSON_DEPTH", "1.5", "a whole number"),
     ("HEAD_TIMEOUT_SECONDS", "1s", "a number")],
)  # fmt: skip
def test_a_value_of_the_wrong_kind_is_refused_in_words(name: str, raw: str, wanted: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: raw})
    assert str(refused.value) == f"{name} must be {wanted}, got {raw!r}"


RULE = "must be empty or at least 16 of A-Z a-z 0-9 - . _ ~ + / (then = padding)"


@pytest.mark.parametrize("name", ["WRITE_TOKEN", "READ_TOKEN"])
@pytest.mark.parametrize("token", ["a" * 15, "a" * 16 + " ", "a" * 16 + "!", "=" + "a" * 16])
def test_a_token_outside_the_rule_is_refused(name: str, token: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings(**{name.lower(): token})
    assert str(refused.value) == f"{name} {RULE}"


@pytest.mark.parametrize("name", ["WRITE_TOKEN", "READ_TOKEN"])
@pytest.mark.parametrize("token", ["", "a" * 16, "A-z0._~+/" * 2, "a" * 16 + "==", "x" * 200])
def test_a_token_within_the_rule_is_kept(name: str, token: str) -> None:
    assert getattr(Settings.from_env({name: token}), name.lower()) == token.strip()
