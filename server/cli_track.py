"""`alloop track`: a thin command over alloop.tools.tracking (turn W&B tracking on or off, then sync).

A command, not an MCP tool: sending a run's rounds to W&B is a person's decision, made once per
run in spec.json; after that `write_report` (the tool and its command) syncs by itself, so agents
need no extra tool and the server's tool list stays as it is.
"""

from __future__ import annotations

from pathlib import Path

import typer

from alloop.cli_console import out
from alloop.cli_render import render
from alloop.cli_tools import JsonOption, RootOption
from alloop.tools.run.schema import TrackingMode


def track_command(
    run: str = typer.Argument(..., help="Run name."),
    wandb: TrackingMode | None = typer.Option(
        None, "--wandb", help="off; offline (files under <run>/wandb/ only); online (uploads, needs $WANDB_API_KEY)."
    ),
    project: str | None = typer.Option(None, "--project", help="W&B project (default alloop)."),
    entity: str | None = typer.Option(None, "--entity", help="W&B user or team (default: the key's own)."),
    root: RootOption = Path("runs"),
    as_json: JsonOption = False,
) -> None:
    """Log the run's rounds, selected batches and report figures to Weights & Biases.

    --wandb, --project and --entity first change spec.json (a new spec version); write-report then syncs too.

    Offline keeps W&B's files under <run>/wandb/ (`wandb sync` uploads them later). A round is logged once.
    """
    from alloop.tools.run.rundir import RunRoot
    from alloop.tools.tracking import configure, sync

    target = RunRoot(root).run(run)
    if wandb is not None or project is not None or entity is not None:
        configure(target, wandb, project, entity)
    render(sync(target), as_json, out)
