"""Evaluation and model checking: metrics, participant-grouped cross-validation, learning
curves, a summary table in lme4's layout, and posterior predictive simulation.

Held-out participants are predicted at the population level with their random effects
integrated out (`GLMMFit.predict_proba(marginal=True)`), which is the honest way to ask how the
model does on people it has never seen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from alloop.tools.errors import InputError
from alloop.tools.glmm.design import GLMMSpec, build_frame, encode_response, order_by_trial
from alloop.tools.glmm.model import GLMMFit, fit

EPS = 1e-15


# -- metrics ----------------------------------------------------------------------------------
def calibration_error(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top-class confidence (equal-width bins)."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    err = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            err += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(err)


def classification_metrics(y: Sequence[int] | np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, precision/recall/F1 (macro and micro), log loss and calibration error.

    `y` holds class indices 0..K−1 and `proba` is n × K.
    """
    from sklearn.metrics import precision_recall_fscore_support

    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) != len(y):
        raise InputError(f"proba must be n × K with n = {len(y)}, got shape {proba.shape}")
    pred = proba.argmax(axis=1)
    labels = np.arange(proba.shape[1])
    out: dict[str, float] = {"n": float(len(y)), "accuracy": float((pred == y).mean())}
    for avg in ("macro", "micro"):
        present = labels if avg == "micro" else np.unique(y)
        p, r, f, _ = precision_recall_fscore_support(y, pred, labels=present, average=avg, zero_division=0)
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = float(p), float(r), float(f)
    out["log_loss"] = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], EPS, 1))))
    out["calibration_error"] = calibration_error(y, proba)
    return out


def ordinal_metrics(y: Sequence[int] | np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Classification metrics plus MAE (of the most probable point and of the expected score)
    and Spearman's ρ between the expected score and the response, in scale-point units."""
    from scipy.stats import spearmanr

    y = np.asarray(y, dtype=np.int64)
    out = classification_metrics(y, proba)
    expected = proba @ np.arange(proba.shape[1])
    out["mae"] = float(np.abs(proba.argmax(axis=1) - y).mean())
    out["mae_expected"] = float(np.abs(expected - y).mean())
    rho = spearmanr(expected, y).statistic if len(np.unique(y)) > 1 else float("nan")
    out["spearman"] = float(rho)
    return out


def gaussian_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr

    y, pred = np.asarray(y, float), np.asarray(pred, float)
    resid = y - pred
    ss = float(((y - y.mean()) ** 2).sum())
    return {
        "n": float(len(y)),
        "rmse": float(np.sqrt(np.mean(resid**2))),
        "mae": float(np.abs(resid).mean()),
        "r2": float(1 - (resid**2).sum() / ss) if ss > 0 else float("nan"),
        "spearman": float(spearmanr(pred, y).statistic),
    }


def _observed(spec: GLMMSpec, data: Mapping[str, Any], levels: Sequence[str] | None, where: str) -> np.ndarray:
    """The response as the model codes it: values, class indices, or (forced_choice) the
    position of the chosen option within each trial."""
    if spec.family == "forced_choice":
        ordered, options = order_by_trial({k: np.asarray(v, dtype=object) for k, v in data.items()}, spec, where)
        chosen, _ = encode_response(spec, ordered[spec.response], where)
        return chosen.reshape(-1, options).argmax(axis=1)
    y, _ = encode_response(spec, np.asarray(data[spec.response], dtype=object), where, levels)
    return y


def evaluate(result: GLMMFit, data: Mapping[str, Any], marginal: bool = True) -> dict[str, float]:
    """The family's metrics of a fitted model on rows `data` (columns as for fitting)."""
    spec = result.frame.spec
    levels = result.frame.response_levels or None
    y = _observed(spec, data, levels, "evaluation data")
    if spec.family in ("gaussian", "magnitude"):
        eta, _ = result.linear_predictor(data)
        return gaussian_metrics(y, eta)
    proba = result.predict_proba(data, marginal=marginal)
    return ordinal_metrics(y, proba) if spec.family == "ordinal" else classification_metrics(y, proba)


# -- cross-validation -------------------------------------------------------------------------
def participant_folds(participants: Sequence[str] | np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """Row indices of each test fold: participants shuffled (seeded) and split into k groups,
    so no participant is in both a training and a test fold."""
    participants = np.asarray([str(p) for p in participants], dtype=object)
    people = np.asarray(sorted(set(participants)), dtype=object)
    if k < 2 or k > len(people):
        raise InputError(f"{k} folds need between 2 and {len(people)} (the number of participants)")
    rng = np.random.default_rng(seed)
    groups = np.array_split(rng.permutation(people), k)
    return [np.flatnonzero(np.isin(participants, g)) for g in groups]


def _subset(data: Mapping[str, Any], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=object)[rows] for k, v in data.items()}


def _full_levels(data: Mapping[str, Any], spec: GLMMSpec, where: str) -> tuple[str, ...] | None:
    if spec.family not in ("ordinal", "categorical"):
        return None
    _, levels = encode_response(spec, np.asarray(data[spec.response], dtype=object), where)
    return levels


def _mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in rows[0] if k != "n"]
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


