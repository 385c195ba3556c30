"""The `alloop` command: one subcommand per tool, generated from the same ToolSpecs as the server.

Arguments map onto the tool's input model: the fields in `ToolSpec.positional` are positional,
every other field is `--field-name`; lists are comma-separated or repeated, objects are JSON. Output is a
readable summary, or the tool's JSON with `--json`.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined
from rich.console import Console
from rich.table import Table

from alloop import __version__
from alloop.tools.base import ToolContext, ToolSpec
from alloop.tools.errors import AlloopError
from alloop.tools.run.rundir import ROOT_ENV, RunRoot

app = typer.Typer(
    name="alloop",
    help="Assisted active learning: run bounded labeling rounds over a run directory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(width=None if sys.stdout.isatty() else 160)  # pipes and CI logs get full-width tables
err = Console(stderr=True)

RootOption = Annotated[Path, typer.Option("--root", envvar=ROOT_ENV, help="Folder holding the runs.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


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


def _convert(kind: str, value: Any, annotation: Any) -> Any:
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


def render(result: BaseModel, as_json: bool) -> None:
    """Print a tool's result: JSON for scripts, a compact summary for people."""
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    data = result.model_dump(mode="json")
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.print(table_of(key, value))
        elif isinstance(value, dict | list):
            out.print(f"[bold]{key}[/]: {json.dumps(value, ensure_ascii=False)}")
        else:
            out.print(f"[bold]{key}[/]: {value}")


def table_of(title: str, rows: list[dict[str, Any]]) -> Table:
    columns = [  # columns empty in every row (say, judge_* without a judge) are left out
        k for k in dict.fromkeys(k for row in rows for k in row) if any(row.get(k) not in (None, "") for row in rows)
    ]
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def run_tool(
    spec: ToolSpec, arguments: dict[str, Any], root: Path, as_json: bool = False, show: bool = True
) -> BaseModel:
    """Call a tool with a progress bar; a fixable failure prints its message and exits 2."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task(spec.name, total=None)

        def progress(done: float, total: float | None, message: str) -> None:
            bar.update(task, completed=done, total=total, description=message[:60])

        ctx = ToolContext(root=RunRoot(root), progress=progress, inputs_anywhere=True)
        try:
            result = spec.call(arguments, ctx)
        except AlloopError as exc:
            bar.stop()
            err.print(f"error: {exc}", style="red", markup=False, highlight=False)
            raise typer.Exit(2) from exc
        except ValidationError as exc:
            bar.stop()
            from alloop.app import validation_message

            err.print(f"error: {validation_message(exc)}", style="red", markup=False, highlight=False)
            raise typer.Exit(2) from exc
    if show:
        render(result, as_json)
    return result


def command_for(spec: ToolSpec) -> Any:
    """A Typer command function whose signature mirrors the tool's input model."""
    fields = spec.input_model.model_fields
    kinds: dict[str, tuple[str, Any]] = {}
    params: list[inspect.Parameter] = []
    for name in spec.positional:
        field = fields[name]
        py_type, kind = _cli_type(field.annotation)
        kinds[name] = (kind, field.annotation)
        argument = typer.Argument(help=field.description)
        params.append(
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[py_type, argument])
        )
    for name, field in fields.items():
        if name in spec.positional:
            continue
        py_type, kind = _cli_type(field.annotation)
        kinds[name] = (kind, field.annotation)
        required = field.default is PydanticUndefined and field.default_factory is None
        default = ... if required else (field.default if field.default is not PydanticUndefined else None)
        if kind in ("list", "json"):
            default = ... if required else None
        flag = f"--{name.replace('_', '-')}"
        option = typer.Option(f"{flag}/--no-{flag[2:]}" if py_type is bool else flag, help=field.description)
        annotation = Annotated[py_type if required or py_type is bool else py_type | None, option]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
    params.append(
        inspect.Parameter("root", inspect.Parameter.KEYWORD_ONLY, default=Path("runs"), annotation=RootOption)
    )
    params.append(inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOption))

    def command(**kwargs: Any) -> None:
        root = kwargs.pop("root")
        as_json = kwargs.pop("as_json")
        try:
            arguments = {k: _convert(kinds[k][0], v, kinds[k][1]) for k, v in kwargs.items() if v is not None}
        except AlloopError as exc:
            err.print(f"error: {exc}", style="red", markup=False, highlight=False)
            raise typer.Exit(2) from exc
        run_tool(spec, arguments, root, as_json)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = spec.description
    command.__name__ = spec.name
    return command


def _register_tools() -> None:
    from alloop.tools.registry import TOOLS

    for spec in TOOLS:
        name = spec.cli_name or spec.name.replace("_", "-")
        fn = command_for(spec)
        app.command(name, help=spec.description, short_help=spec.description.split("\n")[0])(fn)
        for alias in spec.extra.get("cli_aliases", []):
            app.command(alias, help=f"Same as `alloop {name}`.")(fn)


@app.command("serve")
def serve(
    root: RootOption = Path("runs"),
    transport: Annotated[Literal["stdio", "http"], typer.Option(help="stdio, or streamable HTTP.")] = "stdio",
    host: Annotated[str, typer.Option(help="HTTP only: address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP only: port.")] = 8765,
) -> None:
    """Start the MCP server (stdio by default; `--transport http` for streamable HTTP)."""
    from alloop.app import create_server

    server = create_server(root)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)


@app.command("version")
def version() -> None:
    """Print alloop's version."""
    out.print(__version__)


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    _register_tools()
    from alloop.cli_extra import mount

    mount(app)
    app()
