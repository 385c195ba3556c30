"""Design predictors from pool fields reach both heads, in training and in scoring."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alloop.tools.errors import InputError
from alloop.tools.run.rundir import read_jsonl
from alloop.tools.score_pool import ScoreInput, score_pool
from alloop.tools.seed_set import SeedInput, seed_set
from alloop.tools.select_batch import SelectInput, select_batch
from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
from alloop.tools.train_glmm import TrainInput, train_glmm


@pytest.fixture
def pool_with_length(bbc_slice, tmp_path):
    rows = read_jsonl(bbc_slice["pool"])
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps({**r, "n_words": len(r["body"].split())}) + "\n" for r in rows))
    held = read_jsonl(bbc_slice["heldout"])
    held_path = tmp_path / "heldout.jsonl"
    held_path.write_text("".join(json.dumps({**r, "n_words": len(r["text"].split())}) + "\n" for r in held))
    return path, held_path


@pytest.mark.parametrize("head", ["logistic", "glmm"])
def test_predictors_enter_training_and_scoring(ctx, new_run, bbc_slice, pool_with_length, head):
    pool, heldout = pool_with_length
    run_name = new_run(f"design-{head}", pool=pool, heldout=heldout, predictors=["n_words"], head=head)
    seed_set(SeedInput(run=run_name, strategy="random", size=25), ctx)
    simulate_annotator(SimulateAnnotatorInput(run=run_name, gold=str(bbc_slice["gold"])), ctx)
    trained = train_glmm(TrainInput(run=run_name), ctx)
    assert trained.gold["gold_n"] == 100
    score_pool(ScoreInput(run=run_name), ctx)
    probs = np.load(ctx.root.run(run_name).model_dir(1) / "predictions.npz")["pool_probs"]
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    if head == "logistic":
        assert trained.card["head"]["predictors"] == ["n_words"]


def test_a_non_numeric_predictor_is_refused_when_the_run_is_made(new_run):
    with pytest.raises(InputError, match="predictor 'body' must be numeric"):
        new_run("bad-design", predictors=["body"])


def test_a_heldout_set_without_the_predictor_is_refused_when_the_run_is_made(new_run, pool_with_length):
    """Audit #13: this used to pass init and fail at the first evaluation."""
    pool, _ = pool_with_length
    with pytest.raises(InputError, match=r"heldout\.jsonl: no field 'n_words'"):
        new_run("no-heldout-predictor", pool=pool, predictors=["n_words"])


def test_new_only_with_a_design_predictor_keeps_rows_aligned(ctx, new_run, bbc_slice, pool_with_length):
    """Audit #2: new_only subset the features but not the design, and crashed in round 2."""
    pool, heldout = pool_with_length
    name = new_run("design-new-only", pool=pool, heldout=heldout, predictors=["n_words"])
    seed_set(SeedInput(run=name, strategy="random", size=30), ctx)
    simulate_annotator(SimulateAnnotatorInput(run=name, gold=str(bbc_slice["gold"])), ctx)
    train_glmm(TrainInput(run=name), ctx)
    score_pool(ScoreInput(run=name), ctx)
    select_batch(SelectInput(run=name, strategy="random", batch_size=30), ctx)
    simulate_annotator(SimulateAnnotatorInput(run=name, gold=str(bbc_slice["gold"])), ctx)

    second = train_glmm(TrainInput(run=name, training_strategy="new_only"), ctx)

    assert second.card["trained_on"]["n"] in (30, 60)  # the batch, or all labels when it lacks a class
    assert second.card["head"]["predictors"] == ["n_words"] and second.n_labeled == 60
