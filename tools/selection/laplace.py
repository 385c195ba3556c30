"""A Laplace approximation of the logistic head's posterior: the weight draws BALD averages over.

The head is multinomial (binary: one weight vector) logistic regression fitted by MAP under a
Gaussian prior: scikit-learn minimizes C·Σ loss + ‖W‖²/2, an anchored fit adds pull·‖W − W₀‖²/2.
Around the MAP θ̂ the posterior is about N(θ̂, H⁻¹), H the Hessian of that objective,

  H = P + C Σᵢ (diag pᵢ − pᵢpᵢᵀ) ⊗ x̃ᵢx̃ᵢᵀ,   x̃ = [x, 1],

with P the prior precision: 1 (+ pull) per weight; intercepts, which scikit-learn leaves
unpenalized, get a weak N(0, 1/`INTERCEPT_PRECISION`) so that H is invertible. H needs the
training features, not their labels. All labeled rows are used even when the head was a
sequential (new_only) update: the Laplace of the posterior given every label. Each draw is
scored by the head's own `predict_proba`, so temperature and the unseen-class floor apply to
draws as to the mean. Above `FULL_MAX` parameters (10 classes × 385 weights is 3,850, 11 classes
go over), factoring the full H takes seconds to minutes on a CPU, so the diagonal of H is used (a
mean-field Laplace); `kind`, and each pick's reason, say which.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from alloop.tools.errors import InputError

INTERCEPT_PRECISION = 1e-2
FULL_MAX = 4096
POSTERIOR_HEADS = ("logistic",)


@dataclass
class LaplacePosterior:
    """N(mean, H⁻¹) over the head's weights, laid out class by class as [coef | intercept]."""

    head: Any
    mean: np.ndarray
    shape: tuple[int, int]
    factor: np.ndarray
    """full: the lower Cholesky factor L of H (H = LLᵀ); diagonal: √diag(H)."""
    kind: str

    def covariance(self) -> np.ndarray:
        """H⁻¹ (for checks on small problems: D × D)."""
        if self.kind == "diagonal":
            return np.diag(1.0 / self.factor**2)
        from scipy.linalg import cho_solve

        return cho_solve((self.factor, True), np.eye(len(self.mean)))

    def sample_weights(self, draws: int, rng: np.random.Generator) -> np.ndarray:
        """draws × D weight vectors from N(mean, H⁻¹)."""
        z = rng.standard_normal((len(self.mean), draws))
        if self.kind == "diagonal":
            return (self.mean[:, None] + z / self.factor[:, None]).T
        from scipy.linalg import solve_triangular

        return (self.mean[:, None] + solve_triangular(self.factor, z, lower=True, trans="T")).T

    def probability_draws(
        self, features: np.ndarray, draws: int, rng: np.random.Generator, design: Any = None
    ) -> Iterator[np.ndarray]:
        """Class probabilities (n × k) of the rows under each weight draw, one draw at a time."""
        for theta in self.sample_weights(draws, rng):
            weights = theta.reshape(self.shape)
            model = copy.copy(self.head.model_)
            model.coef_, model.intercept_ = weights[:, :-1], weights[:, -1]
            head = copy.copy(self.head)
            head.model_ = model
            yield head.predict_proba(features, design)


def prior_precision(head: Any) -> float:
    """The weights' prior precision in the objective the head minimized (see logistic.py)."""
    if not getattr(head, "anchored_", False):
        return 1.0
    return 1.0 if getattr(head, "sequential_", False) else 1.0 + float(head.anchor_pull)


def laplace_posterior(
    head: Any, features: np.ndarray, design: Any = None, full_max: int = FULL_MAX
) -> LaplacePosterior:
    """The Laplace posterior of a fitted logistic head, from the features it was trained on."""
    name = getattr(head, "name", type(head).__name__)
    if name not in POSTERIOR_HEADS or not hasattr(head, "model_"):
        raise InputError(
            f"bald needs a posterior over the head's weights, built for the {', '.join(POSTERIOR_HEADS)} head "
            f"(binary, categorical and ordinal runs); this run's head is {name!r}: use margin, entropy, badge, "
            "cluster_margin, class_balance or typiclust"
        )
    x = head._with_predictors(np.asarray(features, dtype=np.float64), design)
    if not len(x):
        raise InputError("bald needs the head's training rows; none were found among the labels")
    xt = np.hstack([x, np.ones((len(x), 1))])
    model = head.model_
    weights = np.hstack([model.coef_, model.intercept_[:, None]]).astype(np.float64)
    k, d1 = weights.shape
    prior = np.full(d1, prior_precision(head))
    prior[-1] = INTERCEPT_PRECISION
    p = model.predict_proba(x)
    C = float(head.C)
    if k == 1:  # binary: one logit, curvature p(1 − p)
        curvature = (C * p[:, 1] * p[:, 0])[:, None, None]
    else:  # C (δ_cc' p_c − p_c p_c') per row
        curvature = C * (np.einsum("nc,cd->ncd", p, np.eye(k)) - p[:, :, None] * p[:, None, :])
    size = k * d1
    if size <= full_max:
        hessian = np.empty((k, d1, k, d1))
        for c in range(k):
            for c2 in range(c, k):  # block (c, c') = x̃ᵀ diag(curvature) x̃, symmetric in c, c'
                block = (xt * curvature[:, c, c2, None]).T @ xt
                hessian[c, :, c2, :] = block
                hessian[c2, :, c, :] = block.T
        hessian = hessian.reshape(size, size)
        hessian[np.diag_indices(size)] += np.tile(prior, k)
        factor, kind = np.linalg.cholesky(hessian), "full"
    else:
        diagonal = np.einsum("nc,ni->ci", curvature[:, np.arange(k), np.arange(k)], xt**2) + prior
        factor, kind = np.sqrt(diagonal.ravel()), "diagonal"
    return LaplacePosterior(head, weights.ravel(), (k, d1), factor, kind)
