"""If-Match / If-None-Match parsing (RFC 9110 §13.1) and the Redis error table, in-process."""

from __future__ import annotations

import pytest
from redis.exceptions import (
    BusyLoadingError,
    ConnectionError,
    MaxConnectionsError,
    NoScriptError,
    ResponseError,
    TimeoutError,
)

from function import conditions, redis_errors
from function.conditions import Condition
from function.errors import ApiError, excerpt
from function.redis_errors import Failure


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("*", Condition(any=True)), (" * ", Condition(any=True)),
     ('"a"', Condition(strong=frozenset({"a"}))),
     ('W/"a", "b"', Condition(strong=frozenset({"b"}), weak=frozenset({"a"}))),
     ('"a,b"', Condition(strong=frozenset({"a,b"}))),
     (',"a" ,, "b",', Condition(strong=frozenset({"a", "b"}))),
     ('""', Condition(strong=frozenset({""})))],
)  # fmt: skip
def test_well_formed_conditions(value: str, parsed: Condition) -> None:
    assert conditions.parse("If-Match", value) == parsed


@pytest.mark.parametrize(
    "value",
    ["", ",", "a", '*, "a"', '"a", *', "**", '"a" "b"', '"a', 'w/"a"', 'W/ "a"', '"a"b',
     "X*", "*\x0c", "\x0b*"],  # only spaces and tabs are white space around "*"
)  # fmt: skip
def test_malformed_conditions_are_refused(value: str) -> None:
    with pytest.raises(ApiError) as refused:
        conditions.parse("If-None-Match", value)
    assert (refused.value.status, refused.value.code) == (400, "invalid_precondition")
    assert "If-None-Match" in refused.value.message


def test_no_field_is_no_condition() -> None:
    assert conditions.parse("If-Match", None) is None


def test_strong_and_weak_comparison() -> None:
    parsed = conditions.parse("If-Match", 'W/"weak", "strong"')
    assert parsed is not None
    assert parsed.names("strong", weakly=False) and parsed.names("strong", weakly=True)
    assert not parsed.names("weak", weakly=False) and parsed.names("weak", weakly=True)
    assert not parsed.names("other", weakly=True)
    assert Condition(any=True).names("anything", weakly=False)


def test_excerpt_cuts_long_input() -> None:
    assert excerpt("x" * 40) == "x" * 40
    assert excerpt("y" * 41) == "y" * 40 + "... (41 characters)"


@pytest.mark.parametrize(
    ("reply", "code", "text"),
    [("wrong number of arguments", "", "wrong number of arguments"),
     ("ERR unknown command", "ERR", "ERR unknown command"),
     ("NOSCRIPT No matching script", "NOSCRIPT", "No matching script")],
)  # fmt: skip
def test_an_error_reply_keeps_its_text_and_code(reply: str, code: str, text: str) -> None:
    """An error reply without a code (the first word in capitals) is the whole text."""
    error = redis_errors.reply_error(reply)
    assert (str(error), redis_errors.error_code(error)) == (text, code)


@pytest.mark.parametrize(
    ("error", "failure"),
    [(ResponseError("LOADING Redis is loading", status_code="LOADING"), Failure.UNAVAILABLE),
     (BusyLoadingError("Redis is loading", status_code="LOADING"), Failure.UNAVAILABLE),
     (redis_errors.reply_error("MASTERDOWN Link with MASTER is down"), Failure.UNAVAILABLE),
     (redis_errors.reply_error("READONLY You can't write"), Failure.UNAVAILABLE),
     (redis_errors.reply_error("MOVED 3999 127.0.0.1:6381"), Failure.UNAVAILABLE),
     (redis_errors.reply_error("ASK 3999 127.0.0.1:6381"), Failure.UNAVAILABLE),
     (redis_errors.reply_error("BUSY Redis is busy running a script"), Failure.UNAVAILABLE),
     (redis_errors.reply_error("ERR max number of clients reached"), Failure.UNAVAILABLE),
     (ConnectionError("max number of clients reached", status_code="ERR"), Failure.UNAVAILABLE),
     (redis_errors.reply_error("ERR Error running script (call to f_1): @user_script:1: "
                               "@user_script: 1: -READONLY You can't write"), Failure.UNAVAILABLE),
     (redis_errors.reply_error("OOM command not allowed"), Failure.FULL),
     (redis_errors.QueueFull("too many"), Failure.OVERLOADED),
     (MaxConnectionsError("too many"), Failure.OVERLOADED),
     (redis_errors.NotSent("refused"), Failure.UNAVAILABLE),
     (ConnectionError("Connection closed by server."), Failure.UNCONFIRMED),
     (TimeoutError("Timeout reading"), Failure.UNCONFIRMED),
     (redis_errors.reply_error("WRONGTYPE Operation against a key"), None),
     (redis_errors.reply_error("ERR unknown command"), None),
     (redis_errors.reply_error("NOPERM no permissions"), None),
     (ValueError("not Redis"), None)],
)  # fmt: skip
def test_the_redis_error_table(error: Exception, failure: Failure | None) -> None:
    assert redis_errors.classify(error) is failure


def test_reply_errors_keep_redis_code() -> None:
    noscript = redis_errors.reply_error("NOSCRIPT No matching script")
    assert isinstance(noscript, NoScriptError) and str(noscript) == "No matching script"
    wrong = redis_errors.reply_error("WRONGTYPE Operation against a key")
    assert type(wrong) is ResponseError and str(wrong) == "WRONGTYPE Operation against a key"
    assert redis_errors.error_code(wrong) == "WRONGTYPE"
    assert redis_errors.error_code(redis_errors.reply_error("lower case text")) == ""
    assert redis_errors.describe(noscript) == "NOSCRIPT No matching script"
    assert redis_errors.describe(wrong) == "WRONGTYPE Operation against a key"


@pytest.mark.parametrize(
    ("error", "code"),
    [(ResponseError("WRONGTYPE Operation against a key"), "WRONGTYPE"),
     (ResponseError("OOM command not allowed"), "OOM"), (ResponseError("BUSYKEY"), "BUSYKEY"),
     (ResponseError("lower case text"), ""), (ResponseError("Mixed Case"), ""),
     (ConnectionError("Error running script (call to f_1): -READONLY You can't write"), ""),
     (TimeoutError("Timeout reading from socket"), "")],
)  # fmt: skip
def test_the_code_of_an_error_redis_py_made_without_one(error: Exception, code: str) -> None:
    """redis-py's parser keeps the code only for the replies it has a class for: for the rest,
    the code is the reply's first word, in capitals; errors that are not replies have none."""
    assert getattr(error, "status_code", None) is None
    assert redis_errors.error_code(error) == code
