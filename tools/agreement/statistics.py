"""Agreement statistics as functions of unit weights.

Every statistic is a function of per-unit sufficient statistics summed with unit weights: the
point estimate uses weight 1 for every unit, and a bootstrap resample uses the multiplicity of
each unit in the resample. So a 1,000-resample interval is one matrix product per chunk of
resamples, not 1,000 calls.

`focus=<coder>` restricts a statistic to the pairs that involve that coder: how well one coder
(say, a model) agrees with the others. For α, each unit's pairs (focus, other) are weighted so
the unit counts as two pairable values (the focus value and the others' value distribution);
with two coders this is α itself.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np

from alloop.tools.agreement.ratings import Level, Ratings
from alloop.tools.agreement.sets import SET_LEVELS, distance_matrix
from alloop.tools.errors import InputError
from alloop.tools.run.schema import AgreementMetric

METRICS: tuple[str, ...] = get_args(AgreementMetric)

# The krippendorff package builds a units × values × values array; above this many cells the
# same figure is computed from the closed form below (tested equal on the package's examples).
_PACKAGE_CELL_LIMIT = 20_000_000
# The closed form for nominal and ordinal α holds a units × values (× values) table; above this
# many cells it would not fit in memory, and binned values or level 'interval' are the way out.
_ALPHA_CELL_LIMIT = 100_000_000
# Cells of one chunk of bootstrap weights (resamples × units), and of Cohen's κ tables at once.
CHUNK_CELLS = 4_000_000


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
    if r.level == "ratio":
        return distance_alpha(r, _ratio_distance(r.numbers()), focus)
    if r.level in SET_LEVELS:
        return distance_alpha(r, distance_matrix(r.domain, r.level), focus)
    v = r.n_values
    cells = r.n_units * v * (v if r.level == "ordinal" else 1)
    if cells > _ALPHA_CELL_LIMIT:
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

    raise InputError(f"{r.source}: no α for level {r.level!r}")


def distance_alpha(r: Ratings, dist: np.ndarray, focus: str | None = None) -> Statistic:
    """Krippendorff's α with any difference function, given as its values × values matrix over
    `r.domain` (symmetric, zero on the diagonal), as a function of unit weights.

    Observed disagreement: each unit's pairs of values, weighted 1/(m_u − 1); expected: all pairs
    of pairable values. The set levels (MASI, Jaccard) and ratio α are this with their distances.
    """
    v = r.n_values
    if dist.shape != (v, v):
        raise InputError(f"{r.source}: the distance matrix is {dist.shape}, the domain has {v} values")
    if r.n_units * v > _ALPHA_CELL_LIMIT:
        raise InputError(
            f"{r.source}: {v} distinct values over {r.n_units} units are too many for {r.level} α here; "
            "merge rare values or measure fewer units"
        )
    c = r.counts().astype(np.float64)
    if focus is None:
        m = c.sum(axis=1)
        units = m >= 2
        scale = np.where(units, 1.0 / np.where(units, m - 1, 1), 0.0)
        within = ((c @ dist) * c).sum(axis=1) * scale
        nvec = c * units[:, None]
    else:
        f, others, k, units = _focus_parts(r, focus)
        others = others.astype(np.float64)
        inv_k = np.where(units, 1.0 / np.maximum(k, 1), 0.0)
        within = 2 * (others * dist[f]).sum(axis=1) * inv_k * units
        onehot = np.zeros_like(c)
        onehot[np.arange(r.n_units), f] = 1.0
        nvec = (onehot + others * inv_k[:, None]) * units[:, None]
    s = np.column_stack([within, nvec])

    def alpha(w: np.ndarray) -> np.ndarray:
        t = w @ s
        n = t[:, 1:]
        total = n.sum(axis=1)
        expected = np.einsum("bi,ij,bj->b", n, dist, n) / (total - 1)
        return 1 - _safe_ratio(t[:, 0], expected)

    return Statistic("krippendorff_alpha", alpha, units)


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


def cohen_weights(level: str, numbers: np.ndarray) -> np.ndarray:
    """Disagreement weights over the domain (`numbers`: its values, or positions for ordered
    categories): nominal 0/1, ordinal |i - j| of positions, interval (x_i - x_j)²."""
    v = numbers.size
    if level == "nominal":
        return 1.0 - np.eye(v)
    if level == "ordinal":
        i = np.arange(v, dtype=np.float64)
        return np.abs(i[:, None] - i[None, :])
    if level == "interval":
        return (numbers[:, None] - numbers[None, :]) ** 2
    raise InputError(f"Cohen's κ has no {level} form; use krippendorff_alpha for {level} data")


def _kappa_from_confusion(conf: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = conf.sum(axis=(1, 2))
    safe_total = np.where(total == 0, 1, total)[:, None, None]
    expected = conf.sum(axis=2)[:, :, None] * conf.sum(axis=1)[:, None, :] / safe_total
    return 1 - _safe_ratio((weights * conf).sum(axis=(1, 2)), (weights * expected).sum(axis=(1, 2)))


def cohens_kappa(
    a: Sequence[Any], b: Sequence[Any], domain: Sequence[Any] | None = None, level: Level = "nominal"
) -> float:
    """Cohen's κ between two coders who coded the same units, `a[i]` and `b[i]` for unit i.

    `domain` orders the values (the label schema; default the sorted values seen). Ordinal data
    use linear weights over its positions, interval data squared differences of its values, as
    the multi-coder statistic does. NaN where undefined (one value only).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 1 or a.shape != b.shape:
        raise InputError(f"Cohen's κ compares two coders on the same units; got {a.shape} and {b.shape} values")
    seen, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    if domain is None:
        values = seen
    else:
        values = np.asarray(domain)
        position = {value: index for index, value in enumerate(values.tolist())}
        unknown = [value for value in seen.tolist() if value not in position]
        if unknown:
            raise InputError(f"values {unknown[:5]} are not in the domain {values.tolist()}")
        codes = np.array([position[value] for value in seen.tolist()], dtype=np.int64)[codes]
    v = values.size
    numbers = values.astype(np.float64) if level == "interval" else np.arange(v, dtype=np.float64)
    table = np.bincount(codes[: a.size] * v + codes[a.size :], minlength=v * v).reshape(1, v, v)
    return float(_kappa_from_confusion(table.astype(np.float64), cohen_weights(level, numbers))[0])


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
    weights = cohen_weights(r.level, r.numbers())
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

    step = max(1, CHUNK_CELLS // (len(pairs) * v * v))  # bound the tables held at once

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
                "(or cohens_kappa with its weights) for ordered values or option sets"
            )
        return fleiss_statistic(r, focus)
    if metric == "cohens_kappa":
        return cohen_statistic(r, focus)
    if metric == "percent":
        return percent_statistic(r, focus)
    raise InputError(f"metric {metric!r} is not one of {', '.join(METRICS)}")


def krippendorff_alpha(r: Ratings, level: str | None = None) -> float:
    """Krippendorff's α from the `krippendorff` package (NaN where all values agree by chance).

    The package has no set distances: at the set levels the figure is `distance_alpha`'s (the
    tests check it against nltk's AnnotationTask).
    """
    import krippendorff

    if level is not None and level != r.level:
        r = r.with_level(level)
    r.check_comparable()
    if r.level in SET_LEVELS or r.n_units * r.n_values**2 > _PACKAGE_CELL_LIMIT:
        return alpha_statistic(r).value()
    if r.n_values < 2:
        return float("nan")
    domain = r.numbers() if r.level in ("interval", "ratio") else np.arange(r.n_values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(krippendorff.alpha(value_counts=r.counts(), value_domain=domain, level_of_measurement=r.level))


def finite(value: float) -> float | None:
    """A figure for a report: None where the statistic is undefined (NaN)."""
    return float(value) if math.isfinite(value) else None
