"""The fixed-effects logistic head: calibrated, with a prior that can lean on the previous round."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from alloop.tools.errors import InputError
from alloop.tools.model.heads import Design, check_rows, classes_present
from alloop.tools.run.schema import TaskSpec


def _anchor_problem(head: LogisticHead, anchor: LogisticHead, n_features: int) -> str:
    """Why a previous head cannot anchor this fit ("" when it can)."""
    if not isinstance(anchor, LogisticHead):
        return f"the previous head is {getattr(anchor, 'name', type(anchor).__name__)}, not logistic"
    if not np.array_equal(anchor.classes_, head.classes_):
        return f"the previous head saw classes {anchor.classes_.tolist()}, these labels {head.classes_.tolist()}"
    if anchor.model_.coef_.shape[1] != n_features:
        return "the previous head had other features or design predictors"
    return ""


def anchored_logistic_fit(
    X: np.ndarray, y: np.ndarray, C: float, anchor: Any, zero_prior: float = 0.0, pull: float = 1.0
) -> Any:
    """Logistic regression with a Gaussian prior partly or wholly centred on `anchor`'s weights.

    Minimizes C·Σ loss + zero_prior·‖W‖²/2 + pull·‖W − W_anchor‖²/2; the intercept is
    unpenalized, as in scikit-learn. `zero_prior=0, pull=1` is a sequential MAP update: the
    previous weights are the whole prior, so only new rows should be given (new_only).
    `zero_prior=1, pull=ρ` keeps scikit-learn's prior and adds a pull of strength ρ toward the
    previous round (fine_tune on all rows: earlier labels are not counted twice, and the fit
    changes less between rounds). scikit-learn has no prior mean or offset, hence this short
    L-BFGS; with a zero anchor it gives scikit-learn's fit (tested). Returns a fitted
    `LogisticRegression`, so prediction is scikit-learn's own.
    """
    from scipy.optimize import minimize
    from scipy.special import expit, log_softmax, softmax
    from sklearn.linear_model import LogisticRegression

    classes = np.unique(y)
    W0 = np.asarray(anchor.coef_, dtype=np.float64)
    k, d = W0.shape
    target = (y == classes[1]).astype(np.float64)[:, None] if k == 1 else (y[:, None] == classes[None, :]) * 1.0

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = theta[: k * d].reshape(k, d), theta[k * d :]
        Z = X @ W.T + b
        if k == 1:
            loss = np.logaddexp(0.0, Z) - target * Z
            residual = expit(Z) - target
        else:
            loss = -(target * log_softmax(Z, axis=1))
            residual = softmax(Z, axis=1) - target
        gW = C * residual.T @ X + zero_prior * W + pull * (W - W0)
        gb = C * residual.sum(axis=0)
        value = C * float(loss.sum()) + 0.5 * (zero_prior * float((W**2).sum()) + pull * float(((W - W0) ** 2).sum()))
        return value, np.concatenate([gW.ravel(), gb])

    start = np.concatenate([W0.ravel(), np.asarray(anchor.intercept_, dtype=np.float64)])
    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    model = LogisticRegression(C=C)
    model.classes_ = classes
    model.coef_ = result.x[: k * d].reshape(k, d)
    model.intercept_ = result.x[k * d :]
    model.n_features_in_ = d
    model.n_iter_ = np.asarray([result.nit])
    return model


class LogisticHead(BaseEstimator):
    """Multinomial logistic regression with a Gaussian prior (L2), temperature-calibrated.

    Parameters are stored as given and checked in `fit` (scikit-learn's convention, so
    `get_params` and `sklearn.base.clone` work). `C` is the prior variance of the weights.

    - Calibration: one temperature fitted by NLL on out-of-fold logits (`calibration_folds`
      stratified folds), its log shrunk toward 0 by n / (n + `temperature_shrinkage`) so a few
      dozen labels cannot push it to an extreme; `calibration_` says what was done and why.
    - Classes the labels have not shown yet get the probability a uniform Dirichlet prior on
      the class shares gives them, 1 / (n + k), never exactly 0.
    - `fit(..., anchor=previous_head)` centres the prior on the previous round's weights
      (penalty ‖w − w_prev‖² / 2C, a sequential MAP update): the fine_tune and new_only
      training strategies. The out-of-fold predictions (`oof_predictions_`) give the cv_*
      figures that decisions read, so the held-out gold set never steers them.
    """

    name: ClassVar[str] = "logistic"
    anchorable: ClassVar[bool] = True

    def __init__(
        self,
        C: float = 10.0,
        n_classes: int | None = None,
        random_state: int = 0,
        calibration_folds: int = 3,
        temperature_shrinkage: float = 50.0,
        anchor_pull: float = 1.0,
    ) -> None:
        self.C = C
        self.n_classes = n_classes
        self.random_state = random_state
        self.calibration_folds = calibration_folds
        self.temperature_shrinkage = temperature_shrinkage
        self.anchor_pull = anchor_pull

    @classmethod
    def from_spec(cls, spec: TaskSpec, **overrides: Any) -> LogisticHead:
        return cls(n_classes=len(spec.labels), random_state=spec.selection.seed, **overrides)

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        design: Design | None = None,
        anchor: LogisticHead | None = None,
        sequential: bool = False,
    ) -> LogisticHead:
        """Fit on these rows. With `anchor`: `sequential` (new rows only, the anchor is the whole
        prior) or a pull of strength `anchor_pull` toward it beside the usual prior (all rows)."""
        if not self.C > 0:
            raise InputError(f"C must be a positive number, got {self.C!r}")
        y = np.asarray(y, dtype=np.int64)
        check_rows(X, y, design)
        X = self._with_predictors(X, design, fit=True)
        k = self.n_classes or int(y.max()) + 1
        present = classes_present(y)
        self.classes_ = present
        self.n_classes_ = k
        self.n_train_ = len(y)
        self.anchor_note_ = _anchor_problem(self, anchor, X.shape[1]) if anchor is not None else "no anchor"
        self.anchored_ = anchor is not None and self.anchor_note_ == ""
        self.sequential_ = sequential
        self.anchor_model_ = anchor.model_ if self.anchored_ else None
        with threadpool_limits(1, user_api="blas"):  # labeled-row products are small: more threads only spin
            self.model_ = self._fit_weights(X, y, anchored=self.anchored_)
            self.temperature_, self.calibration_, self.oof_predictions_ = self._calibrate(X, y)
        self.anchor_model_ = None  # do not pickle the chain of earlier rounds
        return self

    def _fit_weights(self, X: np.ndarray, y: np.ndarray, start: Any = None, anchored: bool = False) -> Any:
        """The weights on these rows; `start` (a fit on a superset) warm-starts the optimizer.

        The out-of-fold fits start from the full fit: same optimum, a fraction of the iterations.
        They are never anchored: the previous round's weights were fitted on most of the rows a
        fold holds out, and would carry them into the out-of-fold logits.
        """
        from sklearn.linear_model import LogisticRegression

        if anchored:
            if self.sequential_:
                return anchored_logistic_fit(X, y, self.C, self.anchor_model_, zero_prior=0.0, pull=1.0)
            return anchored_logistic_fit(X, y, self.C, self.anchor_model_, zero_prior=1.0, pull=self.anchor_pull)
        model = LogisticRegression(C=self.C, max_iter=2000, random_state=self.random_state)
        if start is not None:
            model.set_params(warm_start=True)
            model.coef_, model.intercept_ = start.coef_.copy(), start.intercept_.copy()
        return model.fit(X, y)

    def _calibrate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, Any], np.ndarray | None]:
        """Temperature from out-of-fold logits, shrunk toward 1; and the out-of-fold predicted classes."""
        from scipy.optimize import minimize_scalar
        from sklearn.model_selection import StratifiedKFold

        counts = np.bincount(y)
        folds = int(min(self.calibration_folds, counts[counts > 0].min()))
        if folds < 2:
            return 1.0, {"fitted": False, "reason": "a class has a single label: no out-of-fold logits"}, None
        logits = np.zeros((len(y), self.n_classes_))
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        for train, test in splitter.split(X, y):
            fold_model = self._fit_weights(X[train], y[train], start=self.model_)
            logits[test] = self._scatter(fold_model.decision_function(X[test]), fold_model.classes_, len(test))
        position = np.searchsorted(self.classes_, y)
        seen = logits[:, self.classes_]
        oof = self.classes_[seen.argmax(axis=1)]

        def nll(log_t: float) -> float:
            z = seen / np.exp(log_t)
            z -= z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            return float(-logp[np.arange(len(y)), position].mean())

        fitted = float(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x)
        shrink = len(y) / (len(y) + self.temperature_shrinkage)
        temperature = float(np.exp(fitted * shrink))
        note = {
            "fitted": True,
            "folds": folds,
            "out_of_fold": "unanchored fits, warm-started from the full fit",
            "temperature_fitted": round(float(np.exp(fitted)), 4),
            "shrinkage": round(shrink, 4),
            "at_bound": bool(abs(fitted) > 2.99),
        }
        return temperature, note, oof

    def _scatter(self, decision: np.ndarray, classes: np.ndarray, n: int) -> np.ndarray:
        """Decision values laid out over all k classes (binary gives one column: ±z/2)."""
        full = np.full((n, self.n_classes_), -np.inf)
        if decision.ndim == 1:
            full[:, classes[0]] = -decision / 2
            full[:, classes[1]] = decision / 2
        else:
            full[:, classes] = decision
        return full

    def _with_predictors(self, X: np.ndarray, design: Design | None, fit: bool = False) -> np.ndarray:
        """Design predictors, standardized, join the features as fixed effects."""
        if fit:
            extra = design.predictors if design is not None and design.predictors is not None else None
            self.predictor_names_ = design.predictor_names if extra is not None else ()
            if extra is not None:
                self.predictor_mean_, self.predictor_scale_ = extra.mean(0), extra.std(0) + 1e-12
        if not getattr(self, "predictor_names_", ()):
            return X
        if design is None or design.predictors is None:
            raise InputError(f"this head was trained with design predictors {list(self.predictor_names_)}; give them")
        return np.hstack([X, (design.predictors - self.predictor_mean_) / self.predictor_scale_])

    def predict_proba(self, X: np.ndarray, design: Design | None = None) -> np.ndarray:
        X = self._with_predictors(X, design)
        logits = self.model_.decision_function(X)
        z = self._scatter(logits, self.model_.classes_, len(X))[:, self.classes_] / self.temperature_
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        unseen = self.n_classes_ - len(self.classes_)
        floor = 1.0 / (self.n_train_ + self.n_classes_)
        out = np.full((len(X), self.n_classes_), floor if unseen else 0.0)
        out[:, self.classes_] = p * (1.0 - unseen * floor)
        return out

    def card(self) -> dict[str, Any]:
        return {
            "head": self.name,
            "effects": "fixed",
            "C": self.C,
            "temperature": round(self.temperature_, 4),
            "calibration": self.calibration_,
            "anchored_to_previous": self.anchored_,
            "anchor": (
                "sequential (new rows, the previous weights as prior)"
                if self.sequential_
                else f"pull {self.anchor_pull:g} toward the previous weights"
            )
            if self.anchored_
            else None,
            "anchor_note": self.anchor_note_,
            "classes_seen": self.classes_.tolist(),
            "unseen_class_probability": round(1.0 / (self.n_train_ + self.n_classes_), 4)
            if len(self.classes_) < self.n_classes_
            else None,
            "predictors": list(self.predictor_names_),
        }
