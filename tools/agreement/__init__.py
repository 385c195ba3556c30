"""Agreement among coders, with bootstrap intervals over units.

Input is reliability data: rows `{unit, coder, value}` (a missing value is simply an absent
row, or `value: null`). From them `Ratings` builds a units × coders table of codes into an
ordered value domain (the label schema where one is given). On it:

- Krippendorff's α for nominal, ordinal, interval and ratio data (the point estimate comes from
  the `krippendorff` package; missing values allowed, units with one value carry nothing), and
  for option sets (multi-select answers) with the MASI or Jaccard set distance (levels `masi`,
  `jaccard`; `sets`), computed here and checked against nltk's AnnotationTask in the tests;
- Fleiss' κ (Fleiss 1971; where units have different numbers of ratings, each unit's agreement
  uses its own number of raters and the category shares are pooled over all ratings);
- Cohen's κ per pair of coders and averaged over pairs (Light's κ); ordinal data use linear
  weights over the ordered categories, interval data squared differences of the values (no
  ratio or set form: α covers those);
- percent agreement: the mean over units of the share of agreeing coder pairs (for two coders,
  the share of units on which they agree; for option sets, equal sets). A proportion in [0, 1].

`ratings` reads and checks the data, `statistics` writes each metric as a function of unit
weights (so a bootstrap is a matrix product), `bootstrap` resamples units, and `agreement()`
here is the one call that puts them together. `convergence` measures a run's model against its
annotators and is imported on its own (it reads run files); `answers` normalizes written answers
for it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from alloop.tools.agreement.bootstrap import bootstrap, percentile_interval
from alloop.tools.agreement.ratings import Level, Ratings, read_annotations
from alloop.tools.agreement.sets import SET_LEVELS
from alloop.tools.agreement.statistics import (
    METRICS,
    coder_pairs,
    cohen_statistic,
    cohens_kappa,
    distance_alpha,
    finite,
    krippendorff_alpha,
    statistic,
)
from alloop.tools.base import ProgressFn, no_progress
from alloop.tools.errors import InputError

__all__ = [
    "METRICS",
    "SET_LEVELS",
    "AgreementResult",
    "Level",
    "PairAgreement",
    "Ratings",
    "agreement",
    "cohens_kappa",
    "distance_alpha",
    "krippendorff_alpha",
    "read_annotations",
]

# When most coder pairs share fewer units than this, averaged Cohen's κ is unreliable (a note says so).
_FEW_SHARED_UNITS = 5


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


def agreement(
    r: Ratings,
    metric: str = "krippendorff_alpha",
    bootstrap_samples: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    focus: str | None = None,
    progress: ProgressFn = no_progress,
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
                    value=finite(cohen_statistic(r, pair=(a, b)).value()),
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
        value=finite(value),
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
