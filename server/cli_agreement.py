"""`alloop agreement` and `alloop converge`: thin commands over alloop.tools.agreement and
check_convergence. The lead mounts them at top level:

    app.command("agreement")(agreement_command)
    app.command("converge")(converge_command)
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from alloop.tools import agreement as ag
from alloop.tools.errors import AlloopError

app = typer.Typer(help="Agreement among coders and the run's stopping decision.", no_args_is_help=True)


class MetricChoice(StrEnum):
    krippendorff_alpha = "krippendorff_alpha"
    fleiss_kappa = "fleiss_kappa"
    cohens_kappa = "cohens_kappa"
    percent = "percent"


class LevelChoice(StrEnum):
    nominal = "nominal"
    ordinal = "ordinal"
    interval = "interval"
    ratio = "ratio"


def _fail(exc: AlloopError) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"


def _progress_printer(label: str) -> Any:
    def report(done: float, total: float | None, message: str = "") -> None:
        if sys.stderr.isatty() and total:
            end = "\n" if done >= total else ""
            print(f"\r{label}: {int(done)}/{int(total)}", end=end, file=sys.stderr, flush=True)

    return report


def agreement_command(
    annotations: Path = typer.Option(..., "--annotations", help="JSONL, one {unit, coder, value} a line."),
    metric: MetricChoice = typer.Option(MetricChoice.krippendorff_alpha, "--metric"),
    level: LevelChoice = typer.Option(LevelChoice.nominal, "--level", help="Level of measurement."),
    bootstrap: int = typer.Option(0, "--bootstrap", min=0, help="Resamples over units for the interval."),
    labels: str | None = typer.Option(
        None, "--labels", help="Label schema, comma-separated, in order (required for ordinal text labels)."
    ),
    confidence: float = typer.Option(0.95, "--confidence", min=0.0, max=1.0),
    seed: int = typer.Option(0, "--seed"),
    focus: str | None = typer.Option(None, "--focus", help="Measure only pairs that involve this coder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Agreement among coders, with a bootstrap interval over units."""
    schema = [label.strip() for label in labels.split(",")] if labels else None
    bar = _progress_printer("bootstrap")
    try:
        rows = ag.read_annotations(annotations)
        ratings = ag.Ratings.from_rows(rows, level=level.value, labels=schema, source=str(annotations))
        result = ag.agreement(
            ratings,
            metric.value,
            bootstrap_samples=bootstrap,
            confidence=confidence,
            seed=seed,
            focus=focus,
            progress=lambda done, total: bar(done, total),
        )
    except AlloopError as exc:
        raise _fail(exc) from exc
    if as_json:
        typer.echo(json.dumps(result.summary()))
        return
    interval = ""
    if result.ci_low is not None:
        interval = f"  [{confidence:.0%} CI {_fmt(result.ci_low)}, {_fmt(result.ci_high)}; {bootstrap} resamples]"
    typer.echo(f"{result.metric} ({result.level}) = {_fmt(result.value)}{interval}")
    typer.echo(
        f"{result.n_units} units ({result.n_pairable_units} coded twice or more), {result.n_coders} coders, "
        f"{result.n_values} values"
    )
    for pair in result.pairs:
        typer.echo(f"  {pair.coder_a} × {pair.coder_b}: {_fmt(pair.value)} on {pair.n_units} units")
    if result.note:
        typer.echo(f"note: {result.note}")


def converge_command(
    run: str = typer.Argument(..., help="Run name under the root."),
    root: Path | None = typer.Option(None, "--root", envvar="ALLOOP_ROOT", help="Run root (default ./runs)."),
    round_: int | None = typer.Option(None, "--round", help="Round to judge (default: the latest)."),
    metric: MetricChoice | None = typer.Option(None, "--metric", help="Default: spec.stopping.agreement_metric."),
    level: LevelChoice | None = typer.Option(None, "--level", help="Default: from the task type."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0),
    confidence: float = typer.Option(0.95, "--confidence", min=0.0, max=1.0),
    seed: int = typer.Option(0, "--seed"),
    record: bool = typer.Option(True, "--record/--no-record", help="Write the decision into results.tsv."),
    as_json: bool = typer.Option(False, "--json", help="Print the tool's output as JSON."),
) -> None:
    """Model–human agreement, the human ceiling and every stopping rule: stop or go."""
    from alloop.tools.base import ToolContext
    from alloop.tools.check_convergence import CheckConvergenceInput, check_convergence
    from alloop.tools.run.rundir import RunRoot

    try:
        args = CheckConvergenceInput(
            run=run,
            round=round_,
            metric=metric.value if metric else None,
            level=level.value if level else None,
            bootstrap=bootstrap,
            confidence=confidence,
            seed=seed,
            record=record,
        )
        out = check_convergence(args, ToolContext(root=RunRoot(root), progress=_progress_printer("bootstrap")))
    except AlloopError as exc:
        raise _fail(exc) from exc
    if as_json:
        typer.echo(out.model_dump_json(indent=2))
        return
    typer.echo(f"run {out.run}, round {out.round}: {out.decision.upper()}")
    found = out.agreement
    if found is not None:
        typer.echo(
            f"  {found.metric} ({found.level}) on {found.n_items} held-out items, {found.n_people} people:\n"
            f"    model–human   {_fmt(found.model_human.value)}  [{_fmt(found.model_human.ci_low)}, "
            f"{_fmt(found.model_human.ci_high)}]\n"
            f"    human ceiling {_fmt(found.human_ceiling.value)}  [{_fmt(found.human_ceiling.ci_low)}, "
            f"{_fmt(found.human_ceiling.ci_high)}]\n"
            f"    gap           {_fmt(found.gap.value)}  [{_fmt(found.gap.ci_low)}, {_fmt(found.gap.ci_high)}]"
        )
        ranked = sorted(found.per_person.items(), key=lambda kv: -1e9 if kv[1] is None else -kv[1])
        typer.echo("    each person with the others: " + ", ".join(f"{n} {_fmt(v)}" for n, v in ranked))
    elif out.agreement_note:
        typer.echo(f"  agreement: {out.agreement_note}")
    if out.judge_assisted is not None:
        judged = out.judge_assisted
        typer.echo(
            f"  judge-assisted (not human): model with people and judges "
            f"{_fmt(judged.model_with_people_and_judges.value)}"
        )
        for judge, interval in judged.judge_human.items():
            typer.echo(f"    judge {judge} vs people {_fmt(interval.value)}")
    for state in out.rules:
        typer.echo(f"  {state.rule:<19} {state.status:<8} {state.reason}")
    typer.echo(f"next: {out.next_step}")


app.command("agreement")(agreement_command)
app.command("converge")(converge_command)
