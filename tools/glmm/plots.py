"""Figures for researchers (PNG, matplotlib's Agg backend): a forest plot of the fixed effects,
caterpillar plots of the random effects and a posterior predictive check."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from alloop.tools.glmm.evaluation import simulate
from alloop.tools.glmm.model import GLMMFit
from alloop.tools.report.charts import Z95, Interval, forest


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Write atomically: a temporary file in the same folder, then rename."""
    image = io.BytesIO()
    fig.savefig(image, dpi=110, format="png", bbox_inches="tight")
    return _write(image.getvalue(), path)


def _write(png: bytes, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(png)
    tmp.replace(path)
    return path


def fixed_effects_plot(result: GLMMFit, path: str | Path) -> Path:
    """A forest plot of the fixed effects (and an ordinal model's thresholds) with 95% Wald intervals."""
    rows = [
        Interval(n, float(b), Z95 * float(s))
        for n, b, s in zip(result.frame.x_names, result.beta, result.beta_se, strict=True)
    ]
    if result.alpha is not None:
        levels = result.frame.response_levels
        rows += [
            Interval(f"threshold {levels[k]}|{levels[k + 1]}", float(a), Z95 * float(s))
            for k, (a, s) in enumerate(zip(result.alpha, result.alpha_se, strict=True))
        ]
    if not rows:
        raise ValueError("the model has no fixed effects to plot")
    title = f"Fixed effects ({result.frame.spec.family}, {result.criterion}): estimate ± 1.96 SE (95% Wald intervals)"
    return _write(forest([("fixed effects", rows)], "estimate (link scale)", title), Path(path))


def caterpillar_plot(result: GLMMFit, path: str | Path, max_levels: int = 60) -> Path:
    """Conditional modes of every random effect with 95% intervals (±1.96 conditional SD),
    one panel per term column, levels sorted by their mode."""
    sd_of = result.sd()
    panels = [
        (
            f"{name.replace(':', ': ', 1)}\nSD = {sd_of[name]:.3f}",
            [Interval(level, mode, Z95 * sd) for level, mode, sd in rows],
        )
        for name, rows in result.sorted_modes(max_levels).items()
    ]
    if not panels:
        raise ValueError("the model has no random effects to plot")
    title = f"Random effects ({result.frame.spec.family}, {result.criterion}): conditional modes ± 1.96 SD, sorted"
    return _write(forest(panels, "conditional mode (η scale)", title, top_down=False), Path(path))


def ppc_plot(result: GLMMFit, path: str | Path, n_sims: int = 200, seed: int = 0) -> Path:
    """Posterior predictive check: observed response distribution against replications with
    fresh participants and items, and the spread of participant means likewise."""
    plt = _pyplot()
    sims = simulate(result, n_sims, seed)
    y = result.frame.y
    family = result.frame.spec.family
    part = next((t for t in result.frame.terms if t.group == "participant"), None)
    fig, axes = plt.subplots(1, 2 if part is not None else 1, figsize=(9 if part else 5, 3.6), squeeze=False)
    ax = axes[0][0]
    if family in ("gaussian", "magnitude"):
        bins = np.histogram_bin_edges(np.concatenate([y, sims[:20].ravel()]), bins=40)
        for s in sims[:40]:
            ax.hist(s, bins=bins, histtype="step", density=True, color="#9ecae1", lw=0.5)
        ax.hist(y, bins=bins, histtype="step", density=True, color="#08306b", lw=1.8, label="observed")
        ax.set_xlabel("response")
    else:
        K = len(result.frame.response_levels)
        props = np.stack([(sims == k).mean(axis=1) for k in range(K)], axis=1)
        lo, mid, hi = np.quantile(props, [0.05, 0.5, 0.95], axis=0)
        x = np.arange(K)
        ax.bar(x, mid, color="#9ecae1", label="replicated (median, 90%)")
        ax.errorbar(x, mid, yerr=[mid - lo, hi - mid], fmt="none", color="#3182bd", lw=1)
        ax.plot(x, [(y == k).mean() for k in range(K)], "o", color="#08306b", label="observed")
        ax.set_xticks(x)
        ax.set_xticklabels(result.frame.response_levels)
        ax.set_xlabel("response")
        ax.set_ylabel("proportion")
    ax.set_title("Response distribution", fontsize=9)
    ax.legend(fontsize=7)
    if part is not None:
        onehot = np.zeros((result.frame.n, part.J))
        onehot[np.arange(result.frame.n), part.index] = 1 / np.bincount(part.index, minlength=part.J)[part.index]
        rep = (sims @ onehot).std(axis=1)
        obs = float((y @ onehot).std())
        ax2 = axes[0][1]
        ax2.hist(rep, bins=30, color="#9ecae1")
        ax2.axvline(obs, color="#08306b", lw=2, label=f"observed ({obs:.3f})")
        ax2.set_title("SD of participant means", fontsize=9)
        ax2.legend(fontsize=7)
    fig.suptitle(f"Posterior predictive check ({n_sims} replications, new participants and items)", fontsize=10)
    fig.tight_layout()
    out = _save(fig, Path(path))
    plt.close(fig)
    return out
