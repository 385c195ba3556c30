"""The `alloop` command: one subcommand per tool, generated from the same ToolSpecs as the server.

The command list is known without importing any tool: the registry names each tool, its module and
its one-sentence summary, and a tool's command is built from its spec when it is about to run
(cli_tools). Help is grouped in panels: setup, loop, destinations, analysis. Output is a readable
summary, or the tool's JSON with `--json` (cli_render). Every command, the area CLIs' too, reports
a failure the user can fix the same way: one red line on stderr and exit code 2.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import click
import typer
from typer.core import TyperGroup

from alloop import __version__
from alloop.cli_console import err, fail, out
from alloop.cli_render import render
from alloop.tools.registry import ENTRIES, ToolEntry

if TYPE_CHECKING:
    from pydantic import BaseModel

    from alloop.tools.base import ToolSpec

__all__ = ["app", "fail", "main", "progress_bar", "render", "run_tool"]

PANELS = {"setup": "Setup", "loop": "Loop", "destinations": "Destinations", "analysis": "Analysis"}
log = logging.getLogger("alloop.cli")
LOG_LEVEL_ENV = "ALLOOP_LOG_LEVEL"


class _Listed(click.Command):
    """A command as the help listing shows it (name, one sentence, panel); `load` builds the real one."""

    def __init__(self, name: str, short_help: str, panel: str, load: Callable[[], click.Command]) -> None:
        super().__init__(name, short_help=short_help, help=short_help)
        self.rich_help_panel = panel
        self.load = load


class _Commands(TyperGroup):
    """alloop's command group: commands listed without importing them, and any failure below ends in `fail`.

    A fixable failure says what to fix; anything else (a bug) names the command and what failed, and
    its traceback goes to the log at debug level ($ALLOOP_LOG_LEVEL=DEBUG shows it).
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for listed in _listed_commands():
            self.commands.setdefault(listed.name or "", listed)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Listed) and name is not None:
            command = self.commands[name] = command.load()
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, typer.Exit, typer.Abort):
            raise  # usage errors, --help and typer.Exit (not a click class in typer ≥ 0.29): the way out
        except Exception as exc:
            from pydantic import ValidationError

            from alloop.tools.errors import AlloopError, describe_validation, unexpected_failure

            if isinstance(exc, AlloopError):
                fail(exc)
            if isinstance(exc, ValidationError):
                fail(f"invalid arguments: {describe_validation(exc)}")
            command = ctx.invoked_subcommand or "alloop"
            log.debug("%s failed unexpectedly", command, exc_info=True)
            fail(unexpected_failure(command, exc, log=f"the log ({LOG_LEVEL_ENV}=DEBUG shows it)"))


def _listed_commands() -> list[_Listed]:
    """Every tool's command and alias, then the area CLIs: names and help only, nothing imported."""
    listed: list[_Listed] = []
    for entry in ENTRIES:
        name, panel = entry.name.replace("_", "-"), PANELS[entry.area]
        listed.append(_Listed(name, entry.summary, panel, _tool_loader(entry, name, panel)))
        for alias in entry.aliases:
            same = f"Same as `alloop {name}`."
            listed.append(_Listed(alias, same, panel, _tool_loader(entry, alias, panel, same)))
    agreement = "Agreement among coders in a file, with a bootstrap interval over units."
    listed.append(_Listed("agreement", agreement, PANELS["analysis"], _agreement_command))
    glmm = "Mixed-effects models (lme4-compatible Laplace fits) for human-judgment data."
    listed.append(_Listed("glmm", glmm, PANELS["analysis"], _glmm_group))
    track = "Log the run's rounds, selected batches and report figures to Weights & Biases."
    listed.append(_Listed("track", track, PANELS["analysis"], _track_command))
    return listed


def _tool_loader(entry: ToolEntry, name: str, panel: str, help_text: str | None = None) -> Callable[[], click.Command]:
    def load() -> click.Command:
        from alloop.cli_tools import tool_command

        return tool_command(entry, name, panel, help_text)

    return load


def _agreement_command() -> click.Command:
    from alloop.cli_agreement import agreement_command

    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command("agreement", rich_help_panel=PANELS["analysis"])(agreement_command)
    return typer.main.get_command(single)


def _track_command() -> click.Command:
    from alloop.cli_track import track_command

    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command("track", rich_help_panel=PANELS["analysis"])(track_command)
    return typer.main.get_command(single)


def _glmm_group() -> click.Command:
    from alloop.cli_glmm import app as glmm_app

    group = typer.main.get_command(glmm_app)
    group.name = "glmm"
    return group