def grouped_cv(
    data: Mapping[str, Any], spec: GLMMSpec, folds: int = 5, seed: int = 0, where: str = "data"
) -> dict[str, Any]:
    """k-fold cross-validation grouped by participant; metrics pooled over the held-out rows."""
    if spec.participant is None or spec.participant not in data:
        raise InputError(f"{where}: grouped cross-validation needs the participant column {spec.participant!r}")
    levels = _full_levels(data, spec, where)
    test_folds = participant_folds(data[spec.participant], folds, seed)
    n = len(np.asarray(data[spec.response]))
    per_fold, converged = [], []
    pooled_y: list[np.ndarray] = []
    pooled_p: list[np.ndarray] = []
    for test in test_folds:
        train = np.setdiff1d(np.arange(n), test)
        result = fit(build_frame(_subset(data, train), spec, where=f"{where} (training fold)", levels=levels))
        converged.append(result.converged)
        test_data = _subset(data, test)
        per_fold.append(evaluate(result, test_data))
        y = _observed(spec, test_data, levels, where)
        pooled_y.append(y)
        if spec.family in ("gaussian", "magnitude"):
            pooled_p.append(result.linear_predictor(test_data)[0])
        else:
            pooled_p.append(result.predict_proba(test_data))
    y_all, p_all = np.concatenate(pooled_y), np.concatenate(pooled_p)
    if spec.family in ("gaussian", "magnitude"):
        metrics = gaussian_metrics(y_all, p_all)
    elif spec.family == "ordinal":
        metrics = ordinal_metrics(y_all, p_all)
    else:
        metrics = classification_metrics(y_all, p_all)
    return {
        "folds": folds,
        "seed": seed,
        "grouped_by": "participant",
        "n": int(n),
        "metrics": metrics,
        "fold_mean": _mean_metrics(per_fold),
        "per_fold": per_fold,
        "all_converged": bool(all(converged)),
    }


def learning_curve(
    data: Mapping[str, Any],
    spec: GLMMSpec,
    fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    folds: int = 5,
    seed: int = 0,
    where: str = "data",
) -> list[dict[str, Any]]:
    """Held-out metrics against the share of training participants used, per grouped fold."""
    if spec.participant is None or spec.participant not in data:
        raise InputError(f"{where}: a learning curve needs the participant column {spec.participant!r}")
    levels = _full_levels(data, spec, where)
    parts = np.asarray([str(p) for p in data[spec.participant]], dtype=object)
    n = len(parts)
    rng = np.random.default_rng(seed)
    rows = []
    test_folds = participant_folds(parts, folds, seed)
    for frac in fractions:
        if not 0 < frac <= 1:
            raise InputError(f"learning-curve fractions must be in (0, 1], got {frac}")
        scores, sizes, people = [], [], []
        for test in test_folds:
            train_people = np.asarray(sorted(set(parts[np.setdiff1d(np.arange(n), test)])), dtype=object)
            m = max(2, math.ceil(frac * len(train_people)))
            chosen = rng.choice(train_people, size=min(m, len(train_people)), replace=False)
            train = np.flatnonzero(np.isin(parts, chosen))
            result = fit(build_frame(_subset(data, train), spec, where=where, levels=levels))
            scores.append(evaluate(result, _subset(data, test)))
            sizes.append(len(train))
            people.append(len(chosen))
        row: dict[str, Any] = {
            "fraction": float(frac),
            "participants": float(np.mean(people)),
            "n_train": float(np.mean(sizes)),
        }
        for key, value in _mean_metrics(scores).items():
            row[key] = value
            row[f"{key}_sd"] = float(np.nanstd([s[key] for s in scores]))
        rows.append(row)
    return rows


