"""Model frames: the response, the fixed-effects matrix and the random-effects terms.

A `GLMMSpec` says what to fit (family, mode, columns); `build_frame` checks a table of columns
against it and returns a `ModelFrame` of numpy arrays, with an error that names the column,
row and fix for anything a researcher can get wrong (a missing column, a response outside the
family's range, a constant predictor, a grouping factor with one level).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from alloop.tools.errors import InputError
from alloop.tools.run.reader import read_text
from alloop.tools.run.schema import EffectsMode

Family = Literal["binary", "ordinal", "gaussian", "categorical", "magnitude", "forced_choice"]
Mode = EffectsMode
FAMILIES: tuple[str, ...] = get_args(Family)
MODES: tuple[str, ...] = get_args(Mode)
INTERCEPT = "(Intercept)"


@dataclass(frozen=True)
class GLMMSpec:
    """What to fit. Grouping roles are always called `participant` and `item` in the output."""

    family: str
    mode: str = "random_intercepts"
    response: str = "y"
    participant: str | None = "participant"
    item: str | None = "item"
    predictors: tuple[str, ...] = ()
    slopes: tuple[str, ...] | None = None
    """Predictors with participant random slopes (random_slopes mode); default all predictors."""
    correlated: bool = True
    reml: bool = False
    log_response: bool = False
    """magnitude: model log(y)."""
    trial: str | None = None
    """forced_choice: the column naming the trial; one row per option, response 1 on the chosen one."""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise InputError(f"unknown family {self.family!r}; choose one of {', '.join(FAMILIES)}")
        if self.mode not in MODES:
            raise InputError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.reml and self.family not in ("gaussian", "magnitude"):
            raise InputError("REML is defined for the gaussian family only; drop --reml for this family")
        if len(set(self.predictors)) != len(self.predictors):
            raise InputError(f"predictors are listed twice: {list(self.predictors)}")
        if self.family == "forced_choice" and not self.trial:
            raise InputError("forced_choice needs a trial column (--trial): one row per option, y = 1 on the chosen")
        for s in self.slopes or ():
            if s not in self.predictors:
                raise InputError(f"slope {s!r} is not among the predictors {list(self.predictors)}")


@dataclass
class Term:
    """One random-effects term `(columns | group)`: k columns, one k-vector per level."""

    group: str
    columns: tuple[str, ...]
    index: np.ndarray  # level of each row, 0..J-1
    levels: tuple[str, ...]
    Z: np.ndarray  # n × k raw covariates (1 for the intercept)
    shared: bool = False
    """One scale for all k columns, independent (T = θ·I): a Gaussian prior on feature weights."""
    scale: float | None = None
    """A shared term's fixed prior SD; None estimates it as a variance component."""

    @property
    def k(self) -> int:
        return len(self.columns)

    @property
    def J(self) -> int:
        return len(self.levels)


@dataclass
class ModelFrame:
    spec: GLMMSpec
    y: np.ndarray  # float (gaussian), 0/1 (binary), 0..K-1 (ordinal, categorical)
    X: np.ndarray  # n × p
    x_names: tuple[str, ...]
    terms: list[Term]
    response_levels: tuple[str, ...] = ()  # ordinal/categorical: the observed values in order
    warnings: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.y)


def read_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a CSV file as numpy arrays of strings (typing happens in `build_frame`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data file {str(path)!r} not found")
    reader = csv.reader(io.StringIO(read_text(path).removeprefix("\ufeff"), newline=""))  # decoding errors named
    try:
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"{path}: the file is empty; it needs a header row and data rows") from None
        header = [h.strip() for h in header]
        rows = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(f"{path}:{reader.line_num}: {len(row)} fields, the header has {len(header)}")
            rows.append(row)
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}: not a readable CSV row ({exc})") from None
    if not rows:
        raise InputError(f"{path}: no data rows below the header")
    cols = list(zip(*rows, strict=True))
    return {h: np.asarray(c, dtype=object) for h, c in zip(header, cols, strict=True)}


_MISSING = {"", "na", "nan", "null", "none"}