app = typer.Typer(
    cls=_Commands,
    name="alloop",
    help="Assisted active learning: run bounded labeling rounds over a run directory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
RootOption = Annotated[Path, typer.Option("--root", envvar="ALLOOP_ROOT", help="Folder holding the runs.")]


@app.callback()
def _everywhere(
    backend: Annotated[
        Literal["local", "modal"] | None,
        typer.Option(help="Where embedding, encoder training and pool scoring run (spec.json's compute.backend)."),
    ] = None,
) -> None:
    if backend:  # read by alloop.tools.compute (its BACKEND_ENV), which this start-up path does not import
        os.environ["ALLOOP_BACKEND"] = backend


def run_tool(
    spec: ToolSpec, arguments: dict[str, Any], root: Path, as_json: bool = False, show: bool = True, wide: bool = False
) -> BaseModel:
    """Call a tool with a progress bar on stderr and print its result (status and simulate as a round table)."""
    from alloop.cli_progress import progress_bar as bar
    from alloop.cli_render import ROUND_VIEWS, render_rounds
    from alloop.tools.base import ToolContext
    from alloop.tools.run.rundir import RunRoot

    with bar(spec.name, err) as progress:
        result = spec.call(arguments, ToolContext(root=RunRoot(root), progress=progress, inputs_anywhere=True))
    if show and spec.name in ROUND_VIEWS:
        render_rounds(result, RunRoot(root).path, as_json, wide, out)
    elif show:
        render(result, as_json, out)
    return result


def progress_bar(label: str) -> Any:
    """A progress bar on stderr (see cli_progress), for the area CLIs."""
    from alloop.cli_progress import progress_bar as bar

    return bar(label, err)


@app.command("serve", rich_help_panel=PANELS["setup"])
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


@app.command("version", rich_help_panel=PANELS["setup"])
def version() -> None:
    """Print alloop's version."""
    out.print(__version__)


@app.command("demo", rich_help_panel=PANELS["loop"])
def demo(
    root: RootOption = Path("runs"),
    run: Annotated[str, typer.Option(help="Run name.")] = "demo",
    rounds: Annotated[int, typer.Option(help="Training rounds.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Items labeled per round.")] = 20,
    strategy: Annotated[str, typer.Option(help="select_batch strategy.")] = "typiclust",
    fresh: Annotated[bool, typer.Option("--fresh/--keep", help="Replace an existing run of that name.")] = True,
    baseline: Annotated[
        bool,
        typer.Option(
            "--baseline/--no-baseline", help="Also run random selection as <run>-random, drawn in the report."
        ),
    ] = True,
    wide: Annotated[bool, typer.Option("--wide", help="Show every column of the round table.")] = False,
) -> None:
    """Run a real loop on the BBC News corpus, with a simulated annotator answering from gold labels."""
    from alloop.cli_render import print_rounds
    from alloop.tools.errors import InputError
    from alloop.tools.registry import tool_named
    from alloop.tools.report.datasets import demo_answers, write_demo_files
    from alloop.tools.run.rundir import RunRoot

    runs = RunRoot(root)
    if runs.exists(run) and not fresh:
        raise InputError(f"run {run!r} exists under {runs.path}; pass --fresh to replace it")
    data = write_demo_files(runs.path / f".{run}-data")
    plan = [(run, strategy)] + ([(f"{run}-random", "random")] if baseline and strategy != "random" else [])
    embedded: dict[str, str] = {}
    for name, chosen in plan:  # the same seed set, labels and held-out items; only selection differs
        runs.remove(name)
        answers = demo_answers(name, data, rounds, batch_size, chosen) | embedded
        run_tool(tool_named("interview_spec"), answers, runs.path, show=False)
        loop = {"run": name, "gold": str(data["gold"]), "rounds": rounds, "batch_size": batch_size}
        run_tool(tool_named("simulate"), loop, runs.path, show=False)
        embedded = embedded or {"embeddings": str(_share_embeddings(runs.run(name), data["pool"].parent))}
    for name, _ in reversed(plan):
        versus = {"baseline": plan[1][0]} if name == run and len(plan) > 1 else {}
        run_tool(tool_named("write_report"), {"run": name, **versus}, runs.path, show=False)
    target = runs.run(run)
    print_rounds(runs.path, run, out, wide)
    if len(plan) > 1:
        out.print(f"Baseline (random selection): {runs.run(plan[1][0]).path}")
    out.print(f"Run directory: {target.path}\nReport: {target.report_path}")


def _share_embeddings(run: Any, folder: Path) -> Path:
    """The run's cached vectors as a Parquet file, so the baseline run embeds nothing again."""
    from alloop.tools.model.encoders import run_encoder
    from alloop.tools.model.imported_embeddings import export_embeddings

    path = folder / "embeddings.parquet"
    export_embeddings(run, run_encoder(run), path)
    return path


def main() -> None:
    from alloop.tools.secrets import install_log_filter

    level = logging.getLevelNamesMapping().get(os.environ.get(LOG_LEVEL_ENV, "").upper(), logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    install_log_filter()  # no secret in a log line or traceback, for every command and the server
    app()
