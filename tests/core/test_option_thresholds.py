"""multi_select decisions: per-option thresholds tuned out of fold, and the at-least-one rule.

The data are the BBC titles of tests/conftest.py's slice with the tags tests/core/test_task_types.py
gives them: the topic, and 'numbers' when the title has a figure. Thresholds are checked against
scikit-learn's precision-recall curve, and the head file keeps them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_curve

from alloop.tools.errors import InputError
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.model.encoders import get_encoder
from alloop.tools.model.head_files import head_bytes, head_from_bytes
from alloop.tools.model.option_head import OptionHead, centred, f1_threshold, shrunk_threshold
from alloop.tools.report.datasets import BBC_LABELS
from alloop.tools.run.models import ModelDir
from alloop.tools.run.rundir import read_jsonl
from alloop.tools.simulate import SimulateInput, simulate

OPTIONS = [*BBC_LABELS, "numbers"]


def tags(text: str, topic: str) -> list[str]:
    return [topic, *(["numbers"] if re.search(r"\d", text) else [])]


@pytest.fixture(scope="module")
def tagged(bbc_slice) -> dict[str, np.ndarray]:
    """Title embeddings and tag matrices of the slice's pool and held-out set."""
    topic = {r["id"]: r["label"] for r in read_jsonl(bbc_slice["gold"])}
    pool = [r | {"label": topic[r["id"]]} for r in read_jsonl(bbc_slice["pool"])]
    heldout = read_jsonl(bbc_slice["heldout"])
    encoder = get_encoder("all-MiniLM-L6-v2", 256)

    def matrix(rows: list[dict]) -> np.ndarray:
        chosen = [tags(r["text"], r["label"]) for r in rows]
        return np.asarray([[o in c for o in OPTIONS] for c in chosen], dtype=np.int64)

    return {
        "X": encoder.encode([r["text"] for r in pool]),
        "Y": matrix(pool),
        "hX": encoder.encode([r["text"] for r in heldout]),
        "hY": matrix(heldout),
    }


def micro_f1(head: OptionHead, X: np.ndarray, Y: np.ndarray) -> float:
    return float(f1_score(Y, (head.predict_proba(X) > 0.5).astype(int), average="micro"))


def test_the_f1_threshold_is_the_best_cut_of_scikit_learns_precision_recall_curve():
    rng = np.random.default_rng(3)
    chosen = rng.random(80) < 0.2
    probs = np.clip(0.25 * chosen + rng.normal(0.3, 0.15, 80), 0.01, 0.99)
    precision, recall, _ = precision_recall_curve(chosen, probs)
    best = np.nanmax(2 * precision * recall / np.where(precision + recall > 0, precision + recall, np.nan))
    cut = f1_threshold(probs, chosen.astype(int))
    assert f1_score(chosen, probs > cut) == pytest.approx(best)
    assert f1_score(chosen, probs > 0.5) < best  # 0.5 leaves most positives out
    assert shrunk_threshold(cut, 0, 10.0) == pytest.approx(0.5)  # no positives: back to 0.5
    assert abs(shrunk_threshold(cut, 100, 10.0) - 0.5) < abs(cut - 0.5)  # shrunk toward 0.5, never past it
    assert shrunk_threshold(0.2, 10, 10.0) == pytest.approx(1 / (1 + np.sqrt(4.0)))  # logit halved: odds 1:4 → 1:2


def test_centred_probabilities_clear_0_5_exactly_above_each_threshold():
    probs = np.array([[0.30, 0.10, 0.6], [0.05, 0.02, 0.20], [0.2, 0.9, 0.1]])
    thresholds = np.array([0.25, 0.5, 0.7])
    assert (centred(probs, thresholds, False) > 0.5).tolist() == (probs > thresholds).tolist()
    filled = centred(probs, thresholds, True) > 0.5
    # row 2 clears nothing: the option with the highest odds over its threshold (0.05 vs 0.25: 0.158;
    # 0.02 vs 0.5: 0.02; 0.20 vs 0.7: 0.107) is the single one predicted
    assert filled.tolist() == [[True, False, False], [True, False, False], [False, True, False]]