def _numeric(values: np.ndarray, name: str, where: str) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
            f = float(v)
        else:
            s = str(v).strip()
            if s.lower() in _MISSING:
                raise InputError(
                    f"{where}: column {name!r} is missing a value in data row {i + 1}; drop or fill that row"
                )
            try:
                f = float(s)
            except ValueError:
                raise InputError(f"{where}: column {name!r} must be numeric, data row {i + 1} has {s!r}") from None
        if not math.isfinite(f):
            raise InputError(f"{where}: column {name!r} has a non-finite value in data row {i + 1}")
        out[i] = f
    return out


def _labels(values: np.ndarray, name: str, where: str) -> np.ndarray:
    out = np.asarray([str(v).strip() for v in values], dtype=object)
    bad = np.flatnonzero([v.lower() in _MISSING for v in out])
    if len(bad):
        raise InputError(f"{where}: column {name!r} is empty in data row {bad[0] + 1}; every row needs a {name}")
    return out


def _column(data: Mapping[str, np.ndarray], name: str, role: str, where: str) -> np.ndarray:
    if name not in data:
        raise InputError(
            f"{where}: the {role} column {name!r} is missing; the columns are {sorted(data)} "
            f"(name the right one with --{role})"
        )
    return np.asarray(data[name], dtype=object)


