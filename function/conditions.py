"""If-Match and If-None-Match as RFC 9110 §13.1 defines them, read the same way by every adapter.

A field is ``*`` or a comma-separated list of entity-tags (``"opaque"`` or ``W/"opaque"``), with
empty list elements ignored. A field sent on several lines is one list (RFC 9110 §5.3): the
adapters hand it over joined with commas, so ``*`` on one line and a tag on another is a list
holding ``*``, which is malformed. Anything malformed (an unquoted tag, ``*`` in a list, an empty
field) is refused with 400: a condition read loosely is a create-only guard bypassed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import BadRequest

# etagc = %x21 / %x23-7E / obs-text: any visible character but the double quote.
_TAG = r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"'
_UNNAMED_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_LIST = re.compile(rf"[ \t,]*{_UNNAMED_TAG}(?:[ \t]*,[ \t,]*{_UNNAMED_TAG})*[ \t,]*")
_TAGS = re.compile(_TAG)


@dataclass(frozen=True)
class Condition:
    """One conditional header field: ``any`` for ``*``, else its strong and weak opaque tags."""

    any: bool = False
    strong: frozenset[str] = frozenset()
    weak: frozenset[str] = frozenset()

    def names(self, opaque: str, *, weakly: bool) -> bool:
        """Whether the field names a current document whose tag is ``opaque``: If-Match compares
        strongly (a weak tag never matches), If-None-Match weakly (RFC 9110 §8.8.3.2)."""
        if self.any:
            return True
        return opaque in self.strong or (weakly and opaque in self.weak)


def parse(name: str, value: str | None) -> Condition | None:
    """The field ``name`` (for the error message) with ``value``; None when it was not sent."""
    if value is None:
        return None
    if value.strip(" \t") == "*":
        return Condition(any=True)
    if not _LIST.fullmatch(value):
        raise BadRequest(
            f'{name} must be "*" or a list of quoted entity-tags', code="invalid_precondition"
        )
    strong: set[str] = set()
    weak: set[str] = set()
    for weak_prefix, opaque in _TAGS.findall(value):
        (weak if weak_prefix else strong).add(opaque)
    return Condition(strong=frozenset(strong), weak=frozenset(weak))
