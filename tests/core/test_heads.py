"""The logistic head against scikit-learn: the anchored prior, calibration, unseen classes, metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, mean_absolute_error, root_mean_squared_error

from alloop.tools.glmm.head import GLMMHead
from alloop.tools.model.heads import Design
from alloop.tools.model.logistic import LogisticHead, anchored_logistic_fit
from alloop.tools.model.metrics import label_metrics


def blobs(n: int, k: int, d: int = 5, seed: int = 0, shift: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = rng.normal(0, shift, (k, d))
    return centres[y] + rng.normal(0, 1, (n, d)), y


class _Zero:
    """An anchor at the origin: the anchored objective is then scikit-learn's own."""

    def __init__(self, k: int, d: int) -> None:
        self.coef_, self.intercept_ = np.zeros((k, d)), np.zeros(k)


@pytest.mark.parametrize("k", [2, 3])
def test_with_a_zero_anchor_the_anchored_fit_is_scikit_learns(k):
    X, y = blobs(90, k)
    reference = LogisticRegression(C=0.5, max_iter=5000, tol=1e-10).fit(X, y)

    ours = anchored_logistic_fit(X, y, 0.5, _Zero(1 if k == 2 else k, X.shape[1]))

    np.testing.assert_allclose(ours.coef_, reference.coef_, atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=1e-4)


def test_new_only_remembers_what_earlier_rounds_taught():
    """A prior centred on the previous weights: a small new batch moves the model, it does not replace it."""
    X, y = blobs(400, 3, seed=1, shift=0.8)
    X_test, y_test = blobs(400, 3, seed=1, shift=0.8)[0][200:], y[200:]
    earlier = LogisticHead(C=1.0, n_classes=3).fit(X[:180], y[:180])
    batch = slice(180, 201)

    anchored = LogisticHead(C=1.0, n_classes=3).fit(X[batch], y[batch], anchor=earlier, sequential=True)
    forgetful = LogisticHead(C=1.0, n_classes=3).fit(X[batch], y[batch])

    assert anchored.anchored_ and not forgetful.anchored_
    agree_earlier = (anchored.predict_proba(X_test).argmax(1) == earlier.predict_proba(X_test).argmax(1)).mean()
    agree_cold = (forgetful.predict_proba(X_test).argmax(1) == earlier.predict_proba(X_test).argmax(1)).mean()
    assert agree_earlier > agree_cold
    assert f1_score(y_test, anchored.predict_proba(X_test).argmax(1), average="macro") > f1_score(
        y_test, forgetful.predict_proba(X_test).argmax(1), average="macro"
    )


def test_fine_tune_differs_from_retrain_and_says_so():
    X, y = blobs(120, 3, seed=2)
    earlier = LogisticHead(n_classes=3).fit(X[:60], y[:60])

    fine = LogisticHead(n_classes=3).fit(X, y, anchor=earlier)
    fresh = LogisticHead(n_classes=3).fit(X, y)

    assert fine.card()["anchored_to_previous"] is True
    assert not np.allclose(fine.model_.coef_, fresh.model_.coef_, atol=1e-3)


def test_fine_tune_does_not_count_earlier_labels_twice():
    """A pull toward the previous weights beside the usual prior: refitting the same labels round after
    round settles at the retrain optimum instead of drifting toward an unpenalized fit."""
    X, y = blobs(150, 3, seed=5, shift=3.0)  # nearly separable: an unpenalized fit would diverge
    retrain = LogisticHead(n_classes=3).fit(X, y)
    head = retrain
    for _ in range(8):
        head = LogisticHead(n_classes=3).fit(X, y, anchor=head)

    assert head.anchored_ and not head.sequential_
    np.testing.assert_allclose(head.model_.predict_proba(X), retrain.model_.predict_proba(X), atol=5e-3)
    assert np.linalg.norm(head.model_.coef_) == pytest.approx(np.linalg.norm(retrain.model_.coef_), rel=0.02)


