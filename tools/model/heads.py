"""Model heads over encoder features: one family, one interface, a registry by name.

A head maps features X (n × d, from the encoder) and, optionally, a `Design` (participants,
items, design predictors) to class probabilities. This module holds the interface, the design
rows and the registry; the fixed-effects logistic head lives in `logistic.py`, the mixed-effects
GLMM head in the glmm package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from alloop.tools.errors import InputError
from alloop.tools.run.schema import TaskSpec


@dataclass
class Design:
    """Who judged what: participant and item ids per row, and design predictors (n × p)."""

    participants: np.ndarray | None = None
    items: np.ndarray | None = None
    predictors: np.ndarray | None = None
    predictor_names: tuple[str, ...] = ()

    def subset(self, rows: np.ndarray) -> Design:
        """The same design for some rows only: every field moves with its rows."""
        pick = lambda a: None if a is None else np.asarray(a)[rows]  # noqa: E731
        return Design(pick(self.participants), pick(self.items), pick(self.predictors), self.predictor_names)


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
    anchorable: ClassVar[bool]
    """Whether `fit` takes `anchor=` (a prior centred on the previous round's head)."""

    @classmethod
    def from_spec(cls, spec: TaskSpec, **overrides: Any) -> Head: ...

    def fit(self, X: np.ndarray, y: np.ndarray, design: Design | None = None) -> Head: ...

    def predict_proba(self, X: np.ndarray, design: Design | None = None) -> np.ndarray:
        """Probabilities (n × k); rows of unseen participants/items use the population level."""
        ...

    def card(self) -> dict[str, Any]:
        """What a researcher needs to know about the fitted head (for the model card)."""
        ...


def check_rows(X: np.ndarray, y: np.ndarray, design: Design | None) -> None:
    """Features, labels and design rows must describe the same rows."""
    if X.ndim != 2 or len(X) != len(y):
        raise InputError(f"features must be n × d with n = {len(y)} labels, got shape {X.shape}")
    if design is not None and design.predictors is not None and len(design.predictors) != len(y):
        raise InputError(f"design predictors have {len(design.predictors)} rows, the labels {len(y)}")


def __getattr__(name: str) -> Any:
    """`HEADS`, the head families by name (spec.model.head picks one), built on first use.

    The heads subclass scikit-learn's BaseEstimator, whose import costs most of a second; the
    tools import this module at start-up, so the classes load only when a head is made or read.
    """
    if name == "HEADS":
        from alloop.tools.glmm.head import GLMMHead
        from alloop.tools.model.logistic import LogisticHead

        return {"logistic": LogisticHead, "glmm": GLMMHead}
    raise AttributeError(name)


def make_head(name: str, spec: TaskSpec, **overrides: Any) -> Head:
    """The named head set up for the spec; `overrides` (None values ignored) replace its defaults.

    multi_select fits the named head once per option; magnitude has one head, the Gaussian;
    forced_choice's 'logistic' is the conditional logit over the options (model/choice_head.py).
    """
    heads = __getattr__("HEADS")
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if spec.task_type == "multi_select" and name in heads:
        from alloop.tools.model.option_head import OptionHead

        return OptionHead.from_spec(spec, base=name, **overrides)
    if spec.task_type == "magnitude":
        if name == "glmm":
            raise InputError(
                "the glmm head does not fit magnitudes in the loop yet; use head 'logistic' (for magnitude: the "
                "Gaussian head, BayesianRidge) or `alloop glmm fit --family gaussian` at the command line"
            )
        from alloop.tools.model.gaussian import GaussianHead

        return GaussianHead.from_spec(spec, **overrides)
    if spec.task_type == "forced_choice" and name == "logistic":
        from alloop.tools.model.choice_head import ConditionalLogitHead

        return ConditionalLogitHead.from_spec(spec, **overrides)
    try:
        cls = heads[name]
    except KeyError:
        raise InputError(f"unknown head {name!r}; choose one of {sorted(heads)}") from None
    return cls.from_spec(spec, **overrides)


def save_head(head: Head, path: Path) -> None:
    """Write the head as JSON and arrays (model/head_files.py), never as a pickle."""
    from alloop.tools.model.head_files import head_bytes
    from alloop.tools.run.rundir import atomic_write_bytes

    atomic_write_bytes(path, head_bytes(head))


def load_head(path: Path) -> Head:
    """The head saved at `path`, rebuilt without running code from the file; an old head.pkl is refused."""
    from alloop.tools.model.head_files import read_head

    return read_head(path)
