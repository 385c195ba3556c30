"""The `alloop` command: one subcommand per tool, generated from the same ToolSpecs as the server.

Arguments map onto the tool's input model: the fields in `ToolSpec.positional` are positional,
every other field is `--field-name`; lists are comma-separated or repeated, objects are JSON. Output is a
readable summary, or the tool's JSON with `--json`. Every command, the area CLIs' too, reports a
failure the user can fix the same way: one red line on stderr and exit code 2.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import click
import typer
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from alloop import __version__
from alloop.cli_agreement import agreement_command
from alloop.cli_glmm import app as glmm_app
from alloop.tools.base import ProgressFn, ToolContext, ToolSpec
from alloop.tools.errors import AlloopError, InputError, describe_validation, unexpected_failure
from alloop.tools.registry import TOOLS, tool_named
from alloop.tools.report.datasets import demo_answers, write_demo_files
from alloop.tools.run.rundir import ROOT_ENV, RunRoot
from alloop.tools.secrets import install_log_filter, scrub


class _Commands(TyperGroup):
    """alloop's command group: any failure in a command below it ends in `fail`.

    A fixable one says what to fix; anything else (a bug) names the command and what failed, and
    its traceback goes to the log at debug level ($ALLOOP_LOG_LEVEL=DEBUG shows it).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AlloopError as exc:
            fail(exc)
        except ValidationError as exc:
            fail(f"invalid arguments: {describe_validation(exc)}")
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, typer.Exit, typer.Abort):
            raise  # usage errors, --help and typer.Exit (not a click class in typer ≥ 0.29): the way out
        except Exception as exc:
            command = ctx.invoked_subcommand or "alloop"
            log.debug("%s failed unexpectedly", command, exc_info=True)
            fail(unexpected_failure(command, exc, log=f"the log ({LOG_LEVEL_ENV}=DEBUG shows it)"))


app = typer.Typer(
    cls=_Commands,
    name="alloop",
    help="Assisted active learning: run bounded labeling rounds over a run directory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
log = logging.getLogger("alloop.cli")
LOG_LEVEL_ENV = "ALLOOP_LOG_LEVEL"
out = Console(width=None if sys.stdout.isatty() else 160)  # pipes and CI logs get full-width tables
err = Console(stderr=True)

RootOption = Annotated[Path, typer.Option("--root", envvar=ROOT_ENV, help="Folder holding the runs.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def fail(message: object) -> NoReturn:
    """Report a failure the user can fix: one red line on stderr (unwrapped, for logs and grep), exit code 2."""
    err.print(f"error: {scrub(str(message))}", style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def progress_bar(label: str) -> Iterator[ProgressFn]:
    """A progress bar on stderr that vanishes when the work ends, and the ProgressFn that moves it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def progress(done: float, total: float | None, message: str) -> None:
            bar.update(task, completed=done, total=total, description=message[:60])

        yield progress


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


def render(result: BaseModel, as_json: bool) -> None:
    """Print a tool's result: JSON for scripts, a compact summary for people.

    An output model may define `summary() -> str`, a text written for reading; it replaces the
    field-by-field listing, which suits flat results but not nested ones.
    """
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    summary = getattr(result, "summary", None)
    if callable(summary):
        typer.echo(summary())
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
    """Call a tool with a progress bar and print its result."""
    with progress_bar(spec.name) as progress:
        result = spec.call(arguments, ToolContext(root=RunRoot(root), progress=progress, inputs_anywhere=True))
    if show:
        render(result, as_json)
    return result


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
    params.append(
        inspect.Parameter("root", inspect.Parameter.KEYWORD_ONLY, default=Path("runs"), annotation=RootOption)
    )
    params.append(inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOption))

    def command(**kwargs: Any) -> None:
        root = kwargs.pop("root")
        as_json = kwargs.pop("as_json")
        arguments = {k: _convert(kinds[k], v) for k, v in kwargs.items() if v is not None}
        run_tool(spec, arguments, root, as_json)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = spec.description
    command.__name__ = spec.name
    return command


@app.command("serve")
def serve(
    root: RootOption = Path("runs"),
    transport: Annotated[Literal["stdio", "http"], typer.Option(help="stdio, or streamable HTTP.")] = "stdio",
    host: Annotated[str, typer.Option(help="HTTP only: address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP only: port.")] = 8765,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="HTTP only: accept requests without the bearer token (not advised).")
    ] = False,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="HTTP only: allow a --host other machines can reach.")
    ] = False,
) -> None:
    """Start the MCP server (stdio by default; `--transport http` for streamable HTTP).

    Over HTTP every request must carry `Authorization: Bearer <token>`: $ALLOOP_HTTP_TOKEN, or a token
    made at start and printed once to stderr.
    """
    from alloop.app import create_server
    from alloop.http_auth import check_bind, server_token, warn_no_auth

    if transport == "stdio":
        create_server(root).run("stdio")
        return
    check_bind(host, allow_remote)
    if no_auth:
        warn_no_auth()
    token = None if no_auth else server_token()
    create_server(root, http_token=token).run("streamable-http", host=host, port=port)


@app.command("version")
def version() -> None:
    """Print alloop's version."""
    out.print(__version__)


@app.command("demo")
def demo(
    root: RootOption = Path("runs"),
    run: Annotated[str, typer.Option(help="Run name.")] = "demo",
    rounds: Annotated[int, typer.Option(help="Training rounds.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Items labeled per round.")] = 20,
    strategy: Annotated[str, typer.Option(help="select_batch strategy.")] = "typiclust",
    fresh: Annotated[bool, typer.Option("--fresh/--keep", help="Replace an existing run of that name.")] = True,
) -> None:
    """The main job: a real loop on the BBC News corpus with a simulated annotator from gold labels."""
    runs = RunRoot(root)
    if runs.exists(run) and not fresh:
        raise InputError(f"run {run!r} exists under {runs.path}; pass --fresh to replace it")
    runs.remove(run)
    data = write_demo_files(runs.path / f".{run}-data")
    run_tool(tool_named("interview_spec"), demo_answers(run, data, rounds, batch_size, strategy), runs.path, show=False)
    loop = {"run": run, "gold": str(data["gold"]), "rounds": rounds, "batch_size": batch_size}
    result = run_tool(tool_named("simulate"), loop, runs.path, show=False)
    run_tool(tool_named("write_report"), {"run": run}, runs.path, show=False)
    target = runs.run(run)
    out.print(table_of(f"{run}: rounds (gold = held-out human gold)", result.rounds))
    out.print(f"Run directory: {target.path}\nReport: {target.report_path}")


def _mount() -> None:
    """Every other command, in one place: one per tool (and its aliases), then the area CLIs."""
    for spec in TOOLS:
        name = spec.name.replace("_", "-")
        command = command_for(spec)
        app.command(name, help=spec.description, short_help=spec.description.split("\n")[0])(command)
        for alias in spec.cli_aliases:
            app.command(alias, help=f"Same as `alloop {name}`.")(command)
    app.command("agreement")(agreement_command)
    app.add_typer(glmm_app, name="glmm")


_mount()


def main() -> None:
    level = logging.getLevelNamesMapping().get(os.environ.get(LOG_LEVEL_ENV, "").upper(), logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    install_log_filter()  # no secret in a log line or traceback, for every command and the server
    app()
