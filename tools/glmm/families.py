"""Conditional likelihoods p(y | η) of the non-Gaussian families, in torch (float64).

Each family gives, per observation, log p(y | η) and its first derivative g = ∂ log p/∂η and
the negative second derivative W = −∂² log p/∂η² (the observed information, as glmer uses for
the logit link and ordinal::clmm for the cumulative logit). Families with extra parameters
(the ordinal thresholds) take them as a tensor `alpha`. Families with m > 1 linear predictors
per observation (categorical, forced_choice) store them row after row and return W as
n × m × m blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from torch import Tensor

BIG = 1e4  # stands in for ±∞ in the padded thresholds; exp(−1e4) underflows to exactly 0


class Family(Protocol):
    """The contract of a non-Gaussian family: what the Laplace fit and prediction call.

    `eta` holds the linear predictors (n, or n·m row after row for m > 1 per observation), `y`
    the coded responses, `alpha` the `n_aux` extra parameters (thresholds) or None.
    """

    name: str
    n_aux: int
    """How many extra parameters (alpha) the family estimates beside the fixed effects."""

    def loglik(self, eta: Tensor, y: Tensor, alpha: Tensor | None = None) -> Tensor:
        """log p(y | η) per observation."""
        ...

    def derivs(self, eta: Tensor, y: Tensor, alpha: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """g = ∂ log p/∂η and W = −∂² log p/∂η² (n, or n × m × m blocks)."""
        ...

    def prob(self, eta: Tensor, alpha: Tensor | None = None) -> Tensor:
        """P(y = k | η) as an n × K table."""
        ...


class Binary:
    """Bernoulli with the logit link: log p = yη − log(1 + e^η)."""

    name = "binary"
    n_aux = 0

    def loglik(self, eta: Any, y: Any, alpha: Any = None) -> Any:
        import torch.nn.functional as F

        return y * eta - F.softplus(eta)

    def derivs(self, eta: Any, y: Any, alpha: Any = None) -> tuple[Any, Any]:
        import torch

        mu = torch.sigmoid(eta)
        return y - mu, mu * (1 - mu)

    def prob(self, eta: Any, alpha: Any = None) -> Any:
        """P(y = 1) as an n × 2 table (columns 0, 1)."""
        import torch

        p1 = torch.sigmoid(eta)
        return torch.stack([1 - p1, p1], dim=-1)


class Ordinal:
    """Cumulative logit: P(y ≤ k) = logit⁻¹(α_k − η), k = 0..K−2 (ordinal::clmm's convention)."""

    name = "ordinal"

    def __init__(self, n_levels: int) -> None:
        self.K = n_levels
        self.n_aux = n_levels - 1

    def _bounds(self, eta: Any, y: Any, alpha: Any) -> tuple[Any, Any]:
        import torch

        pad = torch.cat([alpha.new_tensor([-BIG]), alpha, alpha.new_tensor([BIG])])
        yi = y.long()
        return pad[yi + 1] - eta, pad[yi] - eta  # upper a, lower b

    def loglik(self, eta: Any, y: Any, alpha: Any) -> Any:
        import torch
        import torch.nn.functional as F

        a, b = self._bounds(eta, y, alpha)
        # log(σ(a) − σ(b)) = log σ(a) + log(1 − e^{b−a}) − log(1 + e^b), stable for a > b
        return F.logsigmoid(a) + torch.log(-torch.expm1(b - a)) - F.softplus(b)

    def derivs(self, eta: Any, y: Any, alpha: Any) -> tuple[Any, Any]:
        import torch

        a, b = self._bounds(eta, y, alpha)
        sa, sb = torch.sigmoid(a), torch.sigmoid(b)
        fa, fb = sa * (1 - sa), sb * (1 - sb)
        dfa, dfb = fa * (1 - 2 * sa), fb * (1 - 2 * sb)
        p = torch.exp(self.loglik(eta, y, alpha)).clamp_min(1e-300)
        r = (fa - fb) / p
        # d log p/dη = −(f(a) − f(b))/p ; W = r² − (f'(a) − f'(b))/p ≥ 0 (log-concave), kept so
        # against rounding where p underflows
        return -r, (r * r - (dfa - dfb) / p).clamp_min(0)

    def prob(self, eta: Any, alpha: Any) -> Any:
        import torch

        cum = torch.sigmoid(alpha[None, :] - eta[:, None])
        ones = torch.ones_like(eta)[:, None]
        zeros = torch.zeros_like(eta)[:, None]
        cum = torch.cat([zeros, cum, ones], dim=1)
        return (cum[:, 1:] - cum[:, :-1]).clamp_min(0)


class Categorical:
    """Baseline-category (multinomial) logit: m = K − 1 linear predictors per observation,
    stored row after row (observation i, category c at position i·m + c − 1); category 0 is
    the baseline. W is the m × m block diag(p) − pp' per observation."""

    name = "categorical"
    n_aux = 0

    def __init__(self, n_levels: int) -> None:
        self.K = n_levels
        self.m = n_levels - 1

    def _logits(self, eta: Any) -> Any:
        import torch

        E = eta.reshape(-1, self.m)
        return torch.cat([torch.zeros_like(E[:, :1]), E], dim=1)

    def loglik(self, eta: Any, y: Any, alpha: Any = None) -> Any:
        import torch

        full = self._logits(eta)
        return full.gather(1, y.long()[:, None])[:, 0] - torch.logsumexp(full, dim=1)

    def derivs(self, eta: Any, y: Any, alpha: Any = None) -> tuple[Any, Any]:
        import torch

        p = torch.softmax(self._logits(eta), dim=1)[:, 1:]
        onehot = torch.nn.functional.one_hot(y.long(), self.K)[:, 1:].to(p.dtype)
        W = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        return (onehot - p).reshape(-1), W

    def prob(self, eta: Any, alpha: Any = None) -> Any:
        import torch

        return torch.softmax(self._logits(eta), dim=1)


class ForcedChoice:
    """Conditional logit: a trial's N options compete, P(option j) = softmax_j(η) over the
    trial's rows (stored trial after trial); W is the N × N block diag(p) − pp'."""

    name = "forced_choice"
    n_aux = 0

    def __init__(self, n_options: int) -> None:
        self.N = n_options

    def loglik(self, eta: Any, y: Any, alpha: Any = None) -> Any:
        import torch

        logp = torch.log_softmax(eta.reshape(-1, self.N), dim=1)
        return logp.gather(1, y.long()[:, None])[:, 0]

    def derivs(self, eta: Any, y: Any, alpha: Any = None) -> tuple[Any, Any]:
        import torch

        p = torch.softmax(eta.reshape(-1, self.N), dim=1)
        onehot = torch.nn.functional.one_hot(y.long(), self.N).to(p.dtype)
        return (onehot - p).reshape(-1), torch.diag_embed(p) - p[:, :, None] * p[:, None, :]

    def prob(self, eta: Any, alpha: Any = None) -> Any:
        import torch

        return torch.softmax(eta.reshape(-1, self.N), dim=1)
