"""The failures the command reports as one line and an exit code, never as a traceback."""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class LoadTestError(Exception):
    """A problem the user can fix; ``str()`` is the whole message: what happened and what to do."""

    exit_code = EXIT_FAILURE


class UsageError(LoadTestError):
    """Bad command-line arguments, profile file or request mix."""

    exit_code = EXIT_USAGE


class TargetUnreachable(LoadTestError):
    """The URL under test does not accept connections."""


class KubernetesError(LoadTestError):
    """The Knative state cannot be read: no kubeconfig, API down, access denied, not found."""
