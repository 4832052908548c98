"""JSON resources in Redis behind one HTTP function.

The core (settings, errors, resources, service, store) knows the resource rules and Redis and
imports no web framework; ``asgi`` and ``wsgi`` adapt it to functions-framework's two modes, and
``main`` is the source file functions-framework loads. ``func`` adapts it to Knative func's own
Python runtime, whose scaffolding imports ``new`` from this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .func import Function

__all__ = ["new"]


def new() -> Function:
    """func-python's constructor (``function.func.new``), imported only when func calls it: the
    other entry points and ``make run``'s settings check import this package without it."""
    from .func import new as make

    return make()
