"""The multi_select head: one logit per option, each a binary head over the same features.

A multi_select answer is a set of options, so the head fits one binary head per option (the
logistic head, or a binomial GLMM with the run's random effects) and predicts each option's
probability on its own; the predicted set is the options above 0.5. An option the labels never
(or always) chose gets its smoothed share, (count + 1) / (n + 2), instead of a model.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from alloop.tools.errors import InputError
from alloop.tools.model.heads import Design, check_rows
from alloop.tools.run.schema import TaskSpec

BASES = ("logistic", "glmm")


class OptionHead(BaseEstimator):
    """fit(X, Y) with Y an n × k 0/1 matrix over the options; predict_proba gives P(option chosen)."""

    name: ClassVar[str] = "per_option"
    anchorable: ClassVar[bool] = False

    def __init__(
        self, base: str = "logistic", C: float | None = None, effects: str = "random_intercepts", random_state: int = 0
    ) -> None:
        self.base = base
        self.C = C
        self.effects = effects
        self.random_state = random_state

    @classmethod
    def from_spec(cls, spec: TaskSpec, base: str = "logistic", **overrides: Any) -> OptionHead:
        return cls(base=base, effects=spec.model.effects, random_state=spec.selection.seed, **overrides)

    def _binary_head(self) -> Any:
        if self.base == "glmm":
            from alloop.tools.glmm.head import GLMMHead

            return GLMMHead(n_classes=2, random_state=self.random_state, effects=self.effects, C=self.C)
        from alloop.tools.model.logistic import LogisticHead

        extra = {} if self.C is None else {"C": self.C}
        return LogisticHead(n_classes=2, random_state=self.random_state, **extra)

    def fit(self, X: np.ndarray, Y: np.ndarray, design: Design | None = None) -> OptionHead:
        if self.base not in BASES:
            raise InputError(f"a multi_select head is built on {' or '.join(BASES)}, got {self.base!r}")
        Y = np.asarray(Y, dtype=np.int64)
        check_rows(X, Y, design)
        n, k = Y.shape
        self.n_options_ = k
        self.share_ = (Y.sum(axis=0) + 1.0) / (n + 2.0)
        self.heads_ = [self._binary_head().fit(X, Y[:, j], design) if 0 < Y[:, j].sum() < n else None for j in range(k)]
        oof = [
            getattr(h, "oof_predictions_", None) if h is not None else self.share_[j] > 0.5
            for j, h in enumerate(self.heads_)
        ]
        self.oof_predictions_ = (
            None
            if any(o is None for o in oof)
            else np.column_stack([np.broadcast_to(o, n) for o in oof]).astype(np.int64)
        )
        return self

    def predict_proba(self, X: np.ndarray, design: Design | None = None) -> np.ndarray:
        """P(option chosen), n × k (rows need not sum to 1)."""
        out = np.tile(self.share_, (len(X), 1))
        for j, head in enumerate(self.heads_):
            if head is not None:
                out[:, j] = head.predict_proba(X, design)[:, 1]
        return out

    def card(self) -> dict[str, Any]:
        return {
            "head": self.name,
            "base": self.base,
            "family": "one binary head per option",
            "options_modelled": [j for j, h in enumerate(self.heads_) if h is not None],
            "options_constant": {j: round(float(self.share_[j]), 4) for j, h in enumerate(self.heads_) if h is None},
            "per_option": [None if h is None else h.card() for h in self.heads_],
        }
