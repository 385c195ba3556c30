"""Helpers of the jsPsych/JATOS tests: runs to build from and the Chromium settings."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from alloop.tools.base import ToolContext
from alloop.tools.jspsych import npm
from alloop.tools.jspsych.jatos import JatosClient
from alloop.tools.run.items import ItemTable
from alloop.tools.run.rundir import RunDir, RunRoot
from alloop.tools.run.schema import SelectionRow, TaskSpec

from .jatos_double import TOKEN

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def make_run(
    root: Path,
    name: str,
    task_type: str,
    labels: list[str],
    items: list[dict[str, Any]],
    *,
    round_: int = 1,
    text_fields: list[str] | None = None,
) -> tuple[RunRoot, RunDir]:
    """A run whose selection round `round_` holds all the given items."""
    run_root = RunRoot(root)
    spec = TaskSpec(run=name, task_type=task_type, labels=labels, text_fields=text_fields or ["text"])
    run = run_root.create(spec, ItemTable.from_rows(items), None)
    run.write_selection(
        round_,
        [
            SelectionRow(round=round_, rank=i + 1, item_id=str(item["id"]), strategy="test", reason="test")
            for i, item in enumerate(items)
        ],
    )
    return run_root, run


def jatos_context(root: RunRoot, url: str) -> ToolContext:
    """A tool context whose JATOS clients talk to the double at `url`, with the double's token."""
    return ToolContext(root=root, jatos_client=lambda _url: JatosClient(url, TOKEN))


def npm_cache_ready() -> bool:
    try:
        npm.check_cache()
    except Exception:
        return False
    return True


def has_node() -> bool:
    return shutil.which("node") is not None
