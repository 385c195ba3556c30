"""The numerical core, in torch (float64): relative covariance factors, lme4's profiled LMM
criterion, and the Laplace approximation of a GLMM's marginal likelihood.

Notation follows lme4 (Bates et al. 2015, "Fitting linear mixed-effects models using lme4"):
b = Λ_θ u with u ~ N(0, I) (times σ² for the LMM), Λ_θ block diagonal with one lower-triangular
k×k factor T per term repeated over its J levels; θ holds the elements of each T, column by
column, and the diagonal ones are bounded below by 0.

- LMM: for given θ the penalized least-squares problem gives β̂, û and the penalized residual
  sum of squares r²; the profiled deviance is log|L|² + n(1 + log(2πr²/n)) (ML) and the REML
  criterion log|L|² + log|R_X|² + (n−p)(1 + log(2πr²/(n−p))), with L the Cholesky factor of
  Λ'Z'ZΛ + I and R_X that of the Schur complement X'X − R_ZX'R_ZX.
- GLMM (glmer nAGQ = 1, ordinal::clmm): the conditional mode û maximizes
  Σ log p(y|η) − ‖u‖²/2 (Newton with step halving), and the Laplace deviance is
  −2 Σ log p(y|η̂) + ‖û‖² + log|Λ'Z'WZΛ + I|, W the observed information at û.
  Its derivatives in (θ, β, α) flow through û by taking differentiable Newton steps from the
  converged û: one step gives exact first derivatives, two exact second derivatives.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from alloop.tools.glmm.design import ModelFrame
from alloop.tools.glmm.families import Family


def _torch() -> Any:
    import torch

    return torch


class Problem:
    """The frame's arrays as float64 tensors, with the θ layout of its terms."""

    def __init__(self, frame: ModelFrame, family: Family | None = None) -> None:
        torch = _torch()
        f64 = torch.float64
        self.frame = frame
        self.family = family
        self.X = torch.as_tensor(frame.X, dtype=f64)
        self.y = torch.as_tensor(frame.y, dtype=f64)
        self.n, self.p = self.X.shape
        self.terms = [(t.k, t.J, torch.as_tensor(t.Z, dtype=f64), torch.as_tensor(t.index)) for t in frame.terms]
        self.shared = [(t.shared, t.scale) for t in frame.terms]
        self.q = sum(k * J for k, J, _, _ in self.terms)
        # θ layout: per term, the lower triangle of T column by column (lme4's order)
        self.theta_index: list[tuple[np.ndarray, np.ndarray]] = []
        lower, start = [], []
        for (k, _, _, _), (shared, scale) in zip(self.terms, self.shared, strict=True):
            if shared:  # T = θ·I: one element, or none when the scale is fixed
                self.theta_index.append((np.zeros(int(scale is None)), np.zeros(0)))
                if scale is None:  # start with the features' total variance on η at 1
                    lower.append(0.0)
                    start.append(1.0 / math.sqrt(k))
                continue
            rows, cols = [], []
            for c in range(k):
                for r in range(c, k):
                    rows.append(r)
                    cols.append(c)
                    lower.append(0.0 if r == c else -np.inf)
                    start.append(1.0 if r == c else 0.0)
            self.theta_index.append((np.asarray(rows), np.asarray(cols)))
        self.theta_lower = np.asarray(lower)
        self.theta_start = np.asarray(start)
        self.n_theta = len(lower)
        self.rows = torch.arange(self.n)
        self._cross: dict[str, Any] | None = None

    # -- the LMM's cross-products: computed once, so each evaluation costs O(q³), not O(nq²) --
    def cross(self) -> dict[str, Any]:
        if self._cross is None:
            torch = _torch()
            Z = self.z_dense()
            rows, cols, which, consts, pos, t = [], [], [], [], 0, 0
            for (k, J, _, _), (r, c), (shared, scale) in zip(self.terms, self.theta_index, self.shared, strict=True):
                if shared:  # diagonal θ·I (or a fixed scale, stored after θ)
                    rows.append(pos + np.arange(k))
                    cols.append(pos + np.arange(k))
                    which.append(np.full(k, t if scale is None else self.n_theta + len(consts)))
                    if scale is not None:
                        consts.append(scale)
                for e in range(0 if shared else len(r)):
                    rows.append(pos + np.arange(J) * k + r[e])
                    cols.append(pos + np.arange(J) * k + c[e])
                    which.append(np.full(J, t + e))
                pos += J * k
                t += len(r)
            self._cross = {
                "ZtZ": Z.T @ Z,
                "ZtX": Z.T @ self.X,
                "Zty": Z.T @ self.y,
                "XtX": self.X.T @ self.X,
                "Xty": self.X.T @ self.y,
                "yty": self.y @ self.y,
                "index": (torch.as_tensor(np.concatenate(rows)), torch.as_tensor(np.concatenate(cols))),
                "which": torch.as_tensor(np.concatenate(which)),
                "consts": torch.as_tensor(consts, dtype=torch.float64),
            }
        return self._cross

    def z_dense(self) -> Any:
        """Z itself (n × q): ZΛ with every T = I."""
        torch = _torch()
        blocks = []
        for k, J, Z, idx in self.terms:
            B = torch.zeros((self.n, J, k), dtype=Z.dtype).index_put((self.rows, idx), Z)
            blocks.append(B.reshape(self.n, J * k))
        return torch.cat(blocks, dim=1) if blocks else torch.zeros((self.n, 0), dtype=torch.float64)

    def lambda_dense(self, theta: Any) -> Any:
        """Λ_θ as a dense q × q matrix (block diagonal, one T per level)."""
        torch = _torch()
        c = self.cross()
        values = torch.cat([theta, c["consts"]])[c["which"]]
        return torch.zeros((self.q, self.q), dtype=theta.dtype).index_put(c["index"], values)

    # -- covariance factors ---------------------------------------------------------------
    def factors(self, theta: Any) -> list[Any]:
        """The lower-triangular factor T of each term (Σ_term = σ² T T' for the LMM)."""
        torch = _torch()
        out, pos = [], 0
        for (k, _, _, _), (r, c), (shared, scale) in zip(self.terms, self.theta_index, self.shared, strict=True):
            m = len(r)
            if shared:
                s = theta[pos] if scale is None else theta.new_tensor(scale)
                out.append(s * torch.eye(k, dtype=theta.dtype))
                pos += m
                continue
            T = torch.zeros((k, k), dtype=theta.dtype)
            T = T.index_put((torch.as_tensor(r), torch.as_tensor(c)), theta[pos : pos + m])
            out.append(T)
            pos += m
        return out

    def zlambda(self, theta: Any) -> Any:
        """ZΛ_θ (n × q), dense; columns ordered term by term, level by level, then column."""
        torch = _torch()
        blocks = []
        for (k, J, Z, idx), T, (shared, _) in zip(self.terms, self.factors(theta), self.shared, strict=True):
            if shared:  # one level: the block is Z scaled
                blocks.append(Z * T[0, 0])
                continue
            V = Z @ T  # row i: z_i' T
            B = torch.zeros((self.n, J, k), dtype=V.dtype)
            B = B.index_put((self.rows, idx), V)
            blocks.append(B.reshape(self.n, J * k))
        if not blocks:
            return torch.zeros((self.n, 0), dtype=torch.float64)
        return torch.cat(blocks, dim=1)

    def ranef(self, theta: Any, u: Any) -> list[np.ndarray]:
        """Conditional modes b = Λu per term, as J × k arrays."""
        out, pos = [], 0
        for (k, J, _, _), T in zip(self.terms, self.factors(theta), strict=True):
            uu = u[pos : pos + J * k].reshape(J, k)
            out.append((uu @ T.T).detach().numpy())
            pos += J * k
        return out

    def ranef_cov(self, theta: Any, cov_u: Any) -> list[np.ndarray]:
        """Conditional covariances of b = Λu per term and level (J × k × k), from that of u."""
        out, pos = [], 0
        for (k, J, _, _), T in zip(self.terms, self.factors(theta), strict=True):
            idx = pos + np.arange(J)[:, None] * k + np.arange(k)[None, :]  # J × k
            blocks = cov_u[idx[:, :, None], idx[:, None, :]]  # J × k × k
            Tn = T.detach().numpy()
            out.append(Tn @ blocks @ Tn.T)
            pos += J * k
        return out

    def zl(self, theta: Any) -> DenseZL | SparseZL:
        """ZΛ_θ as an operator: sparse (a few nonzeros per row) when every term is a grouping
        term and W is diagonal, else dense."""
        torch = _torch()
        if any(shared for shared, _ in self.shared) or getattr(self.family, "name", "") in (
            "categorical",
            "forced_choice",
        ):
            return DenseZL(self.zlambda(theta))
        cols, vals, pos = [], [], 0
        for (k, J, Z, idx), T in zip(self.terms, self.factors(theta), strict=True):
            cols.append(pos + idx[:, None] * k + torch.arange(k)[None, :])
            vals.append(Z @ T)
            pos += J * k
        if not cols:
            return DenseZL(torch.zeros((self.n, 0), dtype=torch.float64))
        return SparseZL(torch.cat(cols, dim=1), torch.cat(vals, dim=1), self.q)

    def information(self, theta: Any, W: Any = None) -> Any:
        """Λ'Z'WZΛ + I (W = 1 for the LMM): the conditional precision of u."""
        torch = _torch()
        ZL = self.zlambda(theta)
        return weighted_gram(ZL, torch.ones(ZL.shape[0], dtype=ZL.dtype) if W is None else W) + torch.eye(
            self.q, dtype=ZL.dtype
        )


