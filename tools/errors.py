"""Domain errors: what went wrong, where, and what to do about it.

Every failure a caller can fix is an `AlloopError`. The MCP adapter turns it into a
`ToolError` and the CLI into a red message and exit code 2; anything else is a bug.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import ValidationError


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


def describe_validation(exc: ValidationError, where: str | None = None, first_only: bool = False) -> str:
    """Pydantic's errors as one line that says what to fix: `where: field 'a.b': message; ...`.

    `first_only` names just the first problem, as a file's row-by-row checks do.
    """
    errors = exc.errors()[:1] if first_only else exc.errors()
    parts = [
        f"field {'.'.join(str(p) for p in e['loc'])!r}: {e['msg']}" if e["loc"] else e["msg"] for e in errors
    ]
    text = "; ".join(parts)
    return f"{where}: {text}" if where else text