def encode_response(
    spec: GLMMSpec, raw: np.ndarray, where: str, levels: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    name = spec.response
    if spec.family in ("gaussian", "magnitude"):
        y = _numeric(raw, name, where)
        if spec.log_response:
            if (y <= 0).any():
                i = int(np.flatnonzero(y <= 0)[0])
                raise InputError(f"{where}: a log-scale magnitude needs y > 0; data row {i + 1} has {y[i]}")
            y = np.log(y)
        if len(y) and np.ptp(y) == 0:
            raise InputError(
                f"{where}: the response {name!r} takes one value only ({y[0]:g}); a gaussian model needs it to vary"
            )
        return y, ()
    if spec.family in ("binary", "forced_choice"):
        text = [str(v).strip().lower() for v in raw]
        mapping = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "false": 0.0, "true": 1.0}
        bad = [i for i, t in enumerate(text) if t not in mapping]
        if bad:
            raise InputError(
                f"{where}: the binary family needs {name!r} in {{0, 1}} (or false/true); data row "
                f"{bad[0] + 1} has {raw[bad[0]]!r}. Recode the response or pick another --family"
            )
        y = np.asarray([mapping[t] for t in text])
        if len(np.unique(y)) < 2:
            raise InputError(f"{where}: the response {name!r} takes one value only; a binary model needs both 0 and 1")
        return y, ("0", "1")
    # ordinal and categorical: ordered levels (numeric order when numeric)
    labels = _labels(raw, name, where)
    if levels is not None:
        pos = {str(v): i for i, v in enumerate(levels)}
        bad = [i for i, v in enumerate(labels) if v not in pos]
        if bad:
            raise InputError(
                f"{where}: {name!r} = {labels[bad[0]]!r} in data row {bad[0] + 1} is not one of the "
                f"levels {list(levels)}"
            )
        return np.asarray([pos[v] for v in labels], dtype=np.float64), tuple(str(v) for v in levels)
    uniq = sorted(set(labels))
    try:
        numeric = [float(u) for u in uniq]
        if spec.family == "ordinal" and any(v != round(v) for v in numeric):
            raise InputError(
                f"{where}: an ordinal response must be integer scale points; {name!r} has "
                f"{[u for u, v in zip(uniq, numeric, strict=True) if v != round(v)][:3]}"
            )
        uniq = [u for _, u in sorted(zip(numeric, uniq, strict=True))]
    except ValueError:
        if spec.family == "ordinal":
            raise InputError(
                f"{where}: an ordinal response must be integer scale points (1..K); {name!r} has "
                f"non-numeric values such as {next(u for u in uniq if not _is_number(u))!r}"
            ) from None
    if len(uniq) < 2:
        raise InputError(f"{where}: the response {name!r} takes one value only ({uniq[0]!r}); nothing to model")
    if spec.family == "ordinal" and len(uniq) < 3:
        raise InputError(f"{where}: {name!r} has two values; use --family binary for two categories")
    if 2 * len(uniq) > len(labels):  # a parameter set per level, and under two rows to estimate each
        raise InputError(
            f"{where}: the response {name!r} has {len(uniq)} levels in {len(labels)} rows, fewer than two rows "
            "per level: the model cannot be estimated. Merge rare levels or collect more rows"
        )
    index = {u: i for i, u in enumerate(uniq)}
    return np.asarray([index[v] for v in labels], dtype=np.float64), tuple(uniq)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def build_frame(
    data: Mapping[str, Sequence | np.ndarray],
    spec: GLMMSpec,
    where: str = "data",
    levels: Sequence[str] | None = None,
    features: np.ndarray | None = None,
    feature_prior_sd: float | None = None,
) -> ModelFrame:
    """Check the columns against `spec` and build y, X and the random-effects terms.

    `levels` fixes the response levels of an ordinal/categorical model (say, the scale points
    of a cross-validation fold's full data set) instead of taking them from the rows.
    `features` (n × d, e.g. encoder embeddings) enter as fixed effects with a Gaussian prior
    N(0, s²) on their weights: a shared term whose s is estimated with the variance components
    (empirical Bayes) or fixed at `feature_prior_sd`; the weights are integrated out in the
    Laplace likelihood and predicted by their posterior modes.
    """
    data = {k: np.asarray(v, dtype=object) for k, v in data.items()}
    warnings: list[str] = []
    trials = None
    if spec.family == "forced_choice":
        data, trials = order_by_trial(data, spec, where)
    y, levels = encode_response(spec, _column(data, spec.response, "response", where), where, levels)
    n = len(y)

    preds: dict[str, np.ndarray] = {}
    for name in spec.predictors:
        x = _numeric(_column(data, name, "predictors", where), name, where)
        if np.ptp(x) == 0:
            raise InputError(
                f"{where}: predictor {name!r} is constant ({x[0]:g} in every row); it cannot be "
                "estimated beside the intercept. Drop it from --predictors"
            )
        if trials is not None and np.all(np.ptp(x.reshape(-1, trials), axis=1) == 0):
            raise InputError(
                f"{where}: predictor {name!r} does not vary between the options of any trial; a choice "
                "model cannot estimate it. Use option attributes as predictors"
            )
        preds[name] = x
    intercept = spec.family not in ("ordinal", "forced_choice")
    x_names = [INTERCEPT] * intercept + list(spec.predictors)
    cols = [np.ones(n)] * intercept + [preds[p] for p in spec.predictors]
    X = np.column_stack(cols) if cols else np.zeros((n, 0))
    if X.shape[1] and np.linalg.matrix_rank(X) < X.shape[1]:
        raise InputError(
            f"{where}: the predictors {list(spec.predictors)} are collinear (one is a linear "
            "combination of the others and the intercept); drop one"
        )

    terms: list[Term] = []
    if spec.mode != "fixed":
        groups: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
        for role in ("participant", "item"):
            col = getattr(spec, role)
            if col is None:
                continue
            labels = _labels(_column(data, col, role, where), col, where)
            lv = tuple(sorted(set(labels)))
            if len(lv) < 2:
                raise InputError(
                    f"{where}: the {role} column {col!r} has {len(lv)} level ({lv[0]!r}); a random "
                    "effect needs at least two (five or more to estimate its variance well). "
                    "Use --mode fixed or another column"
                )
            if len(lv) < 5:
                warnings.append(f"{role} has only {len(lv)} levels: its variance is poorly determined")
            pos = {v: i for i, v in enumerate(lv)}
            groups[role] = (np.asarray([pos[v] for v in labels], dtype=np.int64), lv)
        if "participant" not in groups and spec.mode == "random_slopes":
            raise InputError("random_slopes needs a participant column (--participant)")
        if not groups:
            raise InputError(f"mode {spec.mode!r} needs a participant or item column")
        if "participant" in groups and spec.family == "forced_choice":
            # a participant's intercept is the same for every option of a trial: not identified
            idx, lv = groups["participant"]
            slopes = tuple(spec.predictors if spec.slopes is None else spec.slopes)
            if spec.mode == "random_slopes" and spec.correlated:
                terms.append(Term("participant", slopes, idx, lv, np.column_stack([preds[s] for s in slopes])))
            elif spec.mode == "random_slopes":
                terms += [Term("participant", (s,), idx, lv, preds[s][:, None]) for s in slopes]
            else:
                warnings.append("forced_choice: participant intercepts are not identified in a choice model; omitted")
        elif "participant" in groups:
            idx, lv = groups["participant"]
            slopes = tuple(spec.predictors if spec.slopes is None else spec.slopes)
            if spec.mode == "random_slopes" and not slopes:
                raise InputError("random_slopes needs at least one predictor (--predictors x)")
            if spec.mode == "random_slopes" and spec.correlated:
                cols_ = (INTERCEPT, *slopes)
                Z = np.column_stack([np.ones(n)] + [preds[s] for s in slopes])
                terms.append(Term("participant", cols_, idx, lv, Z))
            else:
                terms.append(Term("participant", (INTERCEPT,), idx, lv, np.ones((n, 1))))
                if spec.mode == "random_slopes":
                    for s in slopes:
                        terms.append(Term("participant", (s,), idx, lv, preds[s][:, None]))
        if "item" in groups:
            idx, lv = groups["item"]
            terms.append(Term("item", (INTERCEPT,), idx, lv, np.ones((n, 1))))
    if features is not None:
        terms.append(_feature_term(features, n, feature_prior_sd, where))
    if spec.family == "forced_choice":
        y = y.reshape(-1, trials).argmax(axis=1).astype(np.float64)
        levels = tuple(str(k) for k in range(trials))
    if spec.family == "categorical":
        if spec.mode == "random_slopes":
            raise InputError(
                "random_slopes is not available for the categorical family (one slope per category and "
                "predictor); use --mode random_intercepts"
            )
        X, x_names, terms = to_long(X, list(x_names), terms, levels)
    return ModelFrame(spec, y, X, tuple(x_names), terms, levels, warnings)


