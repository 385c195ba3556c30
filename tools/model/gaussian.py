"""The magnitude head: Bayesian ridge regression over the features, with a predictive sd.

A magnitude (a reading time, a rating on an open scale) is a number, so the head is Gaussian:
scikit-learn's BayesianRidge, whose evidence-maximized priors need no tuning on a few dozen
labels and whose predictive sd (weights and noise) is the uncertainty select_batch reads.
Positive, right-skewed magnitudes (reading times) are fitted on the log scale: spec.model.head
'lognormal' always does (every label must then be positive, which run/labels.py checks where
labels enter), 'gaussian' never, and the default 'auto' when every label is positive and the
logs are less skewed than the values.
Predictions are then the median exp(μ) and the sd stays on the log scale (a relative spread).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from alloop.tools.errors import InputError
from alloop.tools.model.heads import Design, check_rows
from alloop.tools.run.schema import TaskSpec

LOG_SCALE = ("auto", "yes", "no")
SCALE_OF_HEAD = {"lognormal": "yes", "gaussian": "no"}
"""A magnitude spec's model.head says the scale: a log-normal model is a Gaussian on the log scale."""


def prefers_log(y: np.ndarray) -> bool:
    """Positive values whose logs are less skewed than the values themselves."""
    from scipy.stats import skew

    if len(y) < 3 or (y <= 0).any() or y.std() == 0:
        return False
    return bool(abs(skew(np.log(y))) < abs(skew(y)))


class GaussianHead(BaseEstimator):
    """fit(X, y) with y numbers; predict_scores gives each row's predictive mean and sd."""

    name: ClassVar[str] = "gaussian"
    anchorable: ClassVar[bool] = False

    def __init__(self, log_scale: str = "auto", cv_folds: int = 3) -> None:
        self.log_scale = log_scale
        self.cv_folds = cv_folds

    @classmethod
    def from_spec(cls, spec: TaskSpec, **overrides: Any) -> GaussianHead:
        """spec.model.head 'lognormal' fits on the log scale, 'gaussian' on the values; else 'auto'."""
        scale = SCALE_OF_HEAD.get(spec.model.head, "auto")
        return cls(**({"log_scale": scale} | {k: v for k, v in overrides.items() if k != "C"}))

    def fit(self, X: np.ndarray, y: np.ndarray, design: Design | None = None) -> GaussianHead:
        from sklearn.linear_model import BayesianRidge
        from sklearn.model_selection import cross_val_predict

        y = np.asarray(y, dtype=np.float64)
        check_rows(X, y, design)
        if self.log_scale not in LOG_SCALE:
            raise InputError(f"log_scale must be one of {', '.join(LOG_SCALE)}, got {self.log_scale!r}")
        if not np.isfinite(y).all():
            raise InputError("magnitude labels must be finite numbers")
        if self.log_scale == "yes" and (y <= 0).any():
            raise InputError(f"a log scale needs positive magnitudes; the smallest label is {y.min():g}")
        self.log_ = self.log_scale == "yes" or (self.log_scale == "auto" and prefers_log(y))
        target = np.log(y) if self.log_ else y
        self.model_ = BayesianRidge().fit(X, target)
        self.n_train_ = len(y)
        folds = min(self.cv_folds, len(y))
        oof = cross_val_predict(BayesianRidge(), X, target, cv=folds) if folds >= 2 else None
        self.oof_predictions_ = None if oof is None else (np.exp(oof) if self.log_ else oof)
        return self

    def predict_scores(self, X: np.ndarray, design: Design | None = None) -> np.ndarray:
        """n × 2: the predicted magnitude (the median where fitted on logs) and the predictive sd."""
        mean, sd = self.model_.predict(X, return_std=True)
        return np.column_stack([np.exp(mean) if self.log_ else mean, sd])

    def card(self) -> dict[str, Any]:
        return {
            "head": self.name,
            "family": "gaussian (BayesianRidge)",
            "scale": "log (prediction exp(μ), sd on the log scale)" if self.log_ else "linear",
            "noise_sd": round(float(1 / np.sqrt(self.model_.alpha_)), 4),
            "weight_prior_sd": round(float(1 / np.sqrt(self.model_.lambda_)), 4),
            "n_train": self.n_train_,
        }
