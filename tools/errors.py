"""Domain errors: what went wrong, where, and what to do about it.

Every failure a caller can fix is an `AlloopError`. The adapters turn it into a `ToolError`
(MCP) or a red line and exit code 2 (CLI); anything else is a bug, which both adapters report
with `unexpected_failure` while the traceback goes to the log.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

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


def describe_validation(
    exc: ValidationError,
    where: str | None = None,
    first_only: bool = False,
    model: type[BaseModel] | None = None,
    name: str | None = None,
) -> str:
    """Pydantic's errors as one line that says what to fix: `where: field 'a.b': message; ...`.

    `first_only` names just the first problem, as a file's row-by-row checks do. With the `model`
    that was validated, an unknown field lists the valid ones and suggests the closest, so a
    misspelled argument is never silently lost; with the tool's `name`, a top-level one is an
    "unknown argument ... for <tool>".
    """
    errors = exc.errors()[:1] if first_only else exc.errors()
    text = "; ".join(_describe_error(e, model, name) for e in errors)
    return f"{where}: {text}" if where else text


def _describe_error(error: Any, model: type[BaseModel] | None, name: str | None) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden" and loc:
        valid = _fields_at(model, loc[:-1]) if model is not None else None
        if len(loc) == 1 and name:
            return unknown_argument(str(loc[0]), valid, name)
        return unknown_field(".".join(str(p) for p in loc), valid)
    if not loc:
        return error["msg"]
    return f"field {'.'.join(str(p) for p in loc)!r}: {error['msg']}"


def unknown_argument(given: str, valid: Iterable[str] | None, tool: str | None = None) -> str:
    """`unknown argument 'batchsize' for select_batch; did you mean 'batch_size'? valid: run, ...`."""
    owner = f" for {tool}" if tool else ""
    return f"unknown argument {given!r}{owner}{_suggest(given, valid)}"


def unknown_field(path: str, valid: Iterable[str] | None) -> str:
    """An unknown key inside an object argument, with its valid siblings."""
    return f"unknown field {path!r}{_suggest(path.rsplit('.', 1)[-1], valid)}"


def _suggest(given: str, valid: Iterable[str] | None) -> str:
    if valid is None:
        return ""
    names = list(valid)
    close = difflib.get_close_matches(given, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    return f"{hint} valid: {', '.join(names)}"


def _fields_at(model: type[BaseModel], path: Sequence[str | int]) -> list[str] | None:
    """The field names of the model found at `path` inside `model` (None where it cannot be told)."""
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue  # a list position: the items' model is already in hand
        models = _models_in(current)
        if not models:
            return None
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        if fields:
            current = fields[0].annotation
            continue
        tagged = [m for m in models if part in (_tag_of(m), m.__name__)]  # a union's member, by tag or class
        if not tagged:
            return None
        current = tagged[0]
    models = _models_in(current)
    return list(models[0].model_fields) if len(models) == 1 else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation may hold: itself, or those inside Optional, list, dict, Annotated, a union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None:
        return []
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models_in(args[0])
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        return [m for arg in args for m in _models_in(arg)]
    if origin is dict:
        return _models_in(args[1]) if len(args) == 2 else []
    return []


def _tag_of(model: type[BaseModel]) -> str | None:
    """The literal tag a member of a discriminated union carries (its first Literal field)."""
    for field in model.model_fields.values():
        if typing.get_origin(field.annotation) is typing.Literal:
            values = typing.get_args(field.annotation)
            return str(values[0]) if len(values) == 1 else None
    return None


def unexpected_failure(tool: str, exc: BaseException, log: str = "the server log") -> str:
    """A bug's report for the caller: which tool, what failed, what to do; never the traceback."""
    from alloop.tools.secrets import scrub  # on use: the contract module stays import-light

    detail = scrub(" ".join(f"{type(exc).__name__}: {exc}".split()))
    if len(detail) > 300:
        detail = detail[:297] + "..."
    return (
        f"{tool} failed unexpectedly ({detail}). Check the arguments you gave (run name, file paths, "
        f"values) and where the run stands with `status`; if they are right, this is a bug in alloop: "
        f"retrying will not help, the traceback is in {log}."
    )
