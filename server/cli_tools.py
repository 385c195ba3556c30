"""One CLI command per tool, built from its ToolSpec when the command runs (a listing never imports a tool).

Arguments map onto the tool's input model: the fields in `ToolSpec.positional` are positional,
every other field is `--field-name`; lists are comma-separated or repeated, objects are JSON.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import click
import typer
from pydantic_core import PydanticUndefined

from alloop.cli_render import ROUND_VIEWS
from alloop.tools.base import ToolSpec
from alloop.tools.errors import AlloopError
from alloop.tools.registry import ToolEntry
from alloop.tools.run.rundir import ROOT_ENV

RootOption = Annotated[Path, typer.Option("--root", envvar=ROOT_ENV, help="Folder holding the runs.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
WideOption = Annotated[bool, typer.Option("--wide", help="Show every column of the round table.")]


def tool_command(entry: ToolEntry, name: str, panel: str, help_text: str | None = None) -> click.Command:
    """The click command for a tool: its spec is imported here, when the command is about to run."""
    spec = entry.load()
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(name, help=help_text or spec.description, short_help=entry.summary, rich_help_panel=panel)(
        command_for(spec)
    )
    return typer.main.get_command(app)


def command_for(spec: ToolSpec) -> Any:
    """A Typer command function whose signature mirrors the tool's input model."""
    fields = spec.input_model.model_fields
    kinds: dict[str, str] = {}
    params: list[inspect.Parameter] = []
    for name in spec.positional:
        field = fields[name]
        py_type, kind = _cli_type(field.annotation)
        kinds[name] = kind
        argument = typer.Argument(help=field.description)
        params.append(
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[py_type, argument])
        )
    for name, field in fields.items():
        if name in spec.positional:
            continue
        py_type, kind = _cli_type(field.annotation)
        kinds[name] = kind
        required = field.default is PydanticUndefined and field.default_factory is None
        default = ... if required else (field.default if field.default is not PydanticUndefined else None)
        if kind in ("list", "json"):
            default = ... if required else None
        flag = f"--{name.replace('_', '-')}"
        option = typer.Option(f"{flag}/--no-{flag[2:]}" if py_type is bool else flag, help=field.description)
        annotation = Annotated[py_type if required or py_type is bool else py_type | None, option]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
    keyword = inspect.Parameter.KEYWORD_ONLY
    params.append(inspect.Parameter("root", keyword, default=Path("runs"), annotation=RootOption))
    params.append(inspect.Parameter("as_json", keyword, default=False, annotation=JsonOption))
    if spec.name in ROUND_VIEWS:
        params.append(inspect.Parameter("wide", keyword, default=False, annotation=WideOption))

    def command(**kwargs: Any) -> None:
        root = kwargs.pop("root")
        as_json = kwargs.pop("as_json")
        wide = kwargs.pop("wide", False)
        arguments = {k: _convert(kinds[k], v) for k, v in kwargs.items() if v is not None}
        from alloop import cli  # looked up at call time: the one run_tool every command goes through

        cli.run_tool(spec, arguments, root, as_json, wide=wide)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = spec.description
    command.__name__ = spec.name
    return command


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _cli_type(annotation: Any) -> tuple[Any, str]:
    """(type Typer parses, how to convert it) for a model field's annotation."""
    base = _strip_optional(annotation)
    origin = typing.get_origin(base)
    if origin is Literal or base in (int, float, bool, str):
        return base, "plain"
    if origin is list:
        return list[str], "list"
    return str, "json"


def _convert(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "list":  # repeated flags, each comma-separated: --labels a,b --labels c
        values = value if isinstance(value, list | tuple) else [value]
        return [part.strip() for item in values for part in str(item).split(",") if part.strip()]
    if kind == "json":
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise AlloopError(f"expected JSON, got {value!r} ({exc.msg})") from exc
    return value
