"""The multi_select head: one logit per option, each a binary head over the same features.

A multi_select answer is a set of options, so the head fits one binary head per option (the
logistic head, or a binomial GLMM with the run's random effects) and predicts each option's
probability on its own. An option the labels never (or always) chose gets its smoothed share,
(count + 1) / (n + 2), instead of a model.

The predicted set is not "every option above 0.5": with few labels a rare option's head rarely
reaches 0.5, and at 30 BBC labels that rule's micro-F1 was 0.17 (benchmarks/README.md). Two
rules, measured there, replace it:

- Per-option thresholds, tuned out of fold: each option's binary head is refitted on the other
  folds (stratified by that option; grouped by item when rows are responses), and the cut between
  its out-of-fold probabilities that maximizes that option's F1 is taken, its logit shrunk toward
  0 (the 0.5 threshold) by P / (P + `threshold_shrinkage`) for an option with P positives, so a
  handful of positives cannot set an extreme cut. An option with fewer than two positives or
  negatives keeps 0.5.
- At least one option: when every labeled answer chose an option (`at_least_one="auto"`), the
  predicted set is the most probable non-empty set under the heads, which is the set above the
  thresholds or, when that is empty, the single option with the highest odds over its threshold.

`predict_proba` returns decision-centred probabilities, so that every reader of score rows
(prediction, gold_* figures, summed option entropy) decides at 0.5: each option's logit moved by
−logit(threshold) (an intercept shift that puts its 0.5 point at the tuned threshold), and on a
row where no option clears its threshold the logits moved up together until the highest one
stands just above 0.5 (σ(0.01)), the others just below. `option_probabilities` gives the heads'
own probabilities. The out-of-fold decisions (`oof_predictions_`, read as the cv_* figures) use
thresholds tuned on the other folds only, so the tuning does not grade itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import expit, logit
from sklearn.base import BaseEstimator

from alloop.tools.errors import InputError
from alloop.tools.model.heads import Design, check_rows
from alloop.tools.run.schema import TaskSpec

BASES = ("logistic", "glmm")
AT_LEAST_ONE = ("auto", "always", "never")
FOLDS = 3
LIFT = 0.01
"""Logit of the top option on a row the at-least-one rule fills: σ(0.01) ≈ 0.5025."""
_EDGE = 1e-9


def f1_threshold(probs: np.ndarray, chosen: np.ndarray) -> float:
    """The cut that maximizes F1 of `probs > cut` against 0/1 `chosen`, midway between two probabilities.

    Ties in F1 go to the highest cut (the fewest options ticked); cuts fall only between distinct
    probabilities, so a tie of probabilities is never split.
    """
    order = np.argsort(-probs, kind="stable")
    ranked, hits = probs[order], chosen[order]
    f1 = 2.0 * np.cumsum(hits) / (np.arange(1, len(hits) + 1) + hits.sum())
    f1[np.r_[ranked[1:] >= ranked[:-1], False]] = -1.0  # no cut inside a run of equal probabilities
    best = int(f1.argmax())
    below = ranked[best + 1] if best + 1 < len(ranked) else 0.0
    return float((ranked[best] + below) / 2.0)


def shrunk_threshold(cut: float, positives: int, strength: float) -> float:
    """`cut` with its logit shrunk toward 0 (the 0.5 threshold) by positives / (positives + strength)."""
    weight = positives / (positives + strength) if strength > 0 else 1.0
    return float(expit(weight * logit(np.clip(cut, 0.01, 0.99))))


def centred(probs: np.ndarray, thresholds: np.ndarray, at_least_one: bool) -> np.ndarray:
    """Probabilities whose 0.5 point is each option's threshold; with `at_least_one`, no row below it everywhere."""
    z = logit(np.clip(probs, _EDGE, 1 - _EDGE)) - logit(thresholds)
    if at_least_one and z.shape[1]:
        top = z.max(axis=1, keepdims=True)
        empty = top[:, 0] <= 0
        lifted = z[empty] - top[empty] - LIFT  # the others move with the top one, kept below 0.5
        lifted[np.arange(len(lifted)), z[empty].argmax(axis=1)] = LIFT
        z[empty] = lifted
    return expit(z)