def order_by_trial(data: dict[str, np.ndarray], spec: GLMMSpec, where: str) -> tuple[dict[str, np.ndarray], int]:
    """Rows grouped trial by trial (trials in order of first appearance, options in file order),
    with every trial checked to have the same number of options and exactly one chosen."""
    trial = _labels(_column(data, spec.trial, "trial", where), spec.trial, where)
    first: dict[str, int] = {}
    for t in trial:
        first.setdefault(t, len(first))
    order = np.argsort(np.asarray([first[t] for t in trial]), kind="stable")
    sizes = np.bincount([first[t] for t in trial])
    if sizes.min() != sizes.max() or sizes.min() < 2:
        bad = next(t for t, k in first.items() if sizes[k] != sizes.max() or sizes[k] < 2)
        raise InputError(
            f"{where}: every trial needs the same number (≥ 2) of option rows; trial {bad!r} has "
            f"{sizes[first[bad]]}, others up to {sizes.max()}"
        )
    out = {k: v[order] for k, v in data.items()}
    chosen = _column(out, spec.response, "response", where)
    picks = np.asarray([str(v).strip().lower() in ("1", "1.0", "true") for v in chosen]).reshape(-1, sizes.max())
    if not np.all(picks.sum(axis=1) == 1):
        bad = list(first)[int(np.flatnonzero(picks.sum(axis=1) != 1)[0])]
        raise InputError(
            f"{where}: trial {bad!r} must have exactly one row with {spec.response!r} = 1 (the chosen option)"
        )
    return out, int(sizes.max())


