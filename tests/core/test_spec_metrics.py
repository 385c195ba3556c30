"""Every metric a spec accepts has a results column that training fills (the `mae` defect)."""

from __future__ import annotations

from typing import get_args

import pytest

from alloop.tools.check_convergence import CheckConvergenceInput, check_convergence
from alloop.tools.run.schema import (
    CV_METRIC_COLUMNS,
    METRIC_COLUMNS,
    SCALE_METRICS,
    SCALE_TASKS,
    Metric,
    ResultRow,
    TaskSpec,
)
from alloop.tools.score_pool import ScoreInput, score_pool
from alloop.tools.seed_set import SeedInput, seed_set
from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
from alloop.tools.train_glmm import TrainInput, train_glmm


def test_each_metric_names_a_results_column():
    assert set(METRIC_COLUMNS) == set(get_args(Metric))
    assert set(METRIC_COLUMNS.values()) <= set(ResultRow.columns())


def test_a_scale_metric_on_a_task_without_a_scale_is_refused():
    with pytest.raises(ValueError, match="use macro_f1 or accuracy"):
        TaskSpec(run="r", task_type="categorical", labels=["a", "b"], metric="mae")


@pytest.mark.parametrize("metric", sorted(get_args(Metric)))
def test_training_an_ordinal_run_fills_the_spec_metric_and_the_plateau_rule_reads_it(ctx, new_run, bbc_slice, metric):
    """The topics stand in for scale points here: only the bookkeeping is under test."""
    name = new_run(f"ordinal-{metric}", task_type="ordinal_scale", metric=metric, plateau_epsilon=0.5)
    seed_set(SeedInput(run=name, strategy="random", size=30), ctx)
    simulate_annotator(SimulateAnnotatorInput(run=name, gold=str(bbc_slice["gold"])), ctx)

    train_glmm(TrainInput(run=name), ctx)
    score_pool(ScoreInput(run=name), ctx)

    row = ctx.root.run(name).results()[-1]
    assert getattr(row, METRIC_COLUMNS[metric]) is not None
    rules = check_convergence(CheckConvergenceInput(run=name), ctx).rules
    plateau = next(state for state in rules if state.rule == "plateau")
    read = CV_METRIC_COLUMNS[metric] if plateau.evidence["source"] == "cv" else METRIC_COLUMNS[metric]
    assert plateau.evidence["history"] == [{"round": 1, "value": getattr(row, read)}]
    assert getattr(row, CV_METRIC_COLUMNS[metric]) is not None and row.decision_source == "cv"


def test_classification_tasks_fill_every_metric_they_allow(ctx, new_run, bbc_slice):
    name = new_run("categorical-metrics")
    seed_set(SeedInput(run=name, strategy="random", size=30), ctx)
    simulate_annotator(SimulateAnnotatorInput(run=name, gold=str(bbc_slice["gold"])), ctx)

    train_glmm(TrainInput(run=name), ctx)

    row = ctx.root.run(name).results()[-1]
    allowed = set(get_args(Metric)) - SCALE_METRICS
    assert all(getattr(row, METRIC_COLUMNS[m]) is not None for m in allowed)
    assert "categorical" not in SCALE_TASKS