class DenseZL:
    """ZΛ as a dense n × q matrix."""

    def __init__(self, M: Any) -> None:
        self.M = M

    def mv(self, u: Any) -> Any:
        return self.M @ u

    def rmv(self, g: Any) -> Any:
        return self.M.T @ g

    def gram(self, W: Any) -> Any:
        return weighted_gram(self.M, W)


class SparseZL:
    """ZΛ stored by rows: the column index and value of each row's s nonzeros (one block of k
    per term), so products cost O(n·s) and Λ'Z'WZΛ O(n·s²) instead of O(n·q²)."""

    def __init__(self, cols: Any, vals: Any, q: int) -> None:
        self.cols, self.vals, self.q = cols, vals, q
        s = cols.shape[1]
        self.pairs = (cols[:, :, None] * q + cols[:, None, :]).reshape(-1)
        self.s = s

    def mv(self, u: Any) -> Any:
        return (self.vals * u[self.cols]).sum(dim=1)

    def rmv(self, g: Any) -> Any:
        torch = _torch()
        out = torch.zeros(self.q, dtype=self.vals.dtype)
        return out.index_add(0, self.cols.reshape(-1), (self.vals * g[:, None]).reshape(-1))

    def gram(self, W: Any) -> Any:
        torch = _torch()
        outer = (W[:, None, None] * self.vals[:, :, None] * self.vals[:, None, :]).reshape(-1)
        flat = torch.zeros(self.q * self.q, dtype=self.vals.dtype).index_add(0, self.pairs, outer)
        return flat.reshape(self.q, self.q)


