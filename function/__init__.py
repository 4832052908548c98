"""JSON resources in Redis behind one HTTP function.

The core (settings, errors, resources, service, store) knows the resource rules and Redis and
imports no web framework; ``asgi`` and ``wsgi`` adapt it to functions-framework's two modes, and
``main`` is the source file functions-framework loads. ``func`` adapts it to Knative func's own
Python runtime, whose scaffolding imports ``new`` from this package.
"""

from .func import new

__all__ = ["new"]
