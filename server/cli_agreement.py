"""`alloop agreement`: agreement among coders in a file, a thin command over alloop.tools.agreement.

The run's own stopping decision is the `check-convergence` tool command.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from alloop.tools import agreement as ag
from alloop.tools.report.figures import figure
from alloop.tools.run.schema import AgreementMetric


def agreement_command(
    annotations: Path = typer.Option(..., "--annotations", help="JSONL, one {unit, coder, value} a line."),
    metric: AgreementMetric = typer.Option("krippendorff_alpha", "--metric"),
    level: ag.Level = typer.Option("nominal", "--level", help="Level of measurement."),
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
    from alloop.cli import progress_bar  # alloop.cli imports this module to mount the command

    schema = [label.strip() for label in labels.split(",")] if labels else None
    rows = ag.read_annotations(annotations)
    ratings = ag.Ratings.from_rows(rows, level=level, labels=schema, source=str(annotations))
    with progress_bar("bootstrap") as progress:
        result = ag.agreement(
            ratings,
            metric,
            bootstrap_samples=bootstrap,
            confidence=confidence,
            seed=seed,
            focus=focus,
            progress=progress,
        )
    if as_json:
        typer.echo(json.dumps(result.summary()))
        return
    interval = ""
    if result.ci_low is not None:
        interval = (
            f"  [{confidence:.0%} CI {figure(result.ci_low, 4)}, {figure(result.ci_high, 4)}; {bootstrap} resamples]"
        )
    typer.echo(f"{result.metric} ({result.level}) = {figure(result.value, 4)}{interval}")
    typer.echo(
        f"{result.n_units} units ({result.n_pairable_units} coded twice or more), {result.n_coders} coders, "
        f"{result.n_values} values"
    )
    for pair in result.pairs:
        typer.echo(f"  {pair.coder_a} × {pair.coder_b}: {figure(pair.value, 4)} on {pair.n_units} units")
    if result.note:
        typer.echo(f"note: {result.note}")
