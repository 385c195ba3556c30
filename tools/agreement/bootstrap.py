"""Bootstrap over units: resample units with replacement, as weights for the statistics."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from alloop.tools.agreement.statistics import CHUNK_CELLS, Statistic
from alloop.tools.base import ProgressFn, no_progress


def bootstrap_weights(
    n_units: int,
    units: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    strata: np.ndarray | None = None,
) -> Iterable[np.ndarray]:
    """Chunks of unit weights: each row is one resample (with replacement) of `units`.

    A weight is how many times the unit was drawn; units outside `units` weigh 0. With `strata`
    (a label per unit), each stratum is resampled apart, so every resample keeps its size.
    """
    if strata is None:
        groups = [np.flatnonzero(units)]
    else:
        groups = [np.flatnonzero(units & (strata == s)) for s in np.unique(strata[units])]
    total = sum(g.size for g in groups)
    chunk = max(1, min(n_boot, CHUNK_CELLS // max(total, 1)))
    done = 0
    while done < n_boot:
        rows = min(chunk, n_boot - done)
        weights = np.zeros((rows, n_units))
        for pool in groups:
            size = pool.size
            draws = rng.integers(0, size, size=(rows, size))
            draws += (np.arange(rows) * size)[:, None]
            weights[:, pool] = np.bincount(draws.ravel(), minlength=rows * size).reshape(rows, size)
        yield weights
        done += rows


def bootstrap(
    stats: Sequence[Statistic],
    n_boot: int,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """Resample units jointly for all `stats`: an array (len(stats), n_boot) of values.

    The same resamples serve every statistic, so differences between them (a model against
    the human ceiling) can be read off paired. `strata` resamples groups of units apart
    (held-out and pool items: each resample keeps as many of each).
    """
    if n_boot < 1 or not stats:
        return np.empty((len(stats), 0))
    units = np.logical_or.reduce([s.units for s in stats])
    rng = np.random.default_rng(seed)
    out = np.empty((len(stats), n_boot))
    done = 0
    for weights in bootstrap_weights(units.size, units, n_boot, rng, strata):
        for index, stat in enumerate(stats):
            out[index, done : done + weights.shape[0]] = stat.fn(weights)
        done += weights.shape[0]
        progress(done, n_boot, f"bootstrap {done}/{n_boot}")
    return out


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """The percentile interval of bootstrap values, ignoring undefined (NaN) resamples."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)
