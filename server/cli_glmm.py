"""`alloop glmm ...`: fit and check mixed-effects models on a CSV file, the way lme4 would.

    alloop glmm fit --data ratings.csv --response y --family ordinal --mode random_slopes \\
        --participant subject --item sentence --predictors x --json

Thin adapter: parse, call alloop.tools.glmm.api, print. A domain error reaches the `alloop`
command group, which reports it like every other command's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from alloop.tools.errors import InputError
from alloop.tools.run.schema import EffectsMode

app = typer.Typer(
    name="glmm",
    help="Mixed-effects models (lme4-compatible Laplace fits) for human-judgment data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

FamilyName = Literal["binary", "ordinal", "categorical", "gaussian", "magnitude", "forced_choice", "multi_select"]
ModeName = EffectsMode

# The options every command shares: the data and the model.
DataOption = Annotated[Path, typer.Option(help="CSV file, one response per row.")]
ResponseOption = Annotated[str, typer.Option(help="Response column.")]
FamilyOption = Annotated[FamilyName, typer.Option(help="Response family.")]
ModeOption = Annotated[ModeName, typer.Option(help="Random-effects structure.")]
ItemOption = Annotated[str, typer.Option(help="Item column ('' for none).")]
PredictorsOption = Annotated[
    list[str] | None, typer.Option(help="Fixed-effect predictor columns (repeat or comma-separate).")
]


def _names(values: list[str] | None) -> tuple[str, ...]:
    """Repeated options and comma-separated lists both work: `--predictors x,c` = `--predictors x --predictors c`."""
    return tuple(p.strip() for v in values or [] for p in v.split(",") if p.strip())


@app.command()
def fit(
    data: DataOption,
    response: ResponseOption = "y",
    family: FamilyOption = "binary",
    mode: ModeOption = "random_intercepts",
    participant: Annotated[str, typer.Option(help="Participant column ('' for none).")] = "participant",
    item: ItemOption = "item",
    predictors: PredictorsOption = None,
    slopes: Annotated[
        list[str] | None, typer.Option(help="random_slopes: predictors with participant slopes (default: all).")
    ] = None,
    uncorrelated: Annotated[
        bool, typer.Option("--uncorrelated", help="random_slopes: no intercept-slope correlation (lme4's ||).")
    ] = False,
    reml: Annotated[bool, typer.Option("--reml", help="gaussian: REML instead of ML.")] = False,
    log: Annotated[bool, typer.Option("--log", help="magnitude: model log(y).")] = False,
    trial: Annotated[str | None, typer.Option(help="forced_choice: trial column (one row per option).")] = None,
    option: Annotated[str | None, typer.Option(help="multi_select: option column (one logit per option).")] = None,
    max_iter: Annotated[int, typer.Option(help="Optimizer iteration limit.")] = 1000,
    plots: Annotated[
        Path | None,
        typer.Option(
            help="Folder for PNGs: fixed-effects forest, random-effects caterpillar, posterior predictive check."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the fit as JSON.")] = False,
) -> None:
    """Fit a mixed model as lme4/ordinal do: Laplace (glmer, clmm) or ML/REML (lmer).

    Laplace for binary, ordinal, categorical, forced_choice (--trial) and multi_select
    (--option, one logit per option); ML or REML for gaussian and magnitude (--log).
    """
    from alloop.tools.glmm import api

    fits, report = api.fit_report_csv(
        data,
        option=option,
        plots=plots,
        max_iter=max_iter,
        response=response,
        family=family,
        mode=mode,
        participant=participant or None,
        item=item or None,
        predictors=_names(predictors),
        slopes=_names(slopes) or None,
        correlated=not uncorrelated,
        reml=reml,
        log_response=log,
        trial=trial,
    )
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        from alloop.tools.glmm.evaluation import summary_table

        for key, result in fits.items():
            typer.echo((f"== option {key} ==\n" if key else "") + summary_table(result))


@app.command()
def cv(
    data: DataOption,
    response: ResponseOption = "y",
    family: FamilyOption = "binary",
    mode: ModeOption = "random_intercepts",
    participant: Annotated[str, typer.Option(help="Participant column (folds are grouped by it).")] = "participant",
    item: ItemOption = "item",
    predictors: PredictorsOption = None,
    uncorrelated: Annotated[bool, typer.Option("--uncorrelated", help="random_slopes: uncorrelated.")] = False,
    folds: Annotated[int, typer.Option(min=2, help="Folds; no participant is in both train and test.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for the fold assignment.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Participant-grouped k-fold cross-validation: held-out participants predicted at the population level."""
    from alloop.tools.glmm import api

    report = api.cv_csv(
        data,
        response=response,
        family=family,
        mode=mode,
        participant=participant,
        item=item or None,
        predictors=_names(predictors),
        correlated=not uncorrelated,
        folds=folds,
        seed=seed,
    )
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        for key, value in report["metrics"].items():
            typer.echo(f"{key:>22s}  {value:.4f}" if isinstance(value, float) else f"{key:>22s}  {value}")


@app.command()
def curve(
    data: DataOption,
    response: ResponseOption = "y",
    family: FamilyOption = "binary",
    mode: ModeOption = "random_intercepts",
    participant: Annotated[str, typer.Option(help="Participant column (folds are grouped by it).")] = "participant",
    item: ItemOption = "item",
    predictors: PredictorsOption = None,
    fractions: Annotated[
        str, typer.Option(help="Shares of training participants, comma-separated.")
    ] = "0.25,0.5,0.75,1",
    folds: Annotated[int, typer.Option(min=2, help="Participant-grouped folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for folds and subsamples.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Learning curve: held-out-participant metrics against the number of training participants."""
    from alloop.tools.glmm import api

    try:
        shares = [float(f) for f in fractions.split(",") if f.strip()]
    except ValueError as exc:
        raise InputError(f"--fractions must be numbers separated by commas, got {fractions!r}") from exc
    rows = api.curve_csv(
        data,
        response=response,
        family=family,
        mode=mode,
        participant=participant,
        item=item or None,
        predictors=_names(predictors),
        fractions=shares,
        folds=folds,
        seed=seed,
    )
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        keys = [k for k in rows[0] if not k.endswith("_sd") and k not in ("n",)]
        typer.echo("  ".join(f"{k:>12s}" for k in keys))
        for row in rows:
            typer.echo("  ".join(f"{row[k]:>12.4f}" for k in keys))
