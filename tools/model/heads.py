"""Model heads over encoder features: one family, one interface, a registry by name.

A head maps features X (n × d, from the encoder) and, optionally, a `Design` (participants,
items, design predictors) to class probabilities. The fixed-effects logistic head lives here;
the mixed-effects GLMM heads register themselves under their own names.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from alloop.tools.errors import InputError
from alloop.tools.glmm.head import GLMMHead


@dataclass
class Design:
    """Who judged what: participant and item ids per row, and design predictors (n × p)."""

    participants: np.ndarray | None = None
    items: np.ndarray | None = None
    predictors: np.ndarray | None = None
    predictor_names: tuple[str, ...] = ()


def classes_present(y: np.ndarray) -> np.ndarray:
    """The class indices among the labels: at least two, or an error that says how to get them."""
    present = np.unique(y)
    if len(present) < 2:
        raise InputError(
            f"training needs at least two classes among the labels, got only class index {present.tolist()}; "
            "label more items (seed_set with strategy 'stratified' or 'keyword' helps)"
        )
    return present


def item_design(table, names: tuple[str, ...] | list[str], positions=None) -> Design | None:
    """The design predictors (spec.model.predictors) of items, for population-level prediction."""
    if not names:
        return None
    return Design(predictors=table.numeric(names, positions), predictor_names=tuple(names))


class Head(Protocol):
    """fit / predict_proba, scikit-learn style; learned state in attributes ending in `_`."""

    name: ClassVar[str]

    def fit(self, X: np.ndarray, y: np.ndarray, design: Design | None = None) -> Head: ...

    def predict_proba(self, X: np.ndarray, design: Design | None = None) -> np.ndarray:
        """Probabilities (n × k); rows of unseen participants/items use the population level."""
        ...

    def card(self) -> dict[str, Any]:
        """What a researcher needs to know about the fitted head (for the model card)."""
        ...


class LogisticHead:
    """Multinomial logistic regression with a Gaussian prior (L2), temperature-calibrated.

    The temperature is fit on out-of-fold probabilities, so confidence means what it says even
    with a few dozen labels; with too few labels per class it stays at 1.
    """

    name: ClassVar[str] = "logistic"

    def __init__(
        self,
        C: float = 10.0,
        n_classes: int | None = None,
        random_state: int = 0,
        warm_start_from: LogisticHead | None = None,
    ) -> None:
        self.C = C
        self.n_classes = n_classes
        self.random_state = random_state
        self.warm_start_from = warm_start_from

    def fit(self, X: np.ndarray, y: np.ndarray, design: Design | None = None) -> LogisticHead:
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y, dtype=np.int64)
        X = self._with_predictors(X, design, fit=True)
        k = self.n_classes or int(y.max()) + 1
        present = classes_present(y)
        self.classes_ = present
        self.n_classes_ = k
        self.model_ = LogisticRegression(C=self.C, max_iter=2000, random_state=self.random_state)
        previous = self.warm_start_from
        self.warm_started_ = bool(previous is not None and np.array_equal(previous.model_.classes_, present))
        if self.warm_started_:
            # Fine-tune: start the optimizer from the previous round's weights.
            self.model_.set_params(warm_start=True)
            self.model_.coef_ = previous.model_.coef_.copy()
            self.model_.intercept_ = previous.model_.intercept_.copy()
        self.model_.fit(X, y)
        self.warm_start_from = None  # do not pickle the whole chain of earlier rounds
        self.temperature_ = self._fit_temperature(X, y)
        return self

    def _fit_temperature(self, X: np.ndarray, y: np.ndarray) -> float:
        from scipy.optimize import minimize_scalar
        from sklearn.base import clone
        from sklearn.model_selection import StratifiedKFold

        counts = np.bincount(y)
        folds = int(min(5, counts[counts > 0].min()))
        if folds < 2:
            return 1.0
        logits = np.zeros((len(y), self.n_classes_))
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        for train, test in splitter.split(X, y):
            if len(np.unique(y[train])) < len(self.classes_):
                return 1.0
            fold_model = clone(self.model_).fit(X[train], y[train])
            logits[test] = self._scatter(fold_model.decision_function(X[test]), fold_model.classes_, len(test))

        def nll(log_t: float) -> float:
            z = logits[:, self.classes_] / np.exp(log_t)
            z -= z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            position = np.searchsorted(self.classes_, y)
            return float(-logp[np.arange(len(y)), position].mean())

        result = minimize_scalar(nll, bounds=(-3, 3), method="bounded")
        return float(np.exp(result.x))

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
        logits = self._scatter(self.model_.decision_function(X), self.model_.classes_, len(X))
        z = logits / self.temperature_
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def card(self) -> dict[str, Any]:
        return {
            "head": self.name,
            "effects": "fixed",
            "C": self.C,
            "temperature": round(self.temperature_, 4),
            "warm_started": self.warm_started_,
            "classes_seen": self.classes_.tolist(),
            "predictors": list(self.predictor_names_),
        }


HEADS: dict[str, type] = {"logistic": LogisticHead, "glmm": GLMMHead}
"""Head families by name; spec.model.head picks one."""


def make_head(name: str, **params: Any) -> Head:
    try:
        cls = HEADS[name]
    except KeyError:
        raise InputError(f"unknown head {name!r}; choose one of {sorted(HEADS)}") from None
    return cls(**params)


def save_head(head: Head, path: Path) -> None:
    from alloop.tools.run.rundir import atomic_write_bytes

    atomic_write_bytes(path, pickle.dumps(head))


def load_head(path: Path) -> Head:
    """Load a head this run saved itself (never a pickle from elsewhere)."""
    return pickle.loads(path.read_bytes())
