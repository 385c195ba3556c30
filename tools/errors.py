"""Domain errors: what went wrong, where, and what to do about it.

Every failure a caller can fix is an `AlloopError`. The MCP adapter turns it into a
`ToolError` and the CLI into a red message and exit code 2; anything else is a bug.
"""

from __future__ import annotations


class AlloopError(Exception):
    """A failure the caller can fix; the message says what to fix."""


class InputError(AlloopError):
    """An argument, file row or field is invalid."""


class RunNotFoundError(AlloopError):
    """The named run does not exist under the root."""


class PathEscapeError(AlloopError):
    """A run name or path would leave the run root."""


class StateError(AlloopError):
    """The run is not in a state where this step makes sense (say which step comes first)."""


class LockedError(AlloopError):
    """Another process holds the run's lock."""


class ServiceError(AlloopError):
    """A remote service (Argilla, JATOS, a judge API) could not be reached or refused."""