# -- reporting --------------------------------------------------------------------------------
def _p_value(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def summary_table(result: GLMMFit) -> str:
    """A plain-text summary in lme4's layout: fit, random effects, fixed effects, diagnostics."""
    spec = result.frame.spec
    lines = [
        f"{'Linear' if spec.family in ('gaussian', 'magnitude') else 'Generalized linear'} mixed model "
        f"({spec.family}, {spec.mode}{'' if spec.correlated else ', uncorrelated'}), "
        f"fit by {result.criterion}",
        f"  n = {result.frame.n}"
        + "".join(f", {t.group}s = {t.J}" for t in result.frame.terms if t.columns[0] == "(Intercept)"),
        f"  logLik = {result.loglik:.4f}   AIC = {2 * _n_params(result) - 2 * result.loglik:.2f}"
        f"   ({result.seconds:.2f} s, converged: {'yes' if result.converged else 'NO'}"
        f"{', singular' if result.singular else ''})",
    ]
    if result.frame.terms or result.sigma is not None:
        lines += ["", "Random effects:", f"  {'group':<12} {'name':<14} {'variance':>10} {'sd':>8}  corr"]
        cor = result.cor()
        for term, S in zip(result.frame.terms, result.covariances, strict=True):
            if term.shared:
                lines.append(
                    f"  {term.group:<12} {f'(prior, {term.k})':<14} {S[0, 0]:>10.4f} {math.sqrt(S[0, 0]):>8.4f}"
                )
                continue
            for a, c in enumerate(term.columns):
                cors = [f"{cor[f'{term.group}:{term.columns[b]}:{c}']:+.2f}" for b in range(a)]
                lines.append(
                    f"  {term.group if a == 0 else '':<12} {c:<14} {S[a, a]:>10.4f} "
                    f"{math.sqrt(S[a, a]):>8.4f}  {' '.join(cors)}"
                )
        if result.sigma is not None:
            lines.append(f"  {'residual':<12} {'':<14} {result.sigma**2:>10.4f} {result.sigma:>8.4f}")
    stat = "t" if spec.family in ("gaussian", "magnitude") else "z"
    lines += ["", "Fixed effects:", f"  {'':<14} {'estimate':>10} {'se':>9} {stat + ' value':>9} {'p (Wald)':>9}"]
    for name, b, s in zip(result.frame.x_names, result.beta, result.beta_se, strict=True):
        z = b / s if s > 0 else float("nan")
        lines.append(f"  {name:<14} {b:>10.4f} {s:>9.4f} {z:>9.2f} {_p_value(z):>9.3g}")
    if result.alpha is not None:
        lines += ["", "Thresholds (P(y ≤ k) = logit⁻¹(θ_k − η)):"]
        lv = result.frame.response_levels
        for k, (a, s) in enumerate(zip(result.alpha, result.alpha_se, strict=True)):
            lines.append(f"  {lv[k] + '|' + lv[k + 1]:<14} {a:>10.4f} {s:>9.4f}")
    if result.warnings:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in result.warnings]
    return "\n".join(lines)


def _n_params(result: GLMMFit) -> int:
    n = len(result.beta) + len(result.theta) + (0 if result.alpha is None else len(result.alpha))
    return n + (1 if result.sigma is not None else 0)


