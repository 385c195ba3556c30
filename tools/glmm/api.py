"""Entry points over CSV files, shared by the `alloop glmm` CLI and scripts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alloop.tools.glmm.design import ModelSpec, build_frame, read_csv
from alloop.tools.glmm.model import GLMMFit, fit


def spec_of(
    family: str,
    mode: str = "random_intercepts",
    response: str = "y",
    participant: str | None = "participant",
    item: str | None = "item",
    predictors: tuple[str, ...] = (),
    slopes: tuple[str, ...] | None = None,
    correlated: bool = True,
    reml: bool = False,
    log_response: bool = False,
    trial: str | None = None,
) -> ModelSpec:
    return ModelSpec(
        family=family,
        mode=mode,
        response=response,
        participant=participant,
        item=item,
        predictors=tuple(predictors),
        slopes=slopes,
        correlated=correlated,
        reml=reml,
        log_response=log_response,
        trial=trial,
    )


def fit_csv(path: str | Path, max_iter: int = 1000, **spec: Any) -> GLMMFit:
    """Read a CSV file and fit the model `spec` describes (see `spec_of`)."""
    data = read_csv(path)
    return fit(build_frame(data, spec_of(**spec), where=str(path)), max_iter=max_iter)


def fit_multi_select_csv(path: str | Path, option: str, max_iter: int = 1000, **spec: Any) -> dict[str, GLMMFit]:
    """multi_select: one binary GLMM (one logit) per option, on the rows of that option (one row
    per response and option, the response 1 where the option was selected)."""
    import numpy as np

    from alloop.tools.errors import InputError

    data = read_csv(path)
    if option not in data:
        raise InputError(f"{path}: the option column {option!r} is missing; the columns are {sorted(data)}")
    labels = np.asarray([str(v).strip() for v in data[option]], dtype=object)
    out = {}
    for value in sorted(set(labels)):
        rows = labels == value
        subset = {k: v[rows] for k, v in data.items()}
        frame = build_frame(subset, spec_of(**{**spec, "family": "binary"}), where=f"{path} (option {value!r})")
        out[value] = fit(frame, max_iter=max_iter)
    return out


def cv_csv(path: str | Path, folds: int = 5, seed: int = 0, **spec: Any) -> dict[str, Any]:
    """Participant-grouped k-fold cross-validation of the model on a CSV file."""
    from alloop.tools.glmm.evaluation import grouped_cv

    return grouped_cv(read_csv(path), spec_of(**spec), folds=folds, seed=seed, where=str(path))


def curve_csv(
    path: str | Path, fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0), folds: int = 5, seed: int = 0, **spec: Any
) -> list[dict[str, Any]]:
    """A participant-grouped learning curve of the model on a CSV file."""
    from alloop.tools.glmm.evaluation import learning_curve

    return learning_curve(read_csv(path), spec_of(**spec), fractions=fractions, folds=folds, seed=seed, where=str(path))


def write_plots(result: GLMMFit, folder: str | Path) -> list[Path]:
    """The forest plot of random effects and the posterior predictive check, as PNGs."""
    from alloop.tools.glmm.plots import forest_plot, ppc_plot

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    if any(not t.shared for t in result.frame.terms):
        out.append(forest_plot(result, folder / "forest.png"))
    out.append(ppc_plot(result, folder / "ppc.png"))
    return out
