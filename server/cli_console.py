"""Where the CLI writes: results to stdout, progress and failures to stderr."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer
from rich.console import Console

PIPE_WIDTH = 160
"""Width for pipes and CI logs, unless $COLUMNS says otherwise: tables keep more columns there."""

out = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit() else PIPE_WIDTH)
err = Console(stderr=True)


def fail(message: object) -> NoReturn:
    """Report a failure the user can fix: one red line on stderr (unwrapped, for logs and grep), exit code 2."""
    from alloop.tools.secrets import scrub

    err.print(f"error: {scrub(str(message))}", style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)