def variance_components(result: GLMMFit) -> list[dict[str, Any]]:
    """One row per variance component: group, name, variance, sd (and the residual)."""
    rows = [
        {
            "group": term.group,
            "name": "(prior)" if term.shared else c,
            "variance": float(S[a, a]),
            "sd": float(math.sqrt(S[a, a])),
        }
        for term, S in zip(result.frame.terms, result.covariances, strict=True)
        for a, c in enumerate(term.columns[:1] if term.shared else term.columns)
    ]
    if result.sigma is not None:
        rows.append({"group": "residual", "name": "", "variance": result.sigma**2, "sd": result.sigma})
    return rows


# -- posterior predictive simulation ----------------------------------------------------------
def simulate(result: GLMMFit, n_sims: int = 200, seed: int = 0) -> np.ndarray:
    """Replicated responses (n_sims × n) from the fitted model with fresh random effects
    for every participant and item (drawn from the estimated variance components)."""
    rng = np.random.default_rng(seed)
    frame = result.frame
    eta = np.broadcast_to(frame.X @ result.beta, (n_sims, len(frame.X))).copy()
    for term, S, b_mode in zip(frame.terms, result.covariances, result.ranef, strict=True):
        if term.shared:  # feature weights: their posterior modes, not new draws
            eta += term.Z @ b_mode[0]
            continue
        C = np.linalg.cholesky(S + 1e-12 * np.eye(term.k))
        b = rng.standard_normal((n_sims, term.J, term.k)) @ C.T
        eta += np.einsum("sik,ik->si", b[:, term.index, :], term.Z)
    family = frame.spec.family
    if family in ("gaussian", "magnitude"):
        return eta + result.sigma * rng.standard_normal(eta.shape)
    if family == "binary":
        return (rng.random(eta.shape) < 1 / (1 + np.exp(-eta))).astype(float)
    if family in ("categorical", "forced_choice"):
        E = eta.reshape(n_sims, frame.n, -1)
        full = np.concatenate([np.zeros((*E.shape[:-1], 1)), E], axis=-1) if family == "categorical" else E
        p = np.exp(full - full.max(axis=-1, keepdims=True))
        cum = np.cumsum(p / p.sum(axis=-1, keepdims=True), axis=-1)
        return (rng.random((n_sims, frame.n))[:, :, None] > cum[:, :, :-1]).sum(axis=2).astype(float)
    cum = 1 / (1 + np.exp(-(result.alpha[None, None, :] - eta[:, :, None])))
    return (rng.random(eta.shape)[:, :, None] > cum).sum(axis=2).astype(float)


def ppc_summary(result: GLMMFit, n_sims: int = 200, seed: int = 0) -> dict[str, Any]:
    """Observed statistics against their replicated distribution (90% intervals): category
    proportions (or mean and sd), and the spread of participant means."""
    sims = simulate(result, n_sims, seed)
    y = result.frame.y
    out: dict[str, Any] = {"n_sims": n_sims, "seed": seed, "checks": []}

    def check(name: str, observed: float, replicated: np.ndarray) -> None:
        lo, hi = np.quantile(replicated, [0.05, 0.95])
        out["checks"].append(
            {
                "statistic": name,
                "observed": float(observed),
                "replicated_5": float(lo),
                "replicated_95": float(hi),
                "inside": bool(lo <= observed <= hi),
                "p_value": float(min(1.0, 2 * min((replicated >= observed).mean(), (replicated <= observed).mean()))),
            }
        )

    if result.frame.spec.family in ("gaussian", "magnitude"):
        check("mean", y.mean(), sims.mean(axis=1))
        check("sd", y.std(), sims.std(axis=1))
    else:
        for k, level in enumerate(result.frame.response_levels):
            check(f"P(y = {level})", (y == k).mean(), (sims == k).mean(axis=1))
    part = next((t for t in result.frame.terms if t.group == "participant"), None)
    if part is not None:
        onehot = np.zeros((result.frame.n, part.J))
        onehot[np.arange(result.frame.n), part.index] = 1 / np.bincount(part.index, minlength=part.J)[part.index]

        def spread(values: np.ndarray) -> np.ndarray:
            return (values @ onehot).std(axis=-1)

        check("sd of participant means", spread(y), spread(sims))
    out["all_inside"] = all(c["inside"] for c in out["checks"])
    return out
