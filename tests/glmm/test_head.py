"""The GLMM head behind train_glmm: features with a Gaussian prior, design predictors and
participant/item random effects; the pool predicted at the population level."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.tools.errors import InputError
from alloop.tools.glmm.head import GLMMHead
from alloop.tools.model.heads import HEADS, Design, make_head
from alloop.tools.run.schema import TaskSpec


def _judgments(n_items: int = 60, n_part: int = 12, per_item: int = 4, d: int = 24, seed: int = 0):
    """Items with low-rank features that carry the item's latent acceptability, judged by
    participants who differ in their bias (a participant random intercept of SD 1.2)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_items, 3))
    F = latent @ rng.normal(size=(3, d)) + 0.3 * rng.normal(size=(n_items, d))
    bias = rng.normal(size=n_part) * 1.2
    rows = [(i, p) for i in range(n_items) for p in rng.choice(n_part, per_item, replace=False)]
    it = np.array([i for i, _ in rows])
    pa = np.array([p for _, p in rows])
    eta = 1.5 * latent[it, 0] + bias[pa]
    y = (rng.random(len(rows)) < 1 / (1 + np.exp(-eta))).astype(int)
    design = Design(participants=np.array([f"p{p}" for p in pa]), items=np.array([f"i{i}" for i in it]))
    return F, F[it], y, design, latent[:, 0], bias, pa


def test_registered_under_glmm() -> None:
    assert HEADS["glmm"] is GLMMHead
    spec = TaskSpec(run="r", task_type="binary", labels=["no", "yes"], model={"effects": "random_intercepts"})
    head = make_head("glmm", spec, C=None)
    assert isinstance(head, GLMMHead) and head.get_params()["effects"] == "random_intercepts"