def weighted_gram(ZL: Any, W: Any) -> Any:
    """Λ'Z'WZΛ for W diagonal (a vector, one η per observation) or block diagonal (n × m × m,
    m linear predictors per observation stored row after row, as the categorical family)."""
    if W.dim() == 1:
        return ZL.T @ (W[:, None] * ZL)
    n, m, _ = W.shape
    Z3 = ZL.reshape(n, m, ZL.shape[1])
    return sum(Z3[:, c, :].T @ (W[:, c, d][:, None] * Z3[:, d, :]) for c in range(m) for d in range(m))


# -- linear mixed models: lme4's profiled criterion ------------------------------------------
def lmm_criterion(P: Problem, theta: Any, reml: bool) -> dict[str, Any]:
    """Profiled deviance (ML) or REML criterion at θ, with β̂, û, r² and the factors.

    Works on the cross-products Z'Z, Z'X, Z'y, X'X, X'y, y'y (computed once): with c_u, c_β the
    forward-solved right-hand sides, r² = y'y − ‖c_u‖² − ‖c_β‖² (lme4's penalized RSS).
    """
    torch = _torch()
    n, p = P.n, P.p
    if P.q:
        c = P.cross()
        Lam = P.lambda_dense(theta)
        A = Lam.T @ c["ZtZ"] @ Lam + torch.eye(P.q, dtype=Lam.dtype)
        L = torch.linalg.cholesky(A)
        cu = torch.linalg.solve_triangular(L, (Lam.T @ c["Zty"])[:, None], upper=False)[:, 0]
        RZX = torch.linalg.solve_triangular(L, Lam.T @ c["ZtX"], upper=False)
        XtX = c["XtX"] - RZX.T @ RZX
        Xty = c["Xty"] - RZX.T @ cu
        yty = c["yty"]
        logdet_L = 2 * torch.log(torch.diagonal(L)).sum()
    else:
        XtX, Xty, yty = P.X.T @ P.X, P.X.T @ P.y, P.y @ P.y
        cu = torch.zeros(0, dtype=P.X.dtype)
        logdet_L = torch.zeros((), dtype=P.X.dtype)
    RX = torch.linalg.cholesky(XtX)
    cb = torch.linalg.solve_triangular(RX, Xty[:, None], upper=False)[:, 0]
    beta = torch.linalg.solve_triangular(RX.T, cb[:, None], upper=True)[:, 0]
    pwrss = yty - cu @ cu - cb @ cb
    u = torch.linalg.solve_triangular(L.T, (cu - RZX @ beta)[:, None], upper=True)[:, 0] if P.q else cu
    logdet_RX = 2 * torch.log(torch.diagonal(RX)).sum()
    if reml:
        nmp = n - p
        dev = logdet_L + logdet_RX + nmp * (1 + torch.log(2 * math.pi * pwrss / nmp))
        sigma2 = pwrss / nmp
    else:
        dev = logdet_L + n * (1 + torch.log(2 * math.pi * pwrss / n))
        sigma2 = pwrss / n
    return {"dev": dev, "beta": beta, "u": u, "sigma2": sigma2, "RX": RX, "pwrss": pwrss}


