"""The forced_choice head: a conditional logit over each item's options.

A forced-choice item offers k options (each a text, embedded on its own) and the answer is the
one chosen. The options compete: utility u_j = w·x_j + b_j and P(j) = softmax_j(u), where x_j is
option j's embedding, w is shared by all options (what makes an option the one people choose)
and b_j an unpenalized constant per position (a bias toward the first button, say; b_1 = 0).
This is the GLMM engine's `forced_choice` family without random effects (tests/glmm checks the
two agree). scikit-learn has no conditional logit (its multinomial logit gives every class its
own weights over one feature vector), so the fit is a short L-BFGS on the penalized likelihood
C·Σ −log P(chosen) + ‖w‖²/2, with the same C (prior variance) as the logistic head.

Features arrive as one row per item with the k option embeddings side by side (n × k·d), so the
head keeps the loop's `fit(X, y)` interface; task_types.features lays them out.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from alloop.tools.errors import InputError
from alloop.tools.model.heads import Design, check_rows
from alloop.tools.run.schema import TaskSpec


def conditional_logit_fit(
    X: np.ndarray, y: np.ndarray, C: float, position: bool = True
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Weights w (d), position constants b (k, b_0 = 0) and whether L-BFGS converged, for X n × k × d."""
    from scipy.optimize import minimize
    from scipy.special import log_softmax, softmax

    n, k, d = X.shape
    chosen = np.zeros((n, k))
    chosen[np.arange(n), y] = 1.0
    free = k - 1 if position else 0

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], np.concatenate([[0.0], theta[d:]]) if position else np.zeros(k)
        U = X @ w + b
        residual = softmax(U, axis=1) - chosen  # ∂(−log P(chosen))/∂U
        value = -C * float((chosen * log_softmax(U, axis=1)).sum()) + 0.5 * float(w @ w)
        gw = C * np.einsum("nk,nkd->d", residual, X) + w
        gb = C * residual.sum(axis=0)[1:]
        return value, np.concatenate([gw, gb[:free]])

    result = minimize(objective, np.zeros(d + free), jac=True, method="L-BFGS-B", options={"maxiter": 5000})
    w = result.x[:d]
    b = np.concatenate([[0.0], result.x[d:]]) if position else np.zeros(k)
    return w, b, bool(result.success)


def choice_probabilities(X: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """softmax over each item's options of w·x_j + b_j (X n × k × d)."""
    from scipy.special import softmax

    return softmax(X @ w + b, axis=1)


class ConditionalLogitHead(BaseEstimator):
    """fit(X, y) with X n × k·d (the options' embeddings side by side) and y the chosen option's index."""

    name: ClassVar[str] = "conditional_logit"
    anchorable: ClassVar[bool] = False

    def __init__(
        self,
        n_options: int = 2,
        C: float = 10.0,
        position_effects: bool = True,
        cv_folds: int = 3,
        random_state: int = 0,
    ) -> None:
        self.n_options = n_options
        self.C = C
        self.position_effects = position_effects
        self.cv_folds = cv_folds
        self.random_state = random_state

    @classmethod
    def from_spec(cls, spec: TaskSpec, **overrides: Any) -> ConditionalLogitHead:
        return cls(n_options=len(spec.labels), random_state=spec.selection.seed, **overrides)

    def _options(self, X: np.ndarray) -> np.ndarray:
        if X.ndim != 2 or X.shape[1] % self.n_options:
            raise InputError(f"a forced_choice head needs n × {self.n_options}·d option features, got {X.shape}")
        return np.asarray(X, dtype=np.float64).reshape(len(X), self.n_options, -1)

    def fit(self, X: np.ndarray, y: np.ndarray, design: Design | None = None) -> ConditionalLogitHead:
        if not self.C > 0:
            raise InputError(f"C must be a positive number, got {self.C!r}")
        y = np.asarray(y, dtype=np.int64)
        check_rows(X, y, design)
        options = self._options(X)
        self.coef_, self.position_, self.converged_ = conditional_logit_fit(options, y, self.C, self.position_effects)
        self.n_train_ = len(y)
        self.oof_predictions_ = self._out_of_fold(options, y)
        return self

    def _out_of_fold(self, options: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """Each row's chosen option predicted by a fit without its fold (the cv_* figures)."""
        from sklearn.model_selection import KFold

        folds = min(self.cv_folds, len(y))
        if folds < 2:
            return None
        oof = np.empty(len(y), dtype=np.int64)
        for train, test in KFold(folds, shuffle=True, random_state=self.random_state).split(options):
            w, b, _ = conditional_logit_fit(options[train], y[train], self.C, self.position_effects)
            oof[test] = choice_probabilities(options[test], w, b).argmax(axis=1)
        return oof

    def predict_proba(self, X: np.ndarray, design: Design | None = None) -> np.ndarray:
        """P(option j chosen), n × k (rows sum to 1)."""
        return choice_probabilities(self._options(X), self.coef_, self.position_)

    def card(self) -> dict[str, Any]:
        return {
            "head": self.name,
            "family": "conditional logit over the options' embeddings (softmax of w·x_option + position constant)",
            "C": self.C,
            "n_options": self.n_options,
            "position_constants": [round(float(v), 4) for v in self.position_],
            "weight_norm": round(float(np.linalg.norm(self.coef_)), 4),
            "converged": self.converged_,
            "n_train": self.n_train_,
        }
