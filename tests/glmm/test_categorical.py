"""The categorical (baseline-category multinomial logit) family. No lme4 oracle exists for it;
it is checked against two exact references: with two categories it is the binary GLMM (same
Laplace log-likelihood, estimates and SDs), and without random effects it is the multinomial
maximum-likelihood fit (scikit-learn, unpenalized)."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.tools.errors import InputError
from alloop.tools.glmm.design import GLMMSpec, build_frame
from alloop.tools.glmm.model import fit


def test_two_categories_equal_the_binary_glmm(binary_data: dict) -> None:
    spec = dict(mode="random_intercepts", predictors=("x", "c"))
    binary = fit(build_frame(binary_data, GLMMSpec("binary", **spec))).to_json()
    categorical = fit(build_frame(binary_data, GLMMSpec("categorical", **spec))).to_json()
    assert categorical["loglik"] == pytest.approx(binary["loglik"], abs=1e-6)
    for name, value in binary["fixed"].items():
        assert categorical["fixed"][f"1:{name}"]["estimate"] == pytest.approx(value["estimate"], abs=1e-5)
        assert categorical["fixed"][f"1:{name}"]["se"] == pytest.approx(value["se"], rel=1e-4)
    for group in ("participant", "item"):
        expected = binary["sd"][f"{group}:(Intercept)"]
        assert categorical["sd"][f"{group}:1:(Intercept)"] == pytest.approx(expected, rel=1e-5)


def test_fixed_effects_equal_multinomial_maximum_likelihood(ordinal_data: dict) -> None:
    from sklearn.linear_model import LogisticRegression

    data = dict(ordinal_data)
    y = np.asarray([min(3, (int(v) + 1) // 2) for v in data["y"]])  # three categories 1, 2, 3
    data["y"] = y.astype(str).astype(object)
    result = fit(build_frame(data, GLMMSpec("categorical", mode="fixed", predictors=("x", "c"))))
    X = np.column_stack([data["x"].astype(float), data["c"].astype(float)])
    reference = LogisticRegression(C=1e12, max_iter=10000, tol=1e-12).fit(X, y)
    ll = np.log(reference.predict_proba(X)[np.arange(len(y)), y - 1]).sum()
    assert result.loglik == pytest.approx(ll, abs=1e-4)
    ours = result.predict_proba({"x": data["x"], "c": data["c"]})
    np.testing.assert_allclose(ours, reference.predict_proba(X), atol=1e-4)
    assert result.frame.x_names[:3] == ("2:(Intercept)", "2:x", "2:c")


def test_random_slopes_refused_for_categorical(binary_data: dict) -> None:
    with pytest.raises(InputError, match="random_slopes is not available for the categorical family"):
        build_frame(binary_data, GLMMSpec("categorical", mode="random_slopes", predictors=("x",)))