def test_an_anchor_with_other_classes_is_refused_with_a_reason():
    X, y = blobs(60, 3)
    earlier = LogisticHead(n_classes=3).fit(X[y != 2], y[y != 2])

    head = LogisticHead(n_classes=3).fit(X, y, anchor=earlier)

    assert not head.anchored_ and "classes" in head.anchor_note_


def test_heads_follow_scikit_learn_conventions():
    logistic = LogisticHead(C=3.0, n_classes=4)
    glmm = GLMMHead(n_classes=2, C=4.0, effects="fixed")

    assert clone(logistic).get_params() == logistic.get_params()
    assert glmm.get_params()["C"] == 4.0 and clone(glmm).get_params() == glmm.get_params()
    assert GLMMHead(effects="nonsense").effects == "nonsense"  # stored as given, checked in fit


def test_a_class_not_yet_labeled_gets_a_small_probability_not_zero():
    X, y = blobs(20, 2)

    head = LogisticHead(n_classes=3).fit(X, y)
    probs = head.predict_proba(X)

    np.testing.assert_allclose(probs[:, 2], 1 / (20 + 3))
    np.testing.assert_allclose(probs.sum(axis=1), 1)


def test_calibration_says_when_it_could_not_fit():
    X, y = blobs(11, 2)
    y[-1], y[:-1] = 1, 0  # class 1 has a single label

    head = LogisticHead(n_classes=2).fit(X, y)

    assert head.temperature_ == 1.0
    assert head.card()["calibration"] == {
        "fitted": False,
        "reason": "a class has a single label: no out-of-fold logits",
    }


def test_the_temperature_shrinks_toward_one_with_few_labels():
    X, y = blobs(24, 2, shift=0.3, seed=4)

    head = LogisticHead(n_classes=2).fit(X, y)
    fitted = head.calibration_["temperature_fitted"]

    assert head.calibration_["shrinkage"] == pytest.approx(24 / 74, abs=1e-4)
    assert head.temperature_ == pytest.approx(fitted ** (24 / 74), rel=1e-3)
    assert head.oof_predictions_.shape == (24,)


def test_design_rows_must_match_the_features():
    X, y = blobs(20, 2)
    design = Design(predictors=np.ones((40, 1)), predictor_names=("n",))

    with pytest.raises(Exception, match="design predictors have 40 rows"):
        LogisticHead(n_classes=2).fit(X, y, design)


def test_macro_f1_averages_over_the_schema_as_scikit_learn_does():
    gold, predicted = ["a", "a", "b", "b"], ["a", "c", "b", "b"]

    figures = label_metrics(gold, predicted, ["a", "b", "c"])

    expected = f1_score(gold, predicted, labels=["a", "b", "c"], average="macro", zero_division=0)
    assert figures["gold_macro_f1"] == pytest.approx(expected) == pytest.approx(0.5556, abs=1e-4)
    assert json.loads(figures["gold_f1_by_class"])["c"] is None  # absent from gold: empty, not 0
    right = gold_and_schema = label_metrics(gold, gold, ["a", "b", "c"])
    assert right["gold_macro_f1"] == gold_and_schema["gold_macro_f1"] == 1.0  # c nowhere yet: not a 0 in the mean


def test_ordinal_scales_get_errors_in_scale_points():
    scale = ["1", "2", "3", "4", "5"]
    gold, predicted = ["1", "2", "3", "5", "4"], ["2", "2", "3", "3", "5"]

    figures = label_metrics(gold, predicted, scale, ordinal=True)

    g, p = [int(v) - 1 for v in gold], [int(v) - 1 for v in predicted]
    assert figures["gold_mae"] == pytest.approx(mean_absolute_error(g, p))
    assert figures["gold_rmse"] == pytest.approx(root_mean_squared_error(g, p))
    assert figures["gold_spearman"] is not None