# -- generalized linear mixed models: the Laplace approximation -------------------------------
def _penalized(P: Problem, ZL: Any, off: Any, alpha: Any, u: Any) -> Any:
    return -P.family.loglik(off + ZL.mv(u), P.y, alpha).sum() + 0.5 * (u @ u)


def conditional_modes(
    P: Problem, ZL: Any, off: Any, alpha: Any, u0: Any, tol: float = 1e-10, max_iter: int = 100
) -> tuple[Any, bool]:
    """û = argmax Σ log p(y | off + ZΛu) − ‖u‖²/2 by Newton with step halving (no gradients).

    `ZL` is the operator from `Problem.zl`."""
    torch = _torch()
    eye = torch.eye(P.q, dtype=off.dtype)
    u = u0.clone()
    f = _penalized(P, ZL, off, alpha, u)
    for _ in range(max_iter):
        g, W = P.family.derivs(off + ZL.mv(u), P.y, alpha)
        grad = u - ZL.rmv(g)
        if float(grad.abs().max()) < tol:
            return u, True
        H = ZL.gram(W) + eye
        L, info = torch.linalg.cholesky_ex(H)
        if int(info) != 0 or not bool(torch.isfinite(grad).all()):
            return u, False
        step = torch.cholesky_solve(grad[:, None], L)[:, 0]
        t = 1.0
        while True:
            un = u - t * step
            fn = _penalized(P, ZL, off, alpha, un)
            if bool(torch.isfinite(fn)) and float(fn) <= float(f) + 1e-12 * abs(float(f)):
                break
            t /= 2
            if t < 1e-10:
                return u, False
        u, f = un, fn
    g, _ = P.family.derivs(off + ZL.mv(u), P.y, alpha)
    return u, float((u - ZL.rmv(g)).abs().max()) < 1e-6


def laplace_deviance(
    P: Problem, theta: Any, beta: Any, alpha: Any, u_star: Any, newton_steps: int = 1
) -> tuple[Any, Any]:
    """−2 × the Laplace log-likelihood at (θ, β, α), differentiable through û.

    `u_star` are the converged conditional modes (no gradient); `newton_steps` differentiable
    Newton steps from them carry the derivatives of û (1 for gradients, 2 for Hessians).
    """
    torch = _torch()
    off = P.X @ beta
    if P.q == 0:
        return -2 * P.family.loglik(off, P.y, alpha).sum(), u_star
    ZL = P.zl(theta)
    eye = torch.eye(P.q, dtype=off.dtype)
    u = u_star
    for _ in range(newton_steps):
        g, W = P.family.derivs(off + ZL.mv(u), P.y, alpha)
        H = ZL.gram(W) + eye
        u = u - torch.cholesky_solve((u - ZL.rmv(g))[:, None], torch.linalg.cholesky(H))[:, 0]
    eta = off + ZL.mv(u)
    _, W = P.family.derivs(eta, P.y, alpha)
    L = torch.linalg.cholesky(ZL.gram(W) + eye)
    dev = -2 * P.family.loglik(eta, P.y, alpha).sum() + u @ u + 2 * torch.log(torch.diagonal(L)).sum()
    return dev, u
