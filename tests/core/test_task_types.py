"""multi_select, ordinal (metric mae) and magnitude runs through the whole loop, on BBC titles.

Gold is derived from real articles: multi_select tags the topic and 'numbers' when the title has
a figure; the ordinal scale is how hard the news is (from the topic); the magnitude is a reading
time that grows with how hard the news is, with log-normal noise. Every figure the loop writes is
checked against scikit-learn computed from the round's own saved scores.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, hamming_loss, mean_absolute_error, r2_score, root_mean_squared_error

from alloop.tools.base import ToolContext
from alloop.tools.check_convergence import CheckConvergenceInput, check_convergence
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.model.gaussian import GaussianHead
from alloop.tools.model.head_files import head_bytes, head_from_bytes
from alloop.tools.model.option_head import OptionHead
from alloop.tools.model.task_metrics import multi_select_metrics, option_matrix, scale_metrics
from alloop.tools.model.uncertainty import scale_variance, uncertainty
from alloop.tools.report.datasets import BBC_LABELS
from alloop.tools.run.models import ModelDir
from alloop.tools.run.rundir import read_jsonl
from alloop.tools.simulate import SimulateInput, simulate
from alloop.tools.train_glmm import TrainInput, train_glmm
from alloop.tools.write_report import ReportInput, write_report

HARD_NEWS = {"entertainment": "1", "sports": "1", "tech": "2", "business": "3", "politics": "3"}


def tags(row: dict) -> list[str]:
    return [row["label"], *(["numbers"] if re.search(r"\d", row["text"]) else [])]


def reading_time(row: dict, rng: np.random.Generator) -> float:
    """Milliseconds: harder news reads slower (doubling per step of HARD_NEWS), times log-normal noise."""
    return round(150.0 * 2 ** int(HARD_NEWS[row["label"]]) * float(np.exp(rng.normal(0, 0.3))), 1)


def derived_run(ctx: ToolContext, bbc_slice: dict[str, Path], tmp: Path, name: str, gold, **answers) -> Path:
    """A run whose held-out and pool gold are `gold(row)` of each BBC title; returns the pool gold file."""
    texts = {r["id"]: r["text"] for r in read_jsonl(bbc_slice["pool"])}
    topic = {r["id"]: r["label"] for r in read_jsonl(bbc_slice["gold"])}
    heldout = [r | {"label": gold(r)} for r in read_jsonl(bbc_slice["heldout"])]
    pool_gold = [{"id": i, "label": gold({"id": i, "text": texts[i], "label": topic[i]})} for i in texts]
    for path, rows in ((tmp / "heldout.jsonl", heldout), (tmp / "gold.jsonl", pool_gold)):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    interview_spec(
        InterviewInput(run=name, pool=str(bbc_slice["pool"]), heldout=str(tmp / "heldout.jsonl"), **answers), ctx
    )
    return tmp / "gold.jsonl"


def loop(ctx: ToolContext, name: str, gold: Path, rounds: int = 3, strategy: str = "entropy") -> list:
    simulate(SimulateInput(run=name, gold=str(gold), rounds=rounds, batch_size=10, strategy=strategy), ctx)
    return ctx.root.run(name).results()


def heldout_gold(ctx: ToolContext, name: str) -> list:
    return ctx.root.run(name).heldout().column("label")


def test_a_multi_select_run_trains_one_logit_per_option_and_reports_set_metrics(ctx, bbc_slice, tmp_path):
    options = [*BBC_LABELS, "numbers"]
    gold = derived_run(ctx, bbc_slice, tmp_path, "tags", tags, task_type="multi_select", labels=options)
    rows = loop(ctx, "tags", gold)
    assert [r.n_labeled for r in rows] == [10, 20, 30]
    assert all(r.gold_micro_f1 is not None and r.gold_hamming_loss is not None for r in rows)
    run = ctx.root.run("tags")
    scored = ModelDir(run, 3).predictions()
    truth = option_matrix(heldout_gold(ctx, "tags"), options)
    chosen = (scored.heldout_probs > 0.5).astype(int)
    assert rows[-1].gold_micro_f1 > 0.2 and rows[-1].gold_hamming_loss < truth.mean()  # beats ticking nothing
    assert rows[-1].gold_micro_f1 == pytest.approx(f1_score(truth, chosen, average="micro"), abs=1e-5)
    assert rows[-1].gold_hamming_loss == pytest.approx(hamming_loss(truth, chosen), abs=1e-5)
    assert all(set(p.split("|")) <= set(options) for p in scored.pool_pred if p)
    card = ModelDir(run, 3).card()["head"]
    assert card["head"] == "per_option" and card["base"] == "logistic" and len(card["per_option"]) == 6
    picked = read_jsonl(run.path / "selection_round_02.jsonl")
    probs = ModelDir(run, 2).predictions().pool_probs[run.pool().positions([r["item_id"] for r in picked])]
    summed = uncertainty(probs, "multi_select")["entropy"]
    assert all(r["reason"].startswith("entropy ") for r in picked)
    assert [r["scores"]["entropy"] for r in picked] == pytest.approx(summed, abs=1e-5)
    assert list(summed) == sorted(summed, reverse=True)  # the most uncertain sets first


def test_a_multi_select_run_with_the_glmm_head_fits_one_binomial_glmm_per_option(ctx, bbc_slice, tmp_path):
    gold = derived_run(
        ctx, bbc_slice, tmp_path, "tags", tags, task_type="multi_select", labels=[*BBC_LABELS, "numbers"], head="glmm"
    )
    loop(ctx, "tags", gold, rounds=1)
    card = ModelDir(ctx.root.run("tags"), 1).card()["head"]
    assert card["base"] == "glmm" and {c["head"] for c in card["per_option"] if c} == {"glmm"}


def test_an_ordinal_run_predicts_the_expected_scale_point_and_ranks_by_its_variance(ctx, bbc_slice, tmp_path):
    gold = derived_run(
        ctx,
        bbc_slice,
        tmp_path,
        "hardness",
        lambda r: HARD_NEWS[r["label"]],
        task_type="ordinal_scale",
        labels=["1", "2", "3"],
        metric="mae",
    )
    rows = loop(ctx, "hardness", gold)
    assert all(r.gold_mae is not None for r in rows) and rows[-1].cv_mae is not None
    run = ctx.root.run("hardness")
    probs = ModelDir(run, 3).predictions().heldout_probs.astype(float)
    truth = np.asarray([int(v) - 1 for v in heldout_gold(ctx, "hardness")])
    assert rows[-1].gold_mae == pytest.approx(mean_absolute_error(truth, probs @ np.arange(3)), abs=1e-5)
    assert rows[-1].gold_mae < 0.8  # the scale's spread is 0..2
    picked = read_jsonl(run.path / "selection_round_02.jsonl")
    assert all(r["reason"].startswith("variance ") for r in picked)
    verdict = check_convergence(CheckConvergenceInput(run="hardness", record=False), ctx)
    plateau = next(rule for rule in verdict.rules if rule.rule == "plateau")
    assert plateau.evidence["metric"] == "mae" and plateau.evidence["better"] == "smaller"
    assert [h["round"] for h in plateau.evidence["history"]] == [r.round for r in rows if r.cv_mae is not None]
    write_report(ReportInput(run="hardness"), ctx)
    assert "gold_mae" in (run.path / "report.md").read_text()


def test_a_magnitude_run_fits_a_gaussian_on_the_log_scale_and_ranks_by_predictive_sd(ctx, bbc_slice, tmp_path):
    rng = np.random.default_rng(0)
    gold = derived_run(
        ctx, bbc_slice, tmp_path, "reading", lambda r: reading_time(r, rng), task_type="magnitude", metric="rmse"
    )
    rows = loop(ctx, "reading", gold)
    assert all(r.gold_rmse is not None and r.gold_r2 is not None and r.cv_rmse is not None for r in rows)
    run = ctx.root.run("reading")
    model = ModelDir(run, 3)
    assert model.card()["head"]["scale"].startswith("log")  # reading times are right-skewed
    scored = model.predictions().heldout_probs.astype(float)
    truth = np.asarray(heldout_gold(ctx, "reading"), dtype=float)
    assert rows[-1].gold_rmse == pytest.approx(root_mean_squared_error(truth, scored[:, 0]), rel=1e-4)
    assert rows[-1].gold_r2 == pytest.approx(r2_score(truth, scored[:, 0]), abs=1e-4)
    assert rows[-1].gold_spearman > 0.2, rows[-1]  # hard news is read slower
    picked = read_jsonl(run.path / "selection_round_02.jsonl")
    sds = [r["scores"]["sd"] for r in picked]
    assert all(r["reason"].startswith("sd ") for r in picked) and sds == sorted(sds, reverse=True)
    assert all(float(r["prediction"]) > 0 and r["confidence"] is None for r in picked)


def test_multi_select_metrics_are_scikit_learns():
    options = ["a", "b", "c"]
    gold = option_matrix([["a"], ["a", "b"], [], ["c"]], options)
    predicted = option_matrix(["a|b", "a|b", "", "b"], options)
    figures = multi_select_metrics(gold, predicted, options)
    assert figures["gold_accuracy"] == 0.5  # subset accuracy: rows 2 and 3 exactly right
    assert figures["gold_micro_f1"] == pytest.approx(f1_score(gold, predicted, average="micro"))
    assert figures["gold_macro_f1"] == pytest.approx(f1_score(gold, predicted, average="macro", zero_division=0))
    assert figures["gold_hamming_loss"] == pytest.approx(3 / 12)  # b wrong in rows 1 and 4, c in row 4
    assert json.loads(figures["gold_f1_by_class"]) == {"a": 1.0, "b": 0.5, "c": 0.0}  # b: 1 hit, 2 false alarms


def test_scale_metrics_and_uncertainties_match_their_definitions():
    figures = scale_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]))
    assert figures["gold_mae"] == pytest.approx(0.5) and figures["gold_rmse"] == pytest.approx(np.sqrt(1.25 / 3))
    assert figures["gold_r2"] == pytest.approx(r2_score([1, 2, 4], [1.5, 2, 3])) and figures["gold_spearman"] == 1.0
    spread = np.array([[0.5, 0.0, 0.5], [0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert scale_variance(spread) == pytest.approx([1.0, 0.0, 2 / 3])  # the extremes split is the most uncertain
    assert uncertainty(np.array([[0.5, 0.5], [0.0, 1.0]]), "multi_select")["entropy"] == pytest.approx(
        [2 * np.log(2), 0.0], abs=1e-5
    )


def test_the_new_heads_save_without_pickle_and_predict_the_same(bbc_slice):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 5))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, np.zeros(40)]).astype(int)
    option = OptionHead().fit(X, Y)
    assert option.heads_[2] is None and option.predict_proba(X)[:, 2] == pytest.approx(1 / 42)
    y = np.exp(X @ np.array([0.5, 0.2, 0, 0, 0]) + 5 + rng.normal(0, 0.1, 40))
    gaussian = GaussianHead(log_scale="yes").fit(X, y)
    from sklearn.linear_model import BayesianRidge

    direct = BayesianRidge().fit(X, np.log(y)).predict(X, return_std=True)
    assert gaussian.predict_scores(X) == pytest.approx(np.column_stack([np.exp(direct[0]), direct[1]]))
    for head, predict in ((option, "predict_proba"), (gaussian, "predict_scores")):
        again = head_from_bytes(head_bytes(head), "test")
        assert getattr(again, predict)(X) == pytest.approx(getattr(head, predict)(X))


def test_a_magnitude_run_refuses_the_glmm_head_clearly(ctx, bbc_slice, tmp_path):
    gold = derived_run(
        ctx, bbc_slice, tmp_path, "reading", lambda r: 100.0, task_type="magnitude", metric="mae", head="glmm"
    )
    from alloop.tools.errors import InputError
    from alloop.tools.seed_set import SeedInput, seed_set
    from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator

    seed_set(SeedInput(run="reading", size=10), ctx)
    simulate_annotator(SimulateAnnotatorInput(run="reading", gold=str(gold)), ctx)
    with pytest.raises(InputError, match="glmm head does not fit magnitudes"):
        train_glmm(TrainInput(run="reading"), ctx)