class OptionHead(BaseEstimator):
    """fit(X, Y) with Y an n × k 0/1 matrix over the options; predict_proba gives decision-centred P(option chosen)."""

    name: ClassVar[str] = "per_option"
    anchorable: ClassVar[bool] = False

    def __init__(
        self,
        base: str = "logistic",
        C: float | None = None,
        effects: str = "random_intercepts",
        random_state: int = 0,
        tune_thresholds: bool = True,
        threshold_shrinkage: float = 10.0,
        at_least_one: str = "auto",
    ) -> None:
        self.base = base
        self.C = C
        self.effects = effects
        self.random_state = random_state
        self.tune_thresholds = tune_thresholds
        self.threshold_shrinkage = threshold_shrinkage
        self.at_least_one = at_least_one

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

    def _check(self) -> None:
        if self.base not in BASES:
            raise InputError(f"a multi_select head is built on {' or '.join(BASES)}, got {self.base!r}")
        if self.at_least_one not in AT_LEAST_ONE:
            raise InputError(f"at_least_one must be one of {', '.join(AT_LEAST_ONE)}, got {self.at_least_one!r}")
        if not self.threshold_shrinkage >= 0:
            raise InputError(f"threshold_shrinkage must be 0 or more, got {self.threshold_shrinkage!r}")

    def fit(self, X: np.ndarray, Y: np.ndarray, design: Design | None = None) -> OptionHead:
        self._check()
        Y = np.asarray(Y, dtype=np.int64)
        check_rows(X, Y, design)
        n, k = Y.shape
        self.n_options_ = k
        self.share_ = (Y.sum(axis=0) + 1.0) / (n + 2.0)
        self.heads_ = [self._binary_head().fit(X, Y[:, j], design) if 0 < Y[:, j].sum() < n else None for j in range(k)]
        self.at_least_one_ = self.at_least_one == "always" or (
            self.at_least_one == "auto" and bool(Y.any(axis=1).all())
        )
        oof = self._out_of_fold(X, Y, design)
        self.thresholds_ = self._thresholds(oof, Y)
        self.oof_predictions_, self.threshold_gain_ = self._oof_decisions(oof, Y)
        return self

    def _out_of_fold(self, X: np.ndarray, Y: np.ndarray, design: Design | None) -> np.ndarray:
        """Each option's probabilities from its head refitted without the row's fold (NaN where it cannot be)."""
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

        n, k = Y.shape
        out = np.full((n, k), np.nan)
        groups = design.items if design is not None and design.items is not None else None
        for j in range(k):
            y = Y[:, j]
            folds = int(min(FOLDS, y.sum(), n - y.sum(), n if groups is None else len(np.unique(groups))))
            if self.heads_[j] is None or folds < 2:
                continue
            if groups is None:
                splits = StratifiedKFold(folds, shuffle=True, random_state=self.random_state).split(X, y)
            else:  # responses: an item's rows stay in one fold, so its other answers do not leak in
                split = StratifiedGroupKFold(folds, shuffle=True, random_state=self.random_state)
                splits = split.split(X, y, groups)
            for train, test in splits:
                part = None if design is None else design.subset(train)
                if 0 < y[train].sum() < len(train):
                    fitted = self._binary_head().fit(X[train], y[train], part)
                    out[test, j] = fitted.predict_proba(X[test], None if design is None else design.subset(test))[:, 1]
                else:
                    out[test, j] = (y[train].sum() + 1.0) / (len(train) + 2.0)
        return out

    def _thresholds(self, oof: np.ndarray, Y: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Per-option thresholds tuned on these rows' out-of-fold probabilities (0.5 where untuned)."""
        rows = np.arange(len(Y)) if rows is None else rows
        out = np.full(Y.shape[1], 0.5)
        if not self.tune_thresholds:
            return out
        for j in range(Y.shape[1]):
            p, y = oof[rows, j], Y[rows, j]
            positives = int(y.sum())
            if np.isnan(p).any() or min(positives, len(y) - positives) < 2:
                continue
            out[j] = shrunk_threshold(f1_threshold(p, y), positives, self.threshold_shrinkage)
        return out

    def _oof_decisions(self, oof: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """Out-of-fold sets, each fold's thresholds tuned on the others; and micro-F1 at 0.5 beside them."""
        from sklearn.metrics import f1_score
        from sklearn.model_selection import KFold

        probs = np.where(np.isnan(oof), self.share_[None, :], oof)
        chosen = np.zeros_like(Y)
        folds = min(FOLDS, len(Y))
        if folds < 2:
            chosen[:] = centred(probs, self.thresholds_, self.at_least_one_) > 0.5
        else:
            for train, test in KFold(folds, shuffle=True, random_state=self.random_state).split(Y):
                cut = self._thresholds(oof, Y, train)
                chosen[test] = centred(probs[test], cut, self.at_least_one_) > 0.5
        plain = (probs > 0.5).astype(np.int64)
        gain = {
            "cv_micro_f1_at_0.5": round(float(f1_score(Y, plain, average="micro", zero_division=0)), 4),
            "cv_micro_f1": round(float(f1_score(Y, chosen, average="micro", zero_division=0)), 4),
        }
        return chosen.astype(np.int64), gain

    def option_probabilities(self, X: np.ndarray, design: Design | None = None) -> np.ndarray:
        """The heads' own P(option chosen), n × k (rows need not sum to 1)."""
        out = np.tile(self.share_, (len(X), 1))
        for j, head in enumerate(self.heads_):
            if head is not None:
                out[:, j] = head.predict_proba(X, design)[:, 1]
        return out

    def predict_proba(self, X: np.ndarray, design: Design | None = None) -> np.ndarray:
        """Decision-centred P(option chosen), n × k: above 0.5 exactly for the options in the predicted set."""
        probs = self.option_probabilities(X, design)
        thresholds = getattr(self, "thresholds_", None)
        if thresholds is None:  # a head saved before thresholds were tuned: its 0.5 rule
            return probs
        return centred(probs, thresholds, self.at_least_one_)

    def card(self) -> dict[str, Any]:
        thresholds = getattr(self, "thresholds_", np.full(self.n_options_, 0.5))
        return {
            "head": self.name,
            "base": self.base,
            "family": "one binary head per option",
            "options_modelled": [j for j, h in enumerate(self.heads_) if h is not None],
            "options_constant": {j: round(float(self.share_[j]), 4) for j, h in enumerate(self.heads_) if h is None},
            "thresholds": [round(float(t), 4) for t in thresholds],
            "threshold_rule": (
                f"out-of-fold F1-maximizing cut, logit shrunk by P / (P + {self.threshold_shrinkage:g})"
                if self.tune_thresholds
                else "0.5"
            ),
            "at_least_one": bool(getattr(self, "at_least_one_", False)),
            "threshold_gain": getattr(self, "threshold_gain_", None),
            "per_option": [None if h is None else h.card() for h in self.heads_],
        }
