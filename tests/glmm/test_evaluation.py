"""Metrics, participant-grouped cross-validation, learning curves and model checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alloop.tools.glmm.api import write_plots
from alloop.tools.glmm.design import GLMMSpec, build_frame
from alloop.tools.glmm.evaluation import (
    calibration_error,
    classification_metrics,
    grouped_cv,
    learning_curve,
    ordinal_metrics,
    participant_folds,
    ppc_summary,
    simulate,
    summary_table,
    variance_components,
)
from alloop.tools.glmm.model import fit


def test_classification_metrics_worked_example() -> None:
    y = np.array([0, 0, 1, 1, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7]])
    m = classification_metrics(y, proba)
    assert m["accuracy"] == pytest.approx(4 / 5)
    # class 0: P=1, R=1/2, F1=2/3; class 1: P=2/3, R=1, F1=4/5; class 2: 1, 1, 1
    assert m["precision_macro"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert m["recall_macro"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert m["f1_macro"] == pytest.approx((2 / 3 + 4 / 5 + 1) / 3)
    assert m["f1_micro"] == pytest.approx(4 / 5)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.3, 0.7, 0.8, 0.7])))


def test_calibration_error_is_zero_when_confidence_matches_accuracy() -> None:
    proba = np.tile([0.75, 0.25], (8, 1))
    y = np.array([0, 0, 0, 1, 0, 0, 0, 1])  # 6 of 8 right at confidence 0.75
    assert calibration_error(y, proba) == pytest.approx(0.0)
    assert calibration_error(np.ones(8, int), proba) == pytest.approx(0.75)


def test_ordinal_metrics_mae_and_spearman() -> None:
    y = np.array([0, 1, 2, 3])
    proba = np.eye(4)[[0, 2, 2, 3]]
    m = ordinal_metrics(y, proba)
    assert m["mae"] == pytest.approx(0.25)
    assert m["spearman"] == pytest.approx(np.corrcoef([0, 1.5, 1.5, 3], [0, 1, 2, 3])[0, 1], abs=0.05)


def test_participant_folds_never_share_a_participant(binary_data: dict) -> None:
    folds = participant_folds(binary_data["participant"], 5, seed=3)
    seen: set[str] = set()
    rows = np.concatenate(folds)
    assert sorted(rows) == list(range(len(binary_data["participant"])))
    for test in folds:
        people = set(binary_data["participant"][test])
        assert not people & seen
        seen |= people
    assert [len(f) for f in participant_folds(binary_data["participant"], 5, seed=3)] == [len(f) for f in folds]


def test_grouped_cv_ordinal(ordinal_data: dict) -> None:
    report = grouped_cv(ordinal_data, GLMMSpec("ordinal", predictors=("x", "c")), folds=3, seed=0)
    assert report["all_converged"] and report["n"] == 600 and len(report["per_fold"]) == 3
    m = report["metrics"]
    assert {"accuracy", "f1_macro", "f1_micro", "log_loss", "calibration_error", "mae", "spearman"} <= set(m)
    assert m["spearman"] > 0.1 and m["log_loss"] < np.log(7)  # better than a uniform guess


def test_learning_curve_gaussian(gaussian_data: dict) -> None:
    rows = learning_curve(gaussian_data, GLMMSpec("gaussian", predictors=("x",)), fractions=(0.3, 1.0), folds=3)
    assert [r["fraction"] for r in rows] == [0.3, 1.0]
    assert rows[0]["n_train"] < rows[1]["n_train"]
    assert {"rmse", "rmse_sd", "r2", "participants"} <= set(rows[0])


def test_summary_table_and_variance_components(binary_data: dict) -> None:
    result = fit(build_frame(binary_data, GLMMSpec("binary", mode="random_slopes", predictors=("x",))))
    text = summary_table(result)
    for part in ("fit by Laplace", "Random effects:", "participant", "Fixed effects:", "(Intercept)", "+0."):
        assert part in text
    comps = variance_components(result)
    assert [(c["group"], c["name"]) for c in comps] == [
        ("participant", "(Intercept)"),
        ("participant", "x"),
        ("item", "(Intercept)"),
    ]


def test_posterior_predictive_check_and_plots(ordinal_data: dict, tmp_path: Path) -> None:
    result = fit(build_frame(ordinal_data, GLMMSpec("ordinal", predictors=("x",))))
    sims = simulate(result, n_sims=50, seed=1)
    assert sims.shape == (50, 600) and set(np.unique(sims)) <= set(range(7))
    check = ppc_summary(result, n_sims=200)
    assert len(check["checks"]) == 8  # 7 category proportions and the participant spread
    assert check["all_inside"]  # the model that generated the data passes its own check
    paths = write_plots(result, tmp_path)
    assert [p.name for p in paths] == ["fixed_effects.png", "caterpillar.png", "ppc.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
