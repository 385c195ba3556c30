"""Fitting: `fit(frame)` estimates a (G)LMM as lme4 / ordinal do and returns a `GLMMFit`.

- gaussian (and magnitude): lmer's profiled deviance (ML) or REML criterion, optimized over θ
  (L-BFGS-B with torch gradients, then Newton polishing with the exact Hessian); β̂ and σ̂
  profiled out; SE(β̂) from σ̂²(R_X'R_X)⁻¹ as lmer reports them.
- binary, ordinal, categorical and forced_choice: the Laplace deviance, first over (β, α)
  alone, then jointly over (θ, β, α) as glmer's second stage and clmm do; SEs from the inverse
  of the exact Hessian of the Laplace deviance over all parameters (glmer's `use.hessian`,
  clmm's `Hess = TRUE`). Categorical (baseline-category logit, one η per non-baseline
  category) and forced_choice (conditional logit over a trial's options) have m η's per
  observation and block-diagonal W.

Diagnostics: `converged` (optimizer success and lme4's check max|H⁻¹g| < 0.002), `singular`
(a variance or Cholesky diagonal at its 0 bound, θ < 1e-4 as lme4's isSingular), `warnings`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alloop.tools.errors import InputError
from alloop.tools.glmm.design import ModelFrame, new_design
from alloop.tools.glmm.families import Binary, Categorical, ForcedChoice, Ordinal
from alloop.tools.glmm.laplace import Problem, conditional_modes, laplace_deviance, lmm_criterion

SINGULAR_TOL = 1e-4
GRAD_TOL = 2e-3


@dataclass
class GLMMFit:
    """A fitted model: estimates, standard errors, variance components and diagnostics."""

    frame: ModelFrame
    beta: np.ndarray
    beta_se: np.ndarray
    theta: np.ndarray
    covariances: list[np.ndarray]  # per term, k × k (on the η scale)
    ranef: list[np.ndarray]  # per term, J × k conditional modes
    ranef_cov: list[np.ndarray]  # per term, J × k × k conditional covariances
    loglik: float
    criterion: str  # "ML", "REML" or "Laplace"
    converged: bool
    singular: bool
    seconds: float
    alpha: np.ndarray | None = None
    alpha_se: np.ndarray | None = None
    sigma: float | None = None
    vcov: np.ndarray | None = None
    iterations: int = 0
    warnings: list[str] = field(default_factory=list)

    def sorted_modes(self, max_levels: int) -> dict[str, list[tuple[str, float, float]]]:
        """Each random effect's (level, conditional mode, conditional SD), sorted by mode: a caterpillar.

        Keyed `group:column`; the shared feature term is left out (its "levels" are embedding
        dimensions, not people or items). A term with more levels keeps an even spread of them,
        extremes included.
        """
        out: dict[str, list[tuple[str, float, float]]] = {}
        for term, modes, sds in zip(self.frame.terms, self.ranef, self.ranef_sd, strict=True):
            if term.shared:
                continue
            for a, column in enumerate(term.columns):
                order = np.argsort(modes[:, a])
                if len(order) > max_levels:
                    order = order[np.unique(np.linspace(0, len(order) - 1, max_levels).round().astype(int))]
                out[f"{term.group}:{column}"] = [(term.levels[j], float(modes[j, a]), float(sds[j, a])) for j in order]
        return out

    @property
    def ranef_sd(self) -> list[np.ndarray]:
        """Conditional SDs of the random effects, per term J × k."""
        return [np.sqrt(np.clip(np.diagonal(c, axis1=1, axis2=2), 0, None)) for c in self.ranef_cov]

    # -- reporting ------------------------------------------------------------------------
    @property
    def family(self) -> str:
        return self.frame.spec.family

    def sd(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for term, S in zip(self.frame.terms, self.covariances, strict=True):
            if term.shared:
                out[f"{term.group}:(prior)"] = float(np.sqrt(S[0, 0]))
                continue
            for c, v in zip(term.columns, np.sqrt(np.diag(S)), strict=True):
                out[f"{term.group}:{c}"] = float(v)
        if self.sigma is not None:
            out["residual"] = float(self.sigma)
        return out

    def cor(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for term, S in zip(self.frame.terms, self.covariances, strict=True):
            if term.shared:
                continue
            s = np.sqrt(np.diag(S))
            for a in range(term.k):
                for b in range(a + 1, term.k):
                    r = S[a, b] / (s[a] * s[b]) if s[a] > 0 and s[b] > 0 else float("nan")
                    out[f"{term.group}:{term.columns[a]}:{term.columns[b]}"] = float(r)
        return out

    def to_json(self) -> dict[str, Any]:
        """The shape `alloop glmm fit --json` prints."""
        out: dict[str, Any] = {
            "fixed": {
                name: {"estimate": float(b), "se": float(s)}
                for name, b, s in zip(self.frame.x_names, self.beta, self.beta_se, strict=True)
            }
        }
        if self.alpha is not None:
            out["thresholds"] = [float(a) for a in self.alpha]
            out["threshold_se"] = [float(a) for a in self.alpha_se]
            out["levels"] = list(self.frame.response_levels)
        out["sd"] = self.sd()
        out["cor"] = self.cor()
        out["loglik"] = float(self.loglik)
        out["converged"] = bool(self.converged)
        out["singular"] = bool(self.singular)
        out["seconds"] = round(self.seconds, 4)
        out["family"] = self.family
        out["mode"] = self.frame.spec.mode
        out["criterion"] = self.criterion
        out["n"] = int(self.frame.n)
        out["groups"] = {t.group: t.J for t in self.frame.terms}
        out["warnings"] = list(self.warnings)
        return out

    # -- prediction -----------------------------------------------------------------------
    def linear_predictor(
        self,
        data: Mapping[str, Sequence | np.ndarray],
        features: np.ndarray | None = None,
        posterior: bool = False,
        extra_var: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """η for new rows and the variance around it that prediction should integrate over.

        Seen participants/items contribute their conditional modes; unseen ones contribute
        nothing to η and their random-effect variance z'Σz to the variance. With `posterior`,
        the conditional (posterior) variance of the seen effects and of the feature weights is
        added too, and `extra_var` (per row) as given.
        """
        X, terms = new_design(data, self.frame, features=features)
        eta = X @ self.beta
        var = np.zeros(len(eta)) if extra_var is None else np.asarray(extra_var, dtype=np.float64).copy()
        for (idx, Z), b, S, C in zip(terms, self.ranef, self.covariances, self.ranef_cov, strict=True):
            seen = idx >= 0
            eta[seen] += np.einsum("ij,ij->i", Z[seen], b[idx[seen]])
            var[~seen] += np.einsum("ij,jk,ik->i", Z[~seen], S, Z[~seen])
            if posterior and seen.any():
                var[seen] += np.einsum("ij,ijk,ik->i", Z[seen], C[idx[seen]], Z[seen])
        return eta, var

    def predict_proba(
        self,
        data: Mapping[str, Sequence | np.ndarray],
        marginal: bool = True,
        features: np.ndarray | None = None,
        posterior: bool = False,
        extra_var: np.ndarray | None = None,
    ) -> np.ndarray:
        """Category probabilities (n × K). With `marginal`, unseen participants/items are
        integrated over their random-effect distribution (Gauss–Hermite), not set to 0."""
        import torch

        if self.family in ("gaussian", "magnitude"):
            raise InputError(f"predict_proba is for discrete responses; use predict for {self.family}")
        if self.family in ("categorical", "forced_choice"):
            return self._categorical_proba(data, marginal)
        eta, var = self.linear_predictor(data, features=features, posterior=posterior, extra_var=extra_var)
        fam = _family(self.frame)
        alpha = None if self.alpha is None else torch.as_tensor(self.alpha)
        if not marginal or not var.any():
            return fam.prob(torch.as_tensor(eta), alpha).numpy()
        nodes, weights = np.polynomial.hermite_e.hermegauss(32)
        weights = weights / weights.sum()
        out = 0.0
        for z, w in zip(nodes, weights, strict=True):
            out = out + w * fam.prob(torch.as_tensor(eta + z * np.sqrt(var)), alpha).numpy()
        return out

    def _categorical_proba(self, data: Mapping[str, Sequence | np.ndarray], marginal: bool) -> np.ndarray:
        """Softmax of the m linear predictors; unseen participants/items integrated over their
        m × m random-effect covariance by Monte Carlo (fixed seed, antithetic draws)."""
        X, terms = new_design(data, self.frame)
        baseline = self.family == "categorical"  # forced_choice: all N options have an η
        m = len(self.frame.response_levels) - baseline
        eta = X @ self.beta
        n = len(eta) // m
        cov = np.zeros((n, m, m))
        for (idx, Z), b, S, term in zip(terms, self.ranef, self.covariances, self.frame.terms, strict=True):
            seen = idx >= 0
            eta[seen] += np.einsum("ij,ij->i", Z[seen], b[idx[seen]])
            Z3 = Z.reshape(n, m, -1)
            if baseline or term.group == "participant":  # one level shared by the m rows
                unseen = (idx.reshape(n, m) < 0).all(axis=1)
                cov[unseen] += Z3[unseen] @ S @ Z3[unseen].transpose(0, 2, 1)
            else:  # forced choice: each option its own item
                unseen = idx.reshape(n, m) < 0
                cov[:, np.arange(m), np.arange(m)] += unseen * np.einsum("nmk,kl,nml->nm", Z3, S, Z3)
        E = eta.reshape(n, m)

        def softmax(e: np.ndarray) -> np.ndarray:
            full = np.concatenate([np.zeros((*e.shape[:-1], 1)), e], axis=-1) if baseline else e
            full = np.exp(full - full.max(axis=-1, keepdims=True))
            return full / full.sum(axis=-1, keepdims=True)

        if not marginal or not cov.any():
            return softmax(E)
        z = np.random.default_rng(0).standard_normal((256, m))
        z = np.concatenate([z, -z])
        C = np.linalg.cholesky(cov + 1e-12 * np.eye(m))
        draws = E[None] + np.einsum("nab,sb->sna", C, z)
        return softmax(draws).mean(axis=0)

    def predict(self, data: Mapping[str, Sequence | np.ndarray], marginal: bool = True) -> np.ndarray:
        """Most probable category (its level) for binary/ordinal; the mean for gaussian."""
        if self.family in ("gaussian", "magnitude"):
            eta, _ = self.linear_predictor(data)
            return np.exp(eta) if self.frame.spec.log_response else eta
        proba = self.predict_proba(data, marginal=marginal)
        levels = np.asarray(self.frame.response_levels, dtype=object)
        return levels[proba.argmax(axis=1)]


def _family(frame: ModelFrame) -> Any:
    if frame.spec.family == "binary":
        return Binary()
    if frame.spec.family == "ordinal":
        return Ordinal(len(frame.response_levels))
    if frame.spec.family == "categorical":
        return Categorical(len(frame.response_levels))
    if frame.spec.family == "forced_choice":
        return ForcedChoice(len(frame.response_levels))
    return None


def fit(frame: ModelFrame, max_iter: int = 1000, polish: bool = True) -> GLMMFit:
    """Fit the frame's model (see the module docstring); `max_iter` bounds the optimizer,
    `polish` adds Newton steps with the exact Hessian after L-BFGS-B (for tight agreement
    with lme4; the training head can skip them)."""
    import torch

    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # matrices of a few hundred rows: threads only add overhead
    fitter = _fit_lmm if frame.spec.family in ("gaussian", "magnitude") else _fit_glmm
    try:
        with torch.enable_grad():  # a caller (an encoder) may have switched autograd off globally
            result = fitter(frame, max_iter, polish)
    finally:
        torch.set_num_threads(threads)
    result.seconds = time.perf_counter() - started
    result.warnings = list(frame.warnings) + result.warnings
    if not result.converged:
        result.warnings.append(
            "the optimizer did not converge (max|H⁻¹g| ≥ 0.002 or iteration limit): estimates are "
            "unreliable; simplify the random effects (uncorrelated or intercepts only) or rescale predictors"
        )
    if result.singular:
        result.warnings.append(
            "singular fit: a random-effect variance (or correlation) is at its boundary; the data do "
            "not support this random-effects structure: simplify it"
        )
    return result


def _theta_free(P: Problem, theta: np.ndarray) -> np.ndarray:
    return ~((P.theta_lower == 0) & (theta < SINGULAR_TOL))


def _newton_polish(fun_hess: Any, fun: Any, x: np.ndarray, lower: np.ndarray, steps: int = 4) -> np.ndarray:
    """A few Newton steps with the exact Hessian, kept only while they lower the objective."""
    f0, _ = fun(x)
    for _ in range(steps):
        g, H = fun_hess(x)
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.linalg.eigvalsh((H + H.T) / 2) > 0):
            break
        xn = np.maximum(x - step, lower)
        f1, _ = fun(xn)
        if not f1 <= f0:
            break
        x, f0 = xn, f1
        if np.max(np.abs(step)) < 1e-6:  # Newton converges quadratically: the next step is ~1e-12
            break
    return x


def _lbfgs(fun: Any, x0: np.ndarray, lower: np.ndarray, max_iter: int) -> Any:
    """L-BFGS-B; a variance that lands on its 0 bound (where its gradient vanishes, so a
    gradient method cannot leave it) is tried again slightly inside, as a restart."""
    from scipy.optimize import minimize

    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    options = {"maxiter": max_iter, "ftol": 1e-14, "gtol": 1e-9, "maxls": 50}
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    for _ in range(2):
        stuck = (lower == 0) & (res.x < SINGULAR_TOL) & (x0 > 0)
        if not stuck.any() or res.nit >= max_iter:
            break
        trial = res.x.copy()
        trial[stuck] = 0.1 * x0[stuck]
        if not fun(trial)[0] < res.fun:
            break
        again = minimize(fun, trial, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
        again.nit += res.nit
        if not again.fun < res.fun:
            break
        res = again
    return res


def _fit_lmm(frame: ModelFrame, max_iter: int, polish: bool = True) -> GLMMFit:
    import torch

    P = Problem(frame)
    reml = frame.spec.reml
    warnings: list[str] = []

    def fun(th: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.tensor(th, dtype=torch.float64, requires_grad=True)
        dev = lmm_criterion(P, t, reml)["dev"]
        dev.backward()
        return float(dev.detach()), t.grad.numpy().copy()

    def fun_hess(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = torch.tensor(th, dtype=torch.float64)
        H = torch.autograd.functional.hessian(lambda v: lmm_criterion(P, v, reml)["dev"], t).numpy()
        return fun(th)[1], H

    theta = np.zeros(0)
    converged, iterations = True, 0
    if P.n_theta:
        res = _lbfgs(fun, P.theta_start, P.theta_lower, max_iter)
        iterations = int(res.nit)
        theta = _newton_polish(fun_hess, fun, res.x, P.theta_lower) if polish and res.nit < max_iter else res.x
        free = _theta_free(P, theta)
        g, H = fun_hess(theta)
        converged = _converged(res, g[free], H[np.ix_(free, free)], max_iter)
    t = torch.tensor(theta, dtype=torch.float64)
    out = lmm_criterion(P, t, reml)
    sigma2 = float(out["sigma2"])
    RXinv = torch.linalg.inv(out["RX"]).numpy()
    vcov = sigma2 * RXinv.T @ RXinv
    covs = [sigma2 * (T @ T.T).numpy() for T in P.factors(t)]
    ranef = P.ranef(t, out["u"])
    ranef_cov = P.ranef_cov(t, sigma2 * torch.linalg.inv(P.information(t)).numpy()) if P.q else []
    return GLMMFit(
        frame=frame,
        beta=out["beta"].numpy(),
        beta_se=np.sqrt(np.diag(vcov)),
        theta=theta,
        covariances=covs,
        ranef=ranef,
        ranef_cov=ranef_cov,
        loglik=-float(out["dev"]) / 2,
        criterion="REML" if reml else "ML",
        converged=converged,
        singular=bool(np.any((P.theta_lower == 0) & (theta < SINGULAR_TOL))),
        seconds=0.0,
        sigma=math.sqrt(sigma2),
        vcov=vcov,
        iterations=iterations,
        warnings=warnings,
    )


def _converged(res: Any, g: np.ndarray, H: np.ndarray, max_iter: int) -> bool:
    if res.nit >= max_iter or not np.all(np.isfinite(g)):
        return False
    try:
        scaled = np.linalg.solve(H, g)
    except np.linalg.LinAlgError:
        return False
    return bool(np.max(np.abs(scaled), initial=0.0) < GRAD_TOL)


def _start_alpha(frame: ModelFrame) -> np.ndarray:
    K = len(frame.response_levels)
    counts = np.bincount(frame.y.astype(int), minlength=K).astype(float) + 0.5
    cum = np.cumsum(counts)[:-1] / counts.sum()
    return np.log(cum / (1 - cum))


def _fit_glmm(frame: ModelFrame, max_iter: int, polish: bool = True) -> GLMMFit:
    import torch

    fam = _family(frame)
    P = Problem(frame, fam)
    nt, p, na = P.n_theta, P.p, fam.n_aux
    f64 = torch.float64
    state = {"u": torch.zeros(P.q, dtype=f64)}

    def unpack(v: Any, natural: bool) -> tuple[Any, Any, Any]:
        theta, beta, a = v[:nt], v[nt : nt + p], v[nt + p :]
        if na == 0:
            return theta, beta, None
        if natural:
            return theta, beta, a
        alpha = torch.cat([a[:1], a[:1] + torch.cumsum(torch.exp(a[1:]), 0)])
        return theta, beta, alpha

    def modes(theta: Any, beta: Any, alpha: Any) -> Any:
        """û at these parameters, warm-started; None where the inner Newton fails."""
        if P.q == 0:
            return state["u"]
        with torch.no_grad():
            ZL = P.zl(theta)
            u, ok = conditional_modes(P, ZL, P.X @ beta, alpha, state["u"])
            if not ok:
                u, ok = conditional_modes(P, ZL, P.X @ beta, alpha, torch.zeros_like(u))
        if not ok:
            return None
        state["u"] = u
        return u

    def make_fun(natural: bool, fixed_theta: np.ndarray | None = None) -> Any:
        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            full = x if fixed_theta is None else np.concatenate([fixed_theta, x])
            v = torch.tensor(full, dtype=f64, requires_grad=True)
            theta, beta, alpha = unpack(v, natural)
            u = modes(theta.detach(), beta.detach(), None if alpha is None else alpha.detach())
            if u is None:
                return 1e30, np.zeros_like(x)
            try:
                dev, _ = laplace_deviance(P, theta, beta, alpha, u, 1)
            except RuntimeError:  # a Cholesky factorization failed at extreme parameters
                return 1e30, np.zeros_like(x)
            if not torch.isfinite(dev):
                return 1e30, np.zeros_like(x)
            dev.backward()
            g = v.grad.numpy().copy()
            return float(dev.detach()), g if fixed_theta is None else g[nt:]

        return fun

    def hessian(x_nat: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base = torch.tensor(x_nat, dtype=f64)
        theta, beta, alpha = unpack(base, True)
        u = modes(theta, beta, alpha)
        u = state["u"] if u is None else u
        idx = torch.as_tensor(np.flatnonzero(free))

        def dev_of(sub: Any) -> Any:
            full = base.index_put((idx,), sub)
            th, be, al = unpack(full, True)
            return laplace_deviance(P, th, be, al, u, 2)[0]

        sub = base[idx].clone().requires_grad_(True)
        d = dev_of(sub)
        (g,) = torch.autograd.grad(d, sub)
        H = torch.autograd.functional.hessian(dev_of, base[idx].clone())
        return g.numpy(), H.numpy()

    # stage 0: fixed effects (and thresholds) with the random effects switched off
    a0 = _start_alpha(frame) if na else np.zeros(0)
    a0_raw = np.concatenate([a0[:1], np.log(np.diff(a0))]) if na else a0
    x0 = np.concatenate([np.zeros(p), a0_raw])
    res0 = _lbfgs(make_fun(False, np.zeros(nt)), x0, np.full(len(x0), -np.inf), max_iter)
    iterations = int(res0.nit)
    # stage 1: jointly over (θ, β, α), as glmer's second stage
    x = np.concatenate([P.theta_start, res0.x])
    lower = np.concatenate([P.theta_lower, np.full(p + na, -np.inf)])
    state["u"] = torch.zeros(P.q, dtype=f64)
    res = _lbfgs(make_fun(False), x, lower, max_iter) if nt else res0
    if nt:
        iterations += int(res.nit)
        x = res.x
    else:
        x = np.concatenate([np.zeros(0), res0.x])
    # natural parameters: θ, β, α
    v = torch.tensor(x, dtype=f64)
    theta_t, beta_t, alpha_t = unpack(v, False)
    x_nat = np.concatenate([theta_t.numpy(), beta_t.numpy()] + ([alpha_t.numpy()] if alpha_t is not None else []))
    lower_nat = lower
    fun_nat = make_fun(True)
    if polish and res.nit < max_iter:
        free = np.concatenate([_theta_free(P, x_nat[:nt]), np.ones(p + na, bool)])

        def fun_hess(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            full = x_nat.copy()
            full[free] = z
            return hessian(full, free)

        def fun_free(z: np.ndarray) -> tuple[float, np.ndarray]:
            full = x_nat.copy()
            full[free] = z
            f, g = fun_nat(full)
            return f, g[free]

        x_nat[free] = _newton_polish(fun_hess, fun_free, x_nat[free], lower_nat[free])
    free = np.concatenate([_theta_free(P, x_nat[:nt]), np.ones(p + na, bool)])
    g, H = hessian(x_nat, free)
    converged = _converged(res, g, H, max_iter) and (res0.nit < max_iter)
    try:
        vcov_free = np.linalg.inv(H / 2)
    except np.linalg.LinAlgError:
        vcov_free = np.full_like(H, np.nan)
    se_free = np.sqrt(np.clip(np.diag(vcov_free), 0, None))
    se = np.full(len(x_nat), np.nan)
    se[free] = se_free
    vcov = np.full((len(x_nat), len(x_nat)), np.nan)
    vcov[np.ix_(free, free)] = vcov_free

    v = torch.tensor(x_nat, dtype=f64)
    theta_t, beta_t, alpha_t = unpack(v, True)
    u = modes(theta_t, beta_t, alpha_t)
    u = state["u"] if u is None else u
    dev, _ = laplace_deviance(P, theta_t, beta_t, alpha_t, u, 0)
    covs = [(T @ T.T).numpy() for T in P.factors(theta_t)]
    ranef_cov = []
    if P.q:
        _, W = fam.derivs(P.X @ beta_t + P.zl(theta_t).mv(u), P.y, alpha_t)
        ranef_cov = P.ranef_cov(theta_t, torch.linalg.inv(P.information(theta_t, W)).numpy())
    theta = x_nat[:nt]
    return GLMMFit(
        frame=frame,
        beta=x_nat[nt : nt + p],
        beta_se=se[nt : nt + p],
        theta=theta,
        covariances=covs,
        ranef=P.ranef(theta_t, u),
        ranef_cov=ranef_cov,
        loglik=-float(dev) / 2,
        criterion="Laplace" if P.q else "ML",  # without random effects the likelihood is exact
        converged=converged,
        singular=bool(np.any((P.theta_lower == 0) & (theta < SINGULAR_TOL))),
        seconds=0.0,
        alpha=x_nat[nt + p :] if na else None,
        alpha_se=se[nt + p :] if na else None,
        vcov=vcov[nt:, nt:],
        iterations=iterations,
    )
