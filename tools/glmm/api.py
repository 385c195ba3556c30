"""Entry points over CSV files, shared by the `alloop glmm` CLI and scripts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alloop.tools.errors import InputError
from alloop.tools.glmm.design import GLMMSpec, build_frame, read_csv
from alloop.tools.glmm.model import GLMMFit, fit


def fit_csv(path: str | Path, max_iter: int = 1000, **spec: Any) -> GLMMFit:
    """Read a CSV file and fit the model `spec` describes (the fields of `GLMMSpec`)."""
    data = read_csv(path)
    return fit(build_frame(data, GLMMSpec(**spec), where=str(path)), max_iter=max_iter)


def fit_multi_select_csv(path: str | Path, option: str, max_iter: int = 1000, **spec: Any) -> dict[str, GLMMFit]:
    """multi_select: one binary GLMM (one logit) per option, on the rows of that option (one row
    per response and option, the response 1 where the option was selected)."""
    import numpy as np

    data = read_csv(path)
    if option not in data:
        raise InputError(f"{path}: the option column {option!r} is missing; the columns are {sorted(data)}")
    labels = np.asarray([str(v).strip() for v in data[option]], dtype=object)
    out = {}
    for value in sorted(set(labels)):
        rows = labels == value
        subset = {k: v[rows] for k, v in data.items()}
        frame = build_frame(subset, GLMMSpec(**{**spec, "family": "binary"}), where=f"{path} (option {value!r})")
        out[value] = fit(frame, max_iter=max_iter)
    return out


def fit_report_csv(
    path: str | Path, option: str | None = None, plots: str | Path | None = None, max_iter: int = 1000, **spec: Any
) -> tuple[dict[str, GLMMFit], dict[str, Any]]:
    """Fit any family on a CSV file: the fits keyed by option ('' for a single model) and their JSON report.

    multi_select needs `option`, the column naming each row's option, and reports
    `{"options": {option: report}}`. With `plots`, each report lists the PNGs written there
    (one subfolder per option).
    """
    multi = spec.get("family") == "multi_select"
    if multi and not option:
        raise InputError("multi_select needs --option, the column naming each row's option")
    fits = fit_multi_select_csv(path, option, max_iter, **spec) if multi else {"": fit_csv(path, max_iter, **spec)}
    reports = {key: result.to_json() for key, result in fits.items()}
    if plots is not None:
        for key, result in fits.items():
            reports[key]["plots"] = [str(p) for p in write_plots(result, Path(plots) / key if key else plots)]
    return fits, {"options": reports} if multi else reports[""]


def cv_csv(path: str | Path, folds: int = 5, seed: int = 0, **spec: Any) -> dict[str, Any]:
    """Participant-grouped k-fold cross-validation of the model on a CSV file."""
    from alloop.tools.glmm.evaluation import grouped_cv

    return grouped_cv(read_csv(path), GLMMSpec(**spec), folds=folds, seed=seed, where=str(path))


def curve_csv(
    path: str | Path, fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0), folds: int = 5, seed: int = 0, **spec: Any
) -> list[dict[str, Any]]:
    """A participant-grouped learning curve of the model on a CSV file."""
    from alloop.tools.glmm.evaluation import learning_curve

    return learning_curve(
        read_csv(path), GLMMSpec(**spec), fractions=fractions, folds=folds, seed=seed, where=str(path)
    )


def write_plots(result: GLMMFit, folder: str | Path) -> list[Path]:
    """The forest plot of fixed effects, the caterpillar plot of random effects and the posterior
    predictive check, as PNGs."""
    from alloop.tools.glmm.plots import caterpillar_plot, fixed_effects_plot, ppc_plot

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    if len(result.beta) or result.alpha is not None:
        out.append(fixed_effects_plot(result, folder / "fixed_effects.png"))
    if any(not t.shared for t in result.frame.terms):
        out.append(caterpillar_plot(result, folder / "caterpillar.png"))
    out.append(ppc_plot(result, folder / "ppc.png"))
    return out