def test_random_intercepts_estimated_and_pool_ranked_by_features() -> None:
    F, X, y, design, item_truth, _, _ = _judgments()
    head = GLMMHead(n_classes=2, effects="random_intercepts").fit(X, y, design)
    card = head.card()
    assert card["effects"] == "random_intercepts" and card["family"] == "binary"
    sd = card["fits"][0]["sd"]
    assert sd["participant:(Intercept)"] > 0.4  # the participant spread is found, not penalized away
    assert sd["features:(prior)"] > 0
    proba = head.predict_proba(F)  # the pool: no design, unseen participants and items
    assert proba.shape == (len(F), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert np.corrcoef(proba[:, 1], item_truth)[0, 1] > 0.8


def test_population_prediction_integrates_over_participants() -> None:
    """Unseen participants are integrated over: the population probability is pulled toward
    0.5 relative to plugging in a zero random effect, by the participant variance."""
    F, X, y, design, _, _, _ = _judgments()
    head = GLMMHead(n_classes=2, effects="random_intercepts").fit(X, y, design)
    fit = head.fits_[0]
    Xs = ((F - head.mean_) / head.scale_) @ head.basis_
    plug_in = fit.predict_proba({}, features=Xs, marginal=False)[:, 1]
    marginal = head.predict_proba(F)[:, 1]
    far = np.abs(plug_in - 0.5) > 0.2
    assert np.all(np.abs(marginal[far] - 0.5) < np.abs(plug_in[far] - 0.5))


def test_seen_participants_use_their_random_effect() -> None:
    F, X, y, design, _, bias, _ = _judgments()
    head = GLMMHead(n_classes=2, effects="random_intercepts").fit(X, y, design)
    lenient, strict = f"p{int(np.argmax(bias))}", f"p{int(np.argmin(bias))}"
    rows = F[:10]
    p_len = head.predict_proba(rows, Design(participants=np.array([lenient] * 10)))[:, 1]
    p_str = head.predict_proba(rows, Design(participants=np.array([strict] * 10)))[:, 1]
    assert np.all(p_len > p_str)


def test_item_level_training_without_design_is_a_ridge_with_estimated_prior() -> None:
    F, _, _, _, item_truth, _, _ = _judgments()
    y = (item_truth > 0).astype(int)
    head = GLMMHead(n_classes=2).fit(F, y)
    assert head.card()["effects"] == "fixed"
    assert (head.predict_proba(F).argmax(axis=1) == y).mean() > 0.85


def test_categorical_one_vs_rest_and_unseen_class() -> None:
    F, _, _, _, item_truth, _, _ = _judgments()
    y = np.digitize(item_truth, [-0.5, 0.5])  # classes 0, 1, 2 of a 4-class schema
    head = GLMMHead(n_classes=4).fit(F, y)
    proba = head.predict_proba(F)
    assert proba.shape == (len(F), 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert np.all(proba[:, 3] == 0)
    assert (proba.argmax(axis=1) == y).mean() > 0.7


def test_ordinal_scale_uses_cumulative_logit() -> None:
    F, _, _, _, item_truth, _, _ = _judgments()
    y = np.digitize(item_truth, [-1, -0.3, 0.3, 1])  # 5 scale points
    head = GLMMHead(n_classes=5, task_type="ordinal_scale").fit(F, y)
    card = head.card()
    assert card["family"] == "ordinal" and len(card["fits"][0]["thresholds"]) == 4
    expected = head.predict_proba(F) @ np.arange(5)
    assert np.corrcoef(expected, y)[0, 1] > 0.8


def test_one_class_is_refused() -> None:
    with pytest.raises(InputError, match="at least two classes"):
        GLMMHead(n_classes=2).fit(np.eye(4), np.zeros(4, dtype=int))


def test_train_glmm_and_score_pool_with_the_glmm_head(looped_copy, ctx) -> None:
    """The real loop: train_glmm with head 'glmm' on the BBC run (item-level labels, five
    topics), then score_pool reads the pickled head and scores the pool."""
    from alloop.tools.score_pool import ScoreInput, score_pool
    from alloop.tools.train_glmm import TrainInput, train_glmm

    out = train_glmm(TrainInput(run=looped_copy, head="glmm"), ctx)
    assert out.card["head"]["head"] == "glmm"
    assert out.card["head"]["family"] == "categorical (one-vs-rest)"
    assert all(f["converged"] for f in out.card["head"]["fits"])
    assert out.gold["gold_accuracy"] > 0.4  # five topics from 30 titles: well above chance
    scored = score_pool(ScoreInput(run=looped_copy), ctx)
    assert scored.model_dump()  # the pool was scored with the GLMM head


def test_design_predictors_with_participant_slopes() -> None:
    """A design predictor (say, a condition) gets a fixed effect and participant slopes; pool
    rows without a design are predicted at the predictor's training mean."""
    F, X, y, design, _, _, _ = _judgments(seed=2)
    rng = np.random.default_rng(0)
    condition = rng.choice([-0.5, 0.5], size=len(y))
    with_condition = Design(
        participants=design.participants,
        items=design.items,
        predictors=condition[:, None],
        predictor_names=("condition",),
    )
    head = GLMMHead(n_classes=2, effects="random_slopes").fit(X, y, with_condition)
    card = head.card()
    assert card["effects"] == "random_slopes" and card["predictors"] == ["condition"]
    assert set(card["fits"][0]["fixed"]) == {"(Intercept)", "condition"}
    assert "participant:condition" in card["fits"][0]["sd"]
    proba = head.predict_proba(F)
    np.testing.assert_allclose(proba.sum(axis=1), 1)


def test_train_glmm_per_response_with_participant_and_item_effects(new_run, ctx, bbc_slice, tmp_path) -> None:
    """prediction_unit 'response': every answer is a row with its annotator (participant) and
    item; spec.model.effects = random_intercepts gives a GLMM with both variance components."""
    import json

    from alloop.tools.import_labels import ImportInput, import_labels
    from alloop.tools.train_glmm import TrainInput, train_glmm

    run = new_run("responses", prediction_unit="response", effects="random_intercepts")
    gold = [json.loads(line) for line in bbc_slice["gold"].read_text().splitlines()][::6]  # all topics
    labels = sorted({g["label"] for g in gold})
    rng = np.random.default_rng(0)
    lines = ["id,label,annotator"]
    for a in range(6):
        for g in rng.choice(gold, 20, replace=False):
            wrong = rng.random() < 0.1 * a  # annotators differ in how often they mislabel
            lines.append(f"{g['id']},{rng.choice(labels) if wrong else g['label']},ann{a}")
    answers = tmp_path / "answers.csv"
    answers.write_text("\n".join(lines) + "\n")
    import_labels(ImportInput(run=run, file=str(answers)), ctx)

    out = train_glmm(TrainInput(run=run, head="glmm"), ctx)
    head = out.card["head"]
    assert head["requested_effects"] == "random_intercepts" and head["effects"] == "random_intercepts"
    assert all({"participant:(Intercept)", "item:(Intercept)"} <= set(f["sd"]) for f in head["fits"])
    assert out.n_labeled == 120
