"""Agreement among coders, with bootstrap intervals over units.

Input is reliability data: rows `{unit, coder, value}` (a missing value is simply an absent
row, or `value: null`). From them `Ratings` builds a units × coders table of codes into an
ordered value domain (the label schema where one is given). On it:

- Krippendorff's α for nominal, ordinal, interval and ratio data (the point estimate comes from
  the `krippendorff` package; missing values allowed, units with one value carry nothing);
- Fleiss' κ (Fleiss 1971; where units have different numbers of ratings, each unit's agreement
  uses its own number of raters and the category shares are pooled over all ratings);
- Cohen's κ per pair of coders and averaged over pairs (Light's κ); ordinal data use linear
  weights over the ordered categories, interval data squared differences of the values;
- percent agreement: the mean over units of the share of agreeing coder pairs (for two coders,
  the share of units on which they agree). Reported as a proportion in [0, 1].

Every statistic is written as a function of per-unit sufficient statistics summed with unit
weights: the point estimate uses weight 1 for every unit, and a bootstrap resample uses the
multiplicity of each unit in the resample. So a 1,000-resample interval is one matrix product
per chunk of resamples, not 1,000 calls.

`focus=<coder>` restricts a statistic to the pairs that involve that coder: how well one coder
(say, a model) agrees with the others. For α, each unit's pairs (focus, other) are weighted so
the unit counts as two pairable values (the focus value and the others' value distribution);
with two coders this is α itself.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, Field

from alloop.tools.errors import InputError
from alloop.tools.run.rundir import read_jsonl
from alloop.tools.run.schema import AgreementMetric

Level = Literal["nominal", "ordinal", "interval", "ratio"]
Metric = AgreementMetric
LEVELS: tuple[str, ...] = get_args(Level)
METRICS: tuple[str, ...] = get_args(Metric)
MISSING = -1

# The krippendorff package builds a units × values × values array; above this many cells the
# same figure is computed from the closed form below (tested equal on the package's examples).
_PACKAGE_CELL_LIMIT = 20_000_000
# When most coder pairs share fewer units than this, averaged Cohen's κ is unreliable (a note says so).
_FEW_SHARED_UNITS = 5
# Cells of one chunk of bootstrap weights (resamples × units).
_CHUNK_CELLS = 4_000_000

_UNIT_KEYS = ("unit", "item_id")
_CODER_KEYS = ("coder", "annotator")
_VALUE_KEYS = ("value", "label")


# ---------------------------------------------------------------------------------------
# Reliability data
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Ratings:
    """Reliability data: `codes[u, c]` is the index into `domain` that coder c gave unit u.

    `MISSING` (-1) marks a unit the coder did not code. `domain` is ordered (the label schema,
    or the sorted values seen); for interval and ratio data it holds numbers.
    """

    units: tuple[str, ...]
    coders: tuple[str, ...]
    codes: np.ndarray
    domain: tuple[Any, ...]
    level: Level = "nominal"
    source: str = "annotations"

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Any]],
        level: str = "nominal",
        labels: Sequence[str] | None = None,
        source: str = "annotations",
    ) -> Ratings:
        """Build from rows `{unit, coder, value}` (also read: `item_id`, `annotator`, `label`).

        Raises `InputError`, naming the row, for a missing field, a value outside the label
        schema or not of the level's type, a coder coding a unit twice, an empty input, one
        coder only, or no unit coded by two coders.
        """
        level = _check_level(level)
        schema = _Schema(level, labels, source)
        unit_keys: list[str] = []
        coder_keys: list[str] = []
        values: list[Any] = []
        lines: list[int] = []
        n_rows = 0
        for number, row in enumerate(rows, start=1):
            n_rows += 1
            where = f"{source}:{number}"
            if not isinstance(row, Mapping):
                raise InputError(f"{where}: expected an object {{unit, coder, value}}, got {type(row).__name__}")
            unit = _field(row, _UNIT_KEYS, where)
            coder = _field(row, _CODER_KEYS, where)
            raw = next((row[k] for k in _VALUE_KEYS if k in row), _ABSENT)
            if raw is _ABSENT:
                raise InputError(f"{where}: no 'value' field; each row is {{unit, coder, value}}")
            value = schema.parse(raw, where)
            if value is None:
                continue
            unit_keys.append(unit)
            coder_keys.append(coder)
            values.append(value)
            lines.append(number)
        if n_rows == 0:
            raise InputError(f"{source}: no annotations (the input is empty); give rows {{unit, coder, value}}")
        if not values:
            raise InputError(f"{source}: all {n_rows} rows have an empty value; nothing to compare")
        domain = schema.domain(values)
        lookup = {value: index for index, value in enumerate(domain)}
        unit_ids, unit_index = np.unique(np.array(unit_keys, dtype=object).astype(str), return_inverse=True)
        coder_ids, coder_index = np.unique(np.array(coder_keys, dtype=object).astype(str), return_inverse=True)
        value_index = np.fromiter((lookup[v] for v in values), dtype=np.int64, count=len(values))
        flat = unit_index * len(coder_ids) + coder_index
        order = np.argsort(flat, kind="stable")
        repeated = np.flatnonzero(np.diff(flat[order]) == 0)
        if repeated.size:
            first, second = lines[order[repeated[0]]], lines[order[repeated[0] + 1]]
            raise InputError(
                f"{source}:{second}: coder {coder_keys[order[repeated[0]]]!r} already coded unit "
                f"{unit_keys[order[repeated[0]]]!r} on line {first}; each coder gives one value per unit "
                "(keep the latest and drop the other)"
            )
        codes = np.full((len(unit_ids), len(coder_ids)), MISSING, dtype=np.int64)
        codes[unit_index, coder_index] = value_index
        ratings = cls(
            units=tuple(unit_ids.tolist()),
            coders=tuple(coder_ids.tolist()),
            codes=codes,
            domain=tuple(domain),
            level=level,  # type: ignore[arg-type]
            source=source,
        )
        ratings.check_comparable()
        return ratings

    @classmethod
    def from_matrix(
        cls,
        data: Sequence[Sequence[Any]] | np.ndarray,
        level: str = "nominal",
        labels: Sequence[str] | None = None,
        coders: Sequence[str] | None = None,
        units: Sequence[str] | None = None,
        source: str = "matrix",
    ) -> Ratings:
        """Build from a coders × units matrix (the `krippendorff` package's layout).

        None or NaN marks a missing value.
        """
        matrix = np.asarray(data, dtype=object)
        if matrix.ndim != 2:
            raise InputError(f"{source}: expected a coders × units matrix, got shape {matrix.shape}")
        coder_names = list(coders) if coders is not None else [f"c{i + 1}" for i in range(matrix.shape[0])]
        unit_names = list(units) if units is not None else [f"u{j + 1}" for j in range(matrix.shape[1])]
        rows = [
            {"unit": unit_names[j], "coder": coder_names[i], "value": matrix[i, j]}
            for i in range(matrix.shape[0])
            for j in range(matrix.shape[1])
        ]
        return cls.from_rows(rows, level=level, labels=labels, source=source)

    # -- shape ---------------------------------------------------------------------------
    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def n_coders(self) -> int:
        return len(self.coders)

    @property
    def n_values(self) -> int:
        return len(self.domain)

    def counts(self) -> np.ndarray:
        """units × values: how many coders gave unit u value v."""
        present = self.codes >= 0
        rows = np.nonzero(present)[0]
        flat = rows * self.n_values + self.codes[present]
        return np.bincount(flat, minlength=self.n_units * self.n_values).reshape(self.n_units, self.n_values)

    def pairable(self) -> np.ndarray:
        """Units with values from two or more coders (the only ones agreement can see)."""
        return (self.codes >= 0).sum(axis=1) >= 2

    def numbers(self) -> np.ndarray:
        """The domain as numbers: the values for interval/ratio data, else the positions."""
        if self.level in ("interval", "ratio"):
            return np.asarray(self.domain, dtype=np.float64)
        return np.arange(self.n_values, dtype=np.float64)

    def coder_index(self, coder: str) -> int:
        try:
            return self.coders.index(coder)
        except ValueError:
            raise InputError(f"{self.source}: no coder {coder!r} (coders: {', '.join(self.coders)})") from None

    def select_coders(self, coders: Sequence[str]) -> Ratings:
        """The same units with only these coders (units keep their rows, perhaps empty)."""
        columns = [self.coder_index(c) for c in coders]
        return Ratings(
            units=self.units,
            coders=tuple(coders),
            codes=self.codes[:, columns],
            domain=self.domain,
            level=self.level,
            source=self.source,
        )

    def with_level(self, level: str) -> Ratings:
        level = _check_level(level)
        if level in ("interval", "ratio") and not all(_is_number(v) for v in self.domain):
            raise InputError(f"{self.source}: level {level!r} needs numeric values, got {list(self.domain)[:5]}")
        return Ratings(self.units, self.coders, self.codes, self.domain, level, self.source)  # type: ignore[arg-type]

    def check_comparable(self) -> None:
        """Two coders at least, and one unit coded by two of them."""
        if self.n_coders < 2:
            only = self.coders[0] if self.coders else "none"
            raise InputError(
                f"{self.source}: only one coder ({only!r}); agreement needs values from two or more coders"
            )
        if not self.pairable().any():
            raise InputError(
                f"{self.source}: no unit has values from two coders ({self.n_units} units, {self.n_coders} "
                "coders, but never overlapping); agreement needs units coded more than once"
            )

    def reliability_data(self) -> np.ndarray:
        """coders × units floats with NaN for missing (the `krippendorff` package's layout)."""
        values = self.numbers()
        out = np.full(self.codes.shape, np.nan)
        present = self.codes >= 0
        out[present] = values[self.codes[present]]
        return out.T


_ABSENT = object()


def _field(row: Mapping[str, Any], keys: Sequence[str], where: str) -> str:
    for key in keys:
        if key in row and row[key] not in (None, ""):
            value = row[key]
            if isinstance(value, (list, dict)):
                raise InputError(f"{where}: field {key!r} must be a string or number, got {type(value).__name__}")
            return str(value)
    raise InputError(f"{where}: no {keys[0]!r} field; each row is {{unit, coder, value}}")


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise InputError(f"level {level!r} is not one of {', '.join(LEVELS)}")
    return level


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def number_text(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


class _Schema:
    """Checks each value against the level and the label schema; builds the ordered domain."""

    def __init__(self, level: str, labels: Sequence[str] | None, source: str) -> None:
        self.level = level
        self.source = source
        self.labels = [str(label) for label in labels] if labels else None
        self.numeric_labels: dict[str, float] | None = None
        if self.labels is not None:
            if len(set(self.labels)) != len(self.labels):
                raise InputError(f"{source}: the label schema repeats a label: {self.labels}")
            if level in ("interval", "ratio"):
                numeric: dict[str, float] = {}
                for label in self.labels:
                    try:
                        numeric[label] = float(label)
                    except ValueError:
                        raise InputError(
                            f"{source}: level {level!r} needs numeric labels, but the schema has {label!r}; "
                            "use level 'ordinal' for ordered categories"
                        ) from None
                if level == "ratio" and any(v < 0 for v in numeric.values()):
                    raise InputError(f"{source}: level 'ratio' needs values ≥ 0, the schema has {self.labels}")
                self.numeric_labels = numeric

    def parse(self, raw: Any, where: str) -> Any:
        """The value's key in the domain, or None when the value is missing."""
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            return None
        if isinstance(raw, (list, tuple, dict)):
            raise InputError(
                f"{where}: value {raw!r} is a {type(raw).__name__}; agreement compares single values "
                "(for multi-select answers, compute agreement per option as yes/no)"
            )
        if self.labels is not None:
            text = raw if isinstance(raw, str) else (str(raw).lower() if isinstance(raw, bool) else number_text(raw))
            if text not in self.labels:
                raise InputError(
                    f"{where}: value {raw!r} is not in the label schema {self.labels}; fix the row or the schema"
                )
            return self.numeric_labels[text] if self.numeric_labels is not None else text
        if isinstance(raw, bool):
            if self.level != "nominal":
                raise InputError(f"{where}: value {raw!r} is true/false; level {self.level!r} needs numbers")
            return str(raw).lower()
        if self.level == "nominal":
            if _is_number(raw):
                return float(raw)
            return str(raw)
        number = raw if _is_number(raw) else _parse_float(raw)
        if number is None or not math.isfinite(float(number)):
            if self.level == "ordinal":
                raise InputError(
                    f"{where}: value {raw!r} is text; ordinal data needs numbers or the label order "
                    "(pass the label schema, e.g. --labels low,mid,high)"
                )
            raise InputError(f"{where}: value {raw!r} is not a number; level {self.level!r} needs numeric values")
        number = float(number)
        if self.level == "ratio" and number < 0:
            raise InputError(f"{where}: value {raw!r} is negative; level 'ratio' needs values ≥ 0 (or use 'interval')")
        return number

    def domain(self, values: Sequence[Any]) -> list[Any]:
        if self.labels is not None:
            if self.numeric_labels is not None:
                return sorted(set(self.numeric_labels.values()))
            return list(self.labels)
        kinds = {isinstance(v, str) for v in values}
        if len(kinds) > 1:
            raise InputError(
                f"{self.source}: values mix numbers and text ({sorted({str(v) for v in values})[:6]}); "
                "make them one type or pass the label schema"
            )
        return sorted(set(values))


def _parse_float(raw: Any) -> float | None:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def read_annotations(path: Path | str) -> list[dict[str, Any]]:
    """Rows of a JSONL annotations file; a malformed line is an error naming file and line."""
    rows = read_jsonl(Path(path))
    if not rows:
        raise InputError(f"{path}: the file is empty; give one {{unit, coder, value}} object a line")
    return rows


# ---------------------------------------------------------------------------------------
# Statistics as functions of unit weights
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Statistic:
    """A statistic of reliability data as a function of unit weights.

    `fn(W)` takes weights of shape (resamples, n_units) and returns one value per resample;
    `units` marks the units that carry information (the ones a bootstrap resamples).
    """

    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    units: np.ndarray

    def value(self) -> float:
        return float(self.fn(np.ones((1, self.units.size)))[0])


def _focus_parts(r: Ratings, focus: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For pairs (focus, other): focus code f, others' counts, their number k, the valid units."""
    column = r.coder_index(focus)
    f = r.codes[:, column]
    others = r.counts()
    has = f >= 0
    others[np.flatnonzero(has), f[has]] -= 1
    k = others.sum(axis=1)
    valid = has & (k >= 1)
    if not valid.any():
        raise InputError(f"{r.source}: coder {focus!r} shares no unit with another coder; nothing to compare it with")
    return np.where(has, f, 0), others, k, valid


def _ratio_distance(x: np.ndarray) -> np.ndarray:
    total = x[:, None] + x[None, :]
    diff = x[:, None] - x[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total != 0, (diff / np.where(total == 0, 1, total)) ** 2, 0.0)


def _ordinal_distance(n: np.ndarray) -> np.ndarray:
    """Krippendorff's ordinal distances from the pairable value counts n (B, V) → (B, V, V)."""
    v = n.shape[1]
    cum = np.cumsum(n, axis=1)
    i = np.arange(v)
    lo = np.minimum(i[:, None], i[None, :])
    hi = np.maximum(i[:, None], i[None, :])
    between = cum[:, hi] - cum[:, lo] + n[:, lo]
    return (between - (n[:, :, None] + n[:, None, :]) / 2) ** 2


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, numerator / np.where(denominator == 0, 1, denominator), np.nan)


def _interval_alpha(r: Ratings, focus: str | None) -> Statistic:
    """Interval α from per-unit moments (count, Σx, Σx²): no units × values table, so
    continuous values (magnitudes) cost no more than five categories."""
    x = r.numbers()
    present = r.codes >= 0
    raw = x[np.maximum(r.codes, 0)]
    centre = raw[present].mean()  # the metric ignores shifts; centred sums lose no precision
    values = np.where(present, raw - centre, 0.0)
    m = present.sum(axis=1).astype(np.float64)
    sx, sxx = values.sum(axis=1), (values * values).sum(axis=1)
    if focus is None:
        units = m >= 2
        within = np.where(units, 2 * (m * sxx - sx * sx) / np.where(units, m - 1, 1), 0.0)
        s = np.column_stack([within, m, sx, sxx]) * units[:, None]
    else:
        column = r.coder_index(focus)
        has = present[:, column]
        xf = values[:, column]
        k = m - has
        units = has & (k >= 1)
        inv_k = np.where(units, 1.0 / np.maximum(k, 1), 0.0)
        sx_o, sxx_o = sx - xf, sxx - xf * xf
        within = 2 * (k * xf * xf - 2 * xf * sx_o + sxx_o) * inv_k
        # Each unit: the focus value with weight 1 and the others' values with weight 1/k.
        s = np.column_stack([within, 2.0 * np.ones_like(m), xf + sx_o * inv_k, xf * xf + sxx_o * inv_k])
        s *= units[:, None]
        if not units.any():
            raise InputError(
                f"{r.source}: coder {focus!r} shares no unit with another coder; nothing to compare it with"
            )

    def interval(w: np.ndarray) -> np.ndarray:
        t = w @ s
        n = t[:, 1]
        expected = 2 * (n * t[:, 3] - t[:, 2] ** 2) / (n - 1)
        return 1 - _safe_ratio(t[:, 0], expected)

    return Statistic("krippendorff_alpha", interval, units)


def alpha_statistic(r: Ratings, focus: str | None = None) -> Statistic:
    """Krippendorff's α at the data's level, as a function of unit weights."""
    if r.level == "interval":
        return _interval_alpha(r, focus)
    v = r.n_values
    cells = r.n_units * v * (v if r.level == "ordinal" else 1)
    if cells > 100_000_000:
        raise InputError(
            f"{r.source}: {v} distinct values over {r.n_units} units are too many for {r.level} α here; "
            "round or bin the values, or use level 'interval'"
        )
    c = r.counts().astype(np.float64)
    if focus is None:
        m = c.sum(axis=1)
        units = m >= 2
        scale = np.where(units, 1.0 / np.where(units, m - 1, 1), 0.0)
        nvec = c * units[:, None]
    else:
        f, others, k, units = _focus_parts(r, focus)
        others = others.astype(np.float64)
        inv_k = np.where(units, 1.0 / np.maximum(k, 1), 0.0)
        onehot = np.zeros_like(c)
        onehot[np.arange(r.n_units), f] = 1.0
        onehot *= units[:, None]
        nvec = onehot + others * inv_k[:, None]

    if r.level == "ordinal":
        if focus is None:
            o = (c[:, :, None] * c[:, None, :] - c[:, :, None] * np.eye(v)) * scale[:, None, None]
        else:
            cross = onehot[:, :, None] * others[:, None, :] * inv_k[:, None, None]
            o = cross + cross.transpose(0, 2, 1)
        s = o.reshape(r.n_units, v * v)

        def ordinal(w: np.ndarray) -> np.ndarray:
            ob = (w @ s).reshape(-1, v, v)
            n = ob.sum(axis=1)
            total = n.sum(axis=1)
            d = _ordinal_distance(n)
            e = (n[:, :, None] * n[:, None, :] - n[:, :, None] * np.eye(v)) / (total - 1)[:, None, None]
            return 1 - _safe_ratio((ob * d).sum(axis=(1, 2)), (e * d).sum(axis=(1, 2)))

        return Statistic("krippendorff_alpha", ordinal, units)

    if r.level == "nominal":
        if focus is None:
            within = (m * m - (c * c).sum(axis=1)) * scale
        else:
            agree = others[np.arange(r.n_units), f]
            within = 2 * (k - agree) * inv_k * units
        s = np.column_stack([within, nvec])

        def nominal(w: np.ndarray) -> np.ndarray:
            t = w @ s
            n = t[:, 1:]
            total = n.sum(axis=1)
            expected = (total * total - (n * n).sum(axis=1)) / (total - 1)
            return 1 - _safe_ratio(t[:, 0], expected)

        return Statistic("krippendorff_alpha", nominal, units)

    # ratio
    dist = _ratio_distance(r.numbers())
    within = (
        ((c @ dist) * c).sum(axis=1) * scale if focus is None else 2 * (others * dist[f]).sum(axis=1) * inv_k * units
    )
    s = np.column_stack([within, nvec])

    def ratio(w: np.ndarray) -> np.ndarray:
        t = w @ s
        n = t[:, 1:]
        total = n.sum(axis=1)
        expected = np.einsum("bi,ij,bj->b", n, dist, n) / (total - 1)
        return 1 - _safe_ratio(t[:, 0], expected)

    return Statistic("krippendorff_alpha", ratio, units)


def _pair_agreement(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per unit: the share of agreeing coder pairs, whether it has two values, and its value count."""
    m = c.sum(axis=1)
    units = m >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        p_unit = np.where(units, (c * (c - 1)).sum(axis=1) / np.where(units, m * (m - 1), 1), 0.0)
    return p_unit, units, m


def fleiss_statistic(r: Ratings, focus: str | None = None) -> Statistic:
    """Fleiss' κ (nominal), as a function of unit weights."""
    c = r.counts().astype(np.float64)
    if focus is None:
        p_unit, units, m = _pair_agreement(c)
        s = np.column_stack([p_unit, units, c * units[:, None], m * units])
    else:
        f, others, k, units = _focus_parts(r, focus)
        inv_k = np.where(units, 1.0 / np.maximum(k, 1), 0.0)
        p_unit = others[np.arange(r.n_units), f] * inv_k
        onehot = np.zeros_like(c)
        onehot[np.arange(r.n_units), f] = 1.0
        nvec = (onehot + others * inv_k[:, None]) * units[:, None]
        s = np.column_stack([p_unit, units, nvec, 2.0 * units])
    v = r.n_values

    def kappa(w: np.ndarray) -> np.ndarray:
        t = w @ s
        observed = t[:, 0] / t[:, 1]
        shares = t[:, 2 : 2 + v] / t[:, [-1]]
        chance = (shares * shares).sum(axis=1)
        return _safe_ratio(observed - chance, 1 - chance)

    return Statistic("fleiss_kappa", kappa, units)


def percent_statistic(r: Ratings, focus: str | None = None) -> Statistic:
    """Mean over units of the share of agreeing coder pairs, as a function of unit weights."""
    c = r.counts().astype(np.float64)
    if focus is None:
        p_unit, units, _ = _pair_agreement(c)
    else:
        f, others, k, units = _focus_parts(r, focus)
        p_unit = np.where(units, others[np.arange(r.n_units), f] / np.maximum(k, 1), 0.0)
    s = np.column_stack([p_unit, units])

    def percent(w: np.ndarray) -> np.ndarray:
        t = w @ s
        return t[:, 0] / t[:, 1]

    return Statistic("percent", percent, units)


def cohen_weights(r: Ratings) -> np.ndarray:
    """Disagreement weights: nominal 0/1, ordinal |i - j| of positions, interval (x_i - x_j)²."""
    v = r.n_values
    if r.level == "nominal":
        return 1.0 - np.eye(v)
    if r.level == "ordinal":
        i = np.arange(v, dtype=np.float64)
        return np.abs(i[:, None] - i[None, :])
    if r.level == "interval":
        x = r.numbers()
        return (x[:, None] - x[None, :]) ** 2
    raise InputError("Cohen's κ has no ratio form; use krippendorff_alpha for ratio data")


def _kappa_from_confusion(conf: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = conf.sum(axis=(1, 2))
    safe_total = np.where(total == 0, 1, total)[:, None, None]
    expected = conf.sum(axis=2)[:, :, None] * conf.sum(axis=1)[:, None, :] / safe_total
    return 1 - _safe_ratio((weights * conf).sum(axis=(1, 2)), (weights * expected).sum(axis=(1, 2)))


def coder_pairs(r: Ratings, focus: str | None = None) -> list[tuple[int, int]]:
    """Coder pairs (as column indices) that share at least one unit."""
    present = r.codes >= 0
    shared = present.T.astype(np.int64) @ present.astype(np.int64)
    if focus is None:
        candidates = [(a, b) for a in range(r.n_coders) for b in range(a + 1, r.n_coders)]
    else:
        a = r.coder_index(focus)
        candidates = [(a, b) for b in range(r.n_coders) if b != a]
    return [(a, b) for a, b in candidates if shared[a, b] >= 1]


def cohen_statistic(r: Ratings, focus: str | None = None, pair: tuple[int, int] | None = None) -> Statistic:
    """Cohen's κ of one pair, or the mean over pairs (all pairs, or those with `focus`)."""
    weights = cohen_weights(r)
    v = r.n_values
    pairs = [pair] if pair is not None else coder_pairs(r, focus)
    if not pairs:
        raise InputError(f"{r.source}: no two coders share a unit; Cohen's κ needs pairs of coders")
    from scipy import sparse

    # One sparse units × (pair, joint value) indicator: a resample's confusion tables for all
    # pairs are one product with it.
    rows_, cols_ = [], []
    for index, (a, b) in enumerate(pairs):
        both = np.flatnonzero((r.codes[:, a] >= 0) & (r.codes[:, b] >= 0))
        rows_.append(both)
        cols_.append(index * v * v + r.codes[both, a] * v + r.codes[both, b])
    rows, cols = np.concatenate(rows_), np.concatenate(cols_)
    indicator = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(r.n_units, len(pairs) * v * v)).T.tocsr()
    units = np.zeros(r.n_units, dtype=bool)
    units[rows] = True

    step = max(1, _CHUNK_CELLS // (len(pairs) * v * v))  # bound the tables held at once

    def mean_kappa(w: np.ndarray) -> np.ndarray:
        out = np.empty(w.shape[0])
        for start in range(0, w.shape[0], step):
            part = w[start : start + step]
            tables = np.asarray(indicator @ part.T).T.reshape(part.shape[0] * len(pairs), v, v)
            values = _kappa_from_confusion(tables, weights).reshape(part.shape[0], len(pairs))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[start : start + step] = np.nanmean(values, axis=1)
        return out

    return Statistic("cohens_kappa", mean_kappa, units)


def statistic(r: Ratings, metric: str, focus: str | None = None) -> Statistic:
    """The named metric on `r` as a function of unit weights."""
    if metric == "krippendorff_alpha":
        return alpha_statistic(r, focus)
    if metric == "fleiss_kappa":
        if r.level != "nominal":
            raise InputError(
                f"Fleiss' κ is for nominal data, not {r.level!r}; use krippendorff_alpha "
                "(or cohens_kappa with its weights) for ordered values"
            )
        return fleiss_statistic(r, focus)
    if metric == "cohens_kappa":
        return cohen_statistic(r, focus)
    if metric == "percent":
        return percent_statistic(r, focus)
    raise InputError(f"metric {metric!r} is not one of {', '.join(METRICS)}")


# ---------------------------------------------------------------------------------------
# Point estimates
# ---------------------------------------------------------------------------------------
def krippendorff_alpha(r: Ratings, level: str | None = None) -> float:
    """Krippendorff's α from the `krippendorff` package (NaN where all values agree by chance)."""
    import krippendorff

    if level is not None and level != r.level:
        r = r.with_level(level)
    r.check_comparable()
    if r.n_units * r.n_values**2 > _PACKAGE_CELL_LIMIT:
        return alpha_statistic(r).value()
    if r.n_values < 2:
        return float("nan")
    domain = r.numbers() if r.level in ("interval", "ratio") else np.arange(r.n_values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(krippendorff.alpha(value_counts=r.counts(), value_domain=domain, level_of_measurement=r.level))


def fleiss_kappa(r: Ratings) -> float:
    """Fleiss' κ over all coders (nominal)."""
    r.check_comparable()
    return fleiss_statistic(r).value()


def cohens_kappa(r: Ratings, coder_a: str, coder_b: str) -> float:
    """Cohen's κ between two coders on the units both coded (weighted for ordered levels)."""
    a, b = r.coder_index(coder_a), r.coder_index(coder_b)
    shared = ((r.codes[:, a] >= 0) & (r.codes[:, b] >= 0)).sum()
    if shared == 0:
        raise InputError(f"{r.source}: coders {coder_a!r} and {coder_b!r} share no unit")
    return cohen_statistic(r, pair=(a, b)).value()


def cohens_kappa_pairs(r: Ratings, focus: str | None = None) -> dict[tuple[str, str], float]:
    """Cohen's κ for every pair of coders that share a unit (or every pair with `focus`)."""
    return {(r.coders[a], r.coders[b]): cohen_statistic(r, pair=(a, b)).value() for a, b in coder_pairs(r, focus)}


def mean_cohens_kappa(r: Ratings) -> float:
    """Cohen's κ averaged over coder pairs (Light's κ)."""
    r.check_comparable()
    return cohen_statistic(r).value()


def percent_agreement(r: Ratings) -> float:
    """Mean over units of the share of agreeing coder pairs."""
    r.check_comparable()
    return percent_statistic(r).value()


# ---------------------------------------------------------------------------------------
# Bootstrap over units
# ---------------------------------------------------------------------------------------
def bootstrap_weights(n_units: int, units: np.ndarray, n_boot: int, rng: np.random.Generator) -> Iterable[np.ndarray]:
    """Chunks of unit weights: each row is one resample (with replacement) of `units`.

    A weight is how many times the unit was drawn; units outside `units` weigh 0.
    """
    pool = np.flatnonzero(units)
    size = pool.size
    chunk = max(1, min(n_boot, _CHUNK_CELLS // max(size, 1)))
    done = 0
    while done < n_boot:
        rows = min(chunk, n_boot - done)
        draws = rng.integers(0, size, size=(rows, size))
        draws += (np.arange(rows) * size)[:, None]
        counts = np.bincount(draws.ravel(), minlength=rows * size).reshape(rows, size)
        if size == n_units:
            yield counts.astype(np.float64)
        else:
            weights = np.zeros((rows, n_units))
            weights[:, pool] = counts
            yield weights
        done += rows


def bootstrap(
    stats: Sequence[Statistic],
    n_boot: int,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Resample units jointly for all `stats`: an array (len(stats), n_boot) of values.

    The same resamples serve every statistic, so differences between them (a model against
    the human ceiling) can be read off paired.
    """
    if n_boot < 1 or not stats:
        return np.empty((len(stats), 0))
    units = np.logical_or.reduce([s.units for s in stats])
    rng = np.random.default_rng(seed)
    out = np.empty((len(stats), n_boot))
    done = 0
    for weights in bootstrap_weights(units.size, units, n_boot, rng):
        for index, stat in enumerate(stats):
            out[index, done : done + weights.shape[0]] = stat.fn(weights)
        done += weights.shape[0]
        if progress is not None:
            progress(done, n_boot)
    return out


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """The percentile interval of bootstrap values, ignoring undefined (NaN) resamples."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


# ---------------------------------------------------------------------------------------
# One call: a metric with its interval
# ---------------------------------------------------------------------------------------
class PairAgreement(BaseModel):
    coder_a: str
    coder_b: str
    value: float | None
    n_units: int


class AgreementResult(BaseModel):
    """A metric's value on reliability data, with its bootstrap interval over units."""

    metric: str
    level: str
    value: float | None = Field(description="None where the metric is undefined (all values alike).")
    ci_low: float | None = None
    ci_high: float | None = None
    n_units: int = Field(description="Units in the data.")
    n_coders: int
    n_pairable_units: int = Field(0, description="Units the metric reads (two or more values).")
    n_values: int = 0
    focus: str | None = Field(None, description="Coder whose pairs were measured, if any.")
    bootstrap: int = 0
    confidence: float = 0.95
    seed: int = 0
    n_undefined_resamples: int = 0
    pairs: list[PairAgreement] = Field(default_factory=list, description="Cohen's κ per pair.")
    note: str = ""

    def summary(self) -> dict[str, Any]:
        """The CLI's JSON: metric, level, value, ci_low, ci_high, n_units, n_coders (and extras)."""
        return self.model_dump(
            include={
                "metric",
                "level",
                "value",
                "ci_low",
                "ci_high",
                "n_units",
                "n_coders",
                "n_pairable_units",
                "bootstrap",
                "confidence",
                "seed",
                "focus",
            }
        )


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def agreement(
    r: Ratings,
    metric: str = "krippendorff_alpha",
    bootstrap_samples: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    focus: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AgreementResult:
    """The metric on `r`, with a percentile bootstrap interval over units when asked."""
    if metric not in METRICS:
        raise InputError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    if not 0 < confidence < 1:
        raise InputError(f"confidence {confidence} must lie strictly between 0 and 1")
    if bootstrap_samples < 0:
        raise InputError(f"bootstrap {bootstrap_samples} must be ≥ 0")
    r.check_comparable()
    stat = statistic(r, metric, focus)
    # α's point estimate comes from the krippendorff package; the closed form serves resamples.
    value = krippendorff_alpha(r) if metric == "krippendorff_alpha" and focus is None else stat.value()
    low = high = None
    undefined = 0
    if bootstrap_samples:
        draws = bootstrap([stat], bootstrap_samples, seed=seed, progress=progress)[0]
        undefined = int((~np.isfinite(draws)).sum())
        low, high = percentile_interval(draws, confidence)
    pairs: list[PairAgreement] = []
    if metric == "cohens_kappa":
        for a, b in coder_pairs(r, focus):
            shared = int(((r.codes[:, a] >= 0) & (r.codes[:, b] >= 0)).sum())
            pairs.append(
                PairAgreement(
                    coder_a=r.coders[a],
                    coder_b=r.coders[b],
                    value=_finite(cohen_statistic(r, pair=(a, b)).value()),
                    n_units=shared,
                )
            )
    notes = []
    if not math.isfinite(value):
        notes.append("undefined: the values leave no room for chance disagreement (all alike)")
    elif undefined:
        notes.append(f"{undefined} of {bootstrap_samples} resamples were undefined and left out of the interval")
    thin = sum(1 for pair in pairs if pair.n_units < _FEW_SHARED_UNITS)
    if pairs and thin * 2 >= len(pairs):
        notes.append(
            f"{thin} of {len(pairs)} coder pairs share fewer than {_FEW_SHARED_UNITS} units, so their κ "
            "(and the average) is unreliable; krippendorff_alpha suits designs where coders rarely meet"
        )
    note = "; ".join(notes)
    return AgreementResult(
        metric=metric,
        level=r.level,
        value=_finite(value),
        ci_low=low,
        ci_high=high,
        n_units=r.n_units,
        n_coders=r.n_coders,
        n_pairable_units=int(stat.units.sum()),
        n_values=r.n_values,
        focus=focus,
        bootstrap=bootstrap_samples,
        confidence=confidence,
        seed=seed,
        n_undefined_resamples=undefined,
        pairs=pairs,
        note=note,
    )
