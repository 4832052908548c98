"""How a resource is kept in Redis: the stored format, the tag computed from it, and the Lua
scripts that read and change it in one atomic step. The scripts are built from the same
constants as the Python side, so the format has one definition.

A stored value is when the document expires (Unix milliseconds), ``SEPARATOR``, then its JSON.
Keeping the expiry in the value lets a read be one plain ``GET`` (document and remaining time
read together, atomic by nature) instead of a script that also asks for the key's TTL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .conditions import Condition
from .messages import RedisCall, Response

SEPARATOR = b" "


def stored_value(document_json: bytes, expires_at_ms: int) -> bytes:
    """The bytes kept in Redis for a document's JSON (``resources.stored_json``)."""
    return b"%d%s%s" % (expires_at_ms, SEPARATOR, document_json)


def split_stored(stored: bytes) -> tuple[int | None, bytes]:
    """The expiry (Unix milliseconds) and the JSON of a stored value. A value written before the
    expiry was kept in it is bare JSON: its expiry is only the key's TTL (``None`` here)."""
    if stored[:1] == b"{":
        return None, stored
    expires_at_ms, _, document = stored.partition(SEPARATOR)
    return int(expires_at_ms), document


def etag(stored: bytes) -> str:
    """The strong entity tag of a stored document: SHA-1 of its stored bytes, which hold its
    content and ``last_updated``. Redis computes the same (``redis.sha1hex``) to compare."""
    return f'"{hashlib.sha1(stored).hexdigest()}"'


@dataclass(frozen=True)
class Script:
    """A Lua script: Redis runs it as one atomic step, and one command carries it."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())

    def call(
        self,
        key: str,
        *args: Any,
        finish: Callable[[Any], Response | RedisCall],
        accepted: Response | None = None,
        unconfirmed: str | None = None,
    ) -> RedisCall:
        return RedisCall(
            ("EVALSHA", self.sha, 1, key, *args),
            finish,
            ("EVAL", self.source, 1, key, *args),
            accepted,
            unconfirmed,
        )


_LUA_SEPARATOR = SEPARATOR.decode()

# A value written before the expiry was kept in it: the document and its remaining time to live,
# read together. (Values written now are read with one plain GET.)
READ_BARE = Script("return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}")

# Preconditions, checked inside the script that writes, so nothing can change in between.
# A condition is '' (no header), '*' (any current document) or ',tag,tag,' (script_condition:
# SHA-1 hex of stored bytes, as etag computes them). Defines `failed(current)`.
_PRECONDITIONS = """
local function listed(condition, current)
  if condition == '*' then return current ~= false end
  if current == false then return false end
  return string.find(condition, ',' .. redis.sha1hex(current) .. ',', 1, true) ~= nil
end
local function failed(if_match, if_none_match)
  if if_match == '' and if_none_match == '' then return false end
  local current = redis.call('GET', KEYS[1])
  if if_match ~= '' and not listed(if_match, current) then return true end
  return if_none_match ~= '' and listed(if_none_match, current)
end
"""
# Replace document and expiry together, for a PUT with preconditions or ``?ttl=keep`` (a plain
# PUT is one ``SET ... PXAT ... GET``). ARGV: the document's JSON, its expiry (Unix ms), keep
# ('1': keep the current document's expiry), If-Match, If-None-Match, now (Unix ms: a value
# without its expiry in it keeps now + its PTTL). Returns {existed, expiry}, or {-1, 0} when a
# precondition failed.
WRITE = Script(
    _PRECONDITIONS
    + """
if failed(ARGV[4], ARGV[5]) then return {-1, 0} end
local current = redis.call('GET', KEYS[1])
local expires = ARGV[2]
if current and ARGV[3] == '1' then
  local kept = string.match(current, '^(%d+)"""
    + _LUA_SEPARATOR
    + """')
  if kept then
    expires = kept
  else
    local left = redis.call('PTTL', KEYS[1])
    if left > 0 then expires = tostring(tonumber(ARGV[6]) + left) end
  end
end
redis.call('SET', KEYS[1], expires .. '"""
    + _LUA_SEPARATOR
    + """' .. ARGV[1], 'PXAT', expires)
return {current and 1 or 0, tonumber(expires)}
"""
)
# DELETE with preconditions. ARGV: If-Match, If-None-Match. Returns 1, 0 (nothing there) or -1.
DELETE_IF = Script(
    _PRECONDITIONS
    + """
if failed(ARGV[1], ARGV[2]) then return -1 end
return redis.call('DEL', KEYS[1])
"""
)
PRECONDITION_FAILED = -1


def script_condition(condition: Condition | None, *, weak: bool) -> str:
    """If-Match (``weak=False``) or If-None-Match as the scripts take it (see _PRECONDITIONS)."""
    if condition is None:
        return ""
    if condition.any:
        return "*"
    # If-Match compares strongly: a weak tag never matches. If-None-Match compares weakly.
    listed = condition.strong | condition.weak if weak else condition.strong
    return "," + ",".join(sorted(tag for tag in listed if _is_sha1_hex(tag))) + ","


def _is_sha1_hex(tag: str) -> bool:
    return len(tag) == 40 and all(c in "0123456789abcdef" for c in tag)
