"""The forced_choice family (conditional logit: a trial's options compete). With two options
and no random effects it is logistic regression on the attribute differences without an
intercept; with random effects it recovers a simulated truth."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.tools.errors import InputError
from alloop.tools.glmm.design import GLMMSpec, build_frame
from alloop.tools.glmm.model import fit


def _choices(n_part: int = 20, n_trial: int = 25, options: int = 3, seed: int = 4) -> dict:
    """Participants choose among `options` stimuli per trial: a participant-specific weight on
    x (mean 1, SD 0.5), a weight 0.5 on z, and item (stimulus) effects of SD 0.8."""
    rng = np.random.default_rng(seed)
    item_eff = rng.normal(size=60) * 0.8
    slope = 1.0 + rng.normal(size=n_part) * 0.5
    rows: dict[str, list] = {"trial": [], "participant": [], "item": [], "x": [], "z": [], "y": []}
    for p in range(n_part):
        for k in range(n_trial):
            items = rng.choice(60, options, replace=False)
            x, z = rng.normal(size=options), rng.normal(size=options)
            eta = slope[p] * x + 0.5 * z + item_eff[items]
            prob = np.exp(eta - eta.max())
            chosen = rng.choice(options, p=prob / prob.sum())
            for j in range(options):
                rows["trial"].append(f"p{p}t{k}")
                rows["participant"].append(f"p{p}")
                rows["item"].append(f"i{items[j]}")
                rows["x"].append(round(float(x[j]), 6))
                rows["z"].append(round(float(z[j]), 6))
                rows["y"].append(int(j == chosen))
    return {k: np.asarray(v, dtype=object) for k, v in rows.items()}


def test_two_options_equal_logistic_regression_on_differences() -> None:
    from sklearn.linear_model import LogisticRegression

    data = _choices(options=2)
    result = fit(build_frame(data, GLMMSpec("forced_choice", mode="fixed", trial="trial", predictors=("x", "z"))))
    X = np.column_stack([data["x"].astype(float), data["z"].astype(float)])
    diff = X[0::2] - X[1::2]
    first = data["y"][0::2].astype(int)
    reference = LogisticRegression(C=1e12, fit_intercept=False, tol=1e-12, max_iter=10000).fit(diff, first)
    np.testing.assert_allclose(result.beta, reference.coef_[0], atol=1e-4)
    assert result.frame.x_names == ("x", "z")


def test_random_slopes_and_item_intercepts_recover_the_simulation() -> None:
    data = _choices()
    spec = GLMMSpec("forced_choice", mode="random_slopes", trial="trial", predictors=("x", "z"), slopes=("x",))
    result = fit(build_frame(data, spec))
    report = result.to_json()
    assert report["converged"] and set(report["sd"]) == {"participant:x", "item:(Intercept)"}
    assert report["fixed"]["x"]["estimate"] == pytest.approx(1.0, abs=3 * report["fixed"]["x"]["se"])
    assert report["fixed"]["z"]["estimate"] == pytest.approx(0.5, abs=3 * report["fixed"]["z"]["se"])
    assert 0.2 < report["sd"]["participant:x"] < 0.9 and 0.4 < report["sd"]["item:(Intercept)"] < 1.3
    first = {k: v[:6] for k, v in data.items()}
    proba = result.predict_proba(first)
    assert proba.shape == (2, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert np.all(proba.argmax(axis=1) >= 0)


def test_trials_must_be_complete_with_one_choice() -> None:
    data = _choices(n_part=3, n_trial=4)
    short = {k: v[1:] for k, v in data.items()}
    with pytest.raises(InputError, match="same number"):
        build_frame(short, GLMMSpec("forced_choice", mode="fixed", trial="trial", predictors=("x",)))
    two = dict(data)
    two["y"] = data["y"].copy()
    two["y"][:3] = 1
    with pytest.raises(InputError, match="exactly one row"):
        build_frame(two, GLMMSpec("forced_choice", mode="fixed", trial="trial", predictors=("x",)))
    with pytest.raises(InputError, match="needs a trial column"):
        GLMMSpec("forced_choice")


def test_grouped_cv_and_predictive_check_for_choices() -> None:
    from alloop.tools.glmm.evaluation import grouped_cv, ppc_summary

    data = _choices(n_part=12, n_trial=15)
    spec = GLMMSpec("forced_choice", mode="random_intercepts", trial="trial", predictors=("x", "z"))
    report = grouped_cv(data, spec, folds=3)
    assert report["n"] == 12 * 15 * 3 and report["metrics"]["n"] == 12 * 15
    assert report["metrics"]["accuracy"] > 1 / 3  # better than guessing among three
    check = ppc_summary(fit(build_frame(data, spec)), n_sims=100)
    assert [c["statistic"] for c in check["checks"]][:3] == ["P(y = 0)", "P(y = 1)", "P(y = 2)"]


def test_the_loops_conditional_logit_head_is_the_engines_fixed_effects_choice_model() -> None:
    """The loop's forced_choice head (options' features side by side, weights shared by the options)
    fits what the GLMM engine's conditional logit fits, here on three options and a nearly flat prior."""
    from alloop.tools.model.choice_head import ConditionalLogitHead
    from alloop.tools.model.head_files import head_bytes, head_from_bytes

    data = _choices(options=3)
    reference = fit(build_frame(data, GLMMSpec("forced_choice", mode="fixed", trial="trial", predictors=("x", "z"))))
    X = np.column_stack([data["x"].astype(float), data["z"].astype(float)]).reshape(-1, 3, 2)
    chosen = data["y"].astype(int).reshape(-1, 3).argmax(axis=1)
    head = ConditionalLogitHead(n_options=3, C=1e8, position_effects=False).fit(X.reshape(len(X), 6), chosen)
    np.testing.assert_allclose(head.coef_, reference.beta, atol=1e-4)
    assert head.converged_ and head.card()["position_constants"] == [0.0, 0.0, 0.0]
    again = head_from_bytes(head_bytes(head), "test")
    np.testing.assert_allclose(again.predict_proba(X.reshape(len(X), 6)), head.predict_proba(X.reshape(len(X), 6)))