def to_long(
    X: np.ndarray, x_names: list[str], terms: list[Term], levels: Sequence[str]
) -> tuple[np.ndarray, list[str], list[Term]]:
    """The categorical family's layout: m = K − 1 rows per observation (i·m + c), each
    category with its own fixed effects and its own (correlated) random effects."""
    n, p = X.shape
    m = len(levels) - 1
    Xl = np.zeros((n * m, p * m))
    for c in range(m):
        Xl[c::m, c * p : (c + 1) * p] = X
    names = [f"{levels[c + 1]}:{name}" for c in range(m) for name in x_names]
    out = []
    for t in terms:
        if t.shared:
            raise InputError("features are not supported for the categorical engine family")
        Zl = np.zeros((n * m, t.k * m))
        for c in range(m):
            Zl[c::m, c * t.k : (c + 1) * t.k] = t.Z
        cols = tuple(f"{levels[c + 1]}:{col}" for c in range(m) for col in t.columns)
        out.append(Term(t.group, cols, np.repeat(t.index, m), t.levels, Zl))
    return Xl, names, out


FEATURES = "features"


def _feature_term(features: np.ndarray, n: int, prior_sd: float | None, where: str) -> Term:
    F = np.asarray(features, dtype=np.float64)
    if F.ndim != 2 or len(F) != n:
        raise InputError(f"{where}: features must be an n × d array with n = {n} rows, got shape {F.shape}")
    if not np.isfinite(F).all():
        raise InputError(f"{where}: features contain NaN or infinite values")
    if prior_sd is not None and not prior_sd > 0:
        raise InputError(f"feature prior SD must be > 0, got {prior_sd}")
    cols = tuple(f"f{j}" for j in range(F.shape[1]))
    return Term(FEATURES, cols, np.zeros(n, dtype=np.int64), ("all",), F, shared=True, scale=prior_sd)


def new_design(
    data: Mapping[str, Sequence | np.ndarray],
    frame: ModelFrame,
    where: str = "new data",
    features: np.ndarray | None = None,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """X and, per term, (level index or -1 for an unseen level, Z) for rows to predict."""
    data = {k: np.asarray(v, dtype=object) for k, v in data.items()}
    spec = frame.spec
    if spec.family == "forced_choice":
        data, _ = order_by_trial(data, spec, where)
    n = len(next(iter(data.values()))) if data else (0 if features is None else len(features))
    preds = {p: _numeric(_column(data, p, "predictors", where), p, where) for p in spec.predictors}
    intercept = spec.family not in ("ordinal", "forced_choice")
    cols = [np.ones(n)] * intercept + [preds[p] for p in spec.predictors]
    X = np.column_stack(cols) if cols else np.zeros((n, 0))
    out = []
    for term in frame.terms:
        if term.shared:
            if features is None or np.shape(features) != (n, term.k):
                raise InputError(f"{where}: the model needs features of shape ({n}, {term.k})")
            out.append((np.zeros(n, dtype=np.int64), np.asarray(features, dtype=np.float64)))
            continue
        col = getattr(spec, term.group)
        if col in data:
            pos = {v: i for i, v in enumerate(term.levels)}
            idx = np.asarray([pos.get(str(v).strip(), -1) for v in data[col]], dtype=np.int64)
        else:
            idx = np.full(n, -1, dtype=np.int64)
        base = term.columns
        if spec.family == "categorical":  # the first category's block, without its prefix
            first = f"{frame.response_levels[1]}:"
            base = tuple(c.removeprefix(first) for c in term.columns[: term.k // (len(frame.response_levels) - 1)])
        Z = np.column_stack([np.ones(n) if c == INTERCEPT else preds[c] for c in base])
        out.append((idx, Z))
    if spec.family == "categorical":
        m = len(frame.response_levels) - 1
        Xl = np.zeros((n * m, X.shape[1] * m))
        for c in range(m):
            Xl[c::m, c * X.shape[1] : (c + 1) * X.shape[1]] = X
        long = []
        for idx, Z in out:
            Zl = np.zeros((n * m, Z.shape[1] * m))
            for c in range(m):
                Zl[c::m, c * Z.shape[1] : (c + 1) * Z.shape[1]] = Z
            long.append((np.repeat(idx, m), Zl))
        return Xl, long
    return X, out