def test_tuned_thresholds_raise_out_of_fold_f1_over_0_5_and_survive_the_head_file(tagged):
    X, Y = tagged["X"][::4], tagged["Y"][::4]  # 60 titles, every topic 12 times
    tuned = OptionHead(at_least_one="never").fit(X, Y)
    plain = OptionHead(tune_thresholds=False, at_least_one="never").fit(X, Y)
    gain = tuned.threshold_gain_
    assert gain["cv_micro_f1"] > gain["cv_micro_f1_at_0.5"] + 0.1
    assert (plain.thresholds_ == 0.5).all() and plain.threshold_gain_["cv_micro_f1"] == gain["cv_micro_f1_at_0.5"]
    assert f1_score(Y, tuned.oof_predictions_, average="micro") == pytest.approx(gain["cv_micro_f1"], abs=1e-4)
    assert (tuned.thresholds_[:5] < 0.5).all()  # the topic heads are under-confident at 12 positives
    assert micro_f1(tuned, tagged["hX"], tagged["hY"]) > micro_f1(plain, tagged["hX"], tagged["hY"]) + 0.1
    again = head_from_bytes(head_bytes(tuned), "test")
    assert again.thresholds_ == pytest.approx(tuned.thresholds_) and again.at_least_one_ is False
    assert again.predict_proba(tagged["hX"]) == pytest.approx(tuned.predict_proba(tagged["hX"]))
    assert again.card()["thresholds"] == tuned.card()["thresholds"] == [round(t, 4) for t in tuned.thresholds_]


def test_at_least_one_option_engages_only_when_every_answer_chose_one(tagged):
    X, Y = tagged["X"][::8], tagged["Y"][::8]  # 30 titles
    head = OptionHead().fit(X, Y)
    assert head.at_least_one_ is True and (head.predict_proba(tagged["hX"]) > 0.5).any(axis=1).all()
    before = OptionHead(tune_thresholds=False, at_least_one="never").fit(X, Y)
    assert micro_f1(head, tagged["hX"], tagged["hY"]) > micro_f1(before, tagged["hX"], tagged["hY"]) + 0.2
    raw = head.option_probabilities(tagged["hX"])
    empty = ~(raw > head.thresholds_).any(axis=1)
    odds = np.log(raw / (1 - raw)) - np.log(head.thresholds_ / (1 - head.thresholds_))
    filled = head.predict_proba(tagged["hX"])[empty] > 0.5
    assert empty.any() and (filled.sum(axis=1) == 1).all() and (filled.argmax(1) == odds[empty].argmax(1)).all()
    no_business = Y.copy()
    no_business[:, 0] = 0  # business titles without a figure now have no option
    assert OptionHead().fit(X, no_business).at_least_one_ is False


def test_bad_settings_are_refused_by_name(tagged):
    with pytest.raises(InputError, match="at_least_one must be one of auto, always, never"):
        OptionHead(at_least_one="sometimes").fit(tagged["X"][:10], tagged["Y"][:10])
    with pytest.raises(InputError, match="threshold_shrinkage must be 0 or more"):
        OptionHead(threshold_shrinkage=-1).fit(tagged["X"][:10], tagged["Y"][:10])


def test_a_multi_select_round_records_its_thresholds_in_the_model_card(ctx, bbc_slice, tmp_path):
    topic = {r["id"]: r["label"] for r in read_jsonl(bbc_slice["gold"])}
    gold = tmp_path / "gold.jsonl"
    rows = [{"id": r["id"], "label": tags(r["text"], topic[r["id"]])} for r in read_jsonl(bbc_slice["pool"])]
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    heldout = tmp_path / "heldout.jsonl"
    held = [r | {"label": tags(r["text"], r["label"])} for r in read_jsonl(bbc_slice["heldout"])]
    heldout.write_text("".join(json.dumps(r) + "\n" for r in held), encoding="utf-8")
    answers = {"task_type": "multi_select", "labels": OPTIONS}
    interview_spec(InterviewInput(run="tags", pool=str(bbc_slice["pool"]), heldout=str(heldout), **answers), ctx)
    simulate(SimulateInput(run="tags", gold=str(gold), rounds=2, batch_size=15), ctx)
    run = ctx.root.run("tags")
    card = ModelDir(run, 2).card()["head"]
    assert len(card["thresholds"]) == len(OPTIONS) and card["at_least_one"] is True
    assert card["threshold_rule"].startswith("out-of-fold F1-maximizing cut")
    scored = ModelDir(run, 2).predictions()
    assert all(p for p in scored.heldout_pred)  # every predicted set names an option
    assert Path(ModelDir(run, 2).head_path).is_file()
