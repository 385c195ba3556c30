"""The report page's figures, drawn with matplotlib and returned as PNG bytes.

Each function takes plain numbers (no run access), so a figure can be drawn and looked at alone;
axes are fitted to the data, never fixed at 0–1, so a change of a few points stays visible.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

WIDTH, HEIGHT, DPI = 6.4, 3.6, 110
Z95 = 1.959963984540054
"""The normal quantile of a two-sided 95 % interval: estimate ± Z95 · SE."""


@dataclass
class Curve:
    """One line of a learning curve: x (labels used), y, and an optional interval band."""

    label: str
    x: list[float]
    y: list[float]
    low: list[float] | None = None
    high: list[float] | None = None
    style: str = "-"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=DPI)
    plt.close(fig)
    return image.getvalue()


def fitted_limits(
    values: Sequence[float], floor: float | None = None, ceiling: float | None = None
) -> tuple[float, float]:
    """Axis limits around the data with a margin, clipped to the metric's range where it has one."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return (0.0, 1.0)
    low, high = min(finite), max(finite)
    margin = max((high - low) * 0.12, 0.02 if high - low < 0.05 else 0.0, 1e-9)
    low, high = low - margin, high + margin
    if floor is not None:
        low = max(low, floor)
    if ceiling is not None:
        high = min(high, ceiling)
    return (low, high)


def learning_curves(panels: list[tuple[str, list[Curve]]], xlabel: str, bounded: bool) -> bytes:
    """One panel per kind of figure (gold beside judge, never on one axis), each with its own fitted y axis."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(WIDTH * (1 if len(panels) == 1 else 1.5), HEIGHT), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels, strict=True):
        values: list[float] = []
        for curve in curves:
            (line,) = ax.plot(curve.x, curve.y, curve.style, marker="o", label=curve.label)
            values += curve.y
            if curve.low is not None and curve.high is not None:
                ax.fill_between(curve.x, curve.low, curve.high, color=line.get_color(), alpha=0.2, lw=0)
                values += curve.low + curve.high
        ax.set_ylim(*fitted_limits(values, 0.0 if bounded else None, 1.0 if bounded else None))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    return _png(fig)


def per_class_lines(rounds: list[int], by_class: dict[str, list[float | None]], ylabel: str) -> bytes:
    """F1 of each class across rounds: which classes the model has learned, and which lag."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    values: list[float] = []
    for name, series in by_class.items():
        y = [np.nan if v is None else v for v in series]
        ax.plot(rounds, y, marker="o", label=name)
        values += [v for v in series if v is not None]
    ax.set_ylim(*fitted_limits(values, 0.0, 1.0))
    ax.set_xticks(rounds)
    ax.set_xlabel("round")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return _png(fig)


def confusion(matrix: np.ndarray, labels: list[str], title: str) -> bytes:
    """Counts of gold (rows) against predicted (columns), each cell written out."""
    plt = _pyplot()
    size = max(3.6, 0.55 * len(labels) + 1.8)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    shown = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title, fontsize=10)
    top = matrix.max() if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(int(count)), ha="center", va="center", color="white" if count > top / 2 else "black")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    return _png(fig)


def stacked_mix(rounds: list[int], mix: dict[str, list[int]]) -> bytes:
    """Each selected batch's labels as a stacked bar: whether selection chases some classes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    bottom = np.zeros(len(rounds))
    for name, counts in mix.items():
        ax.bar(rounds, counts, bottom=bottom, label=name)
        bottom += np.asarray(counts, dtype=float)
    ax.set_xticks(rounds)
    ax.set_xlabel("selection round (0 = seed set)")
    ax.set_ylabel("items selected")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return _png(fig)


def uncertainty_by_round(
    rounds: list[int], pool: dict[int, np.ndarray], selected: dict[int, list[float]], measure: str
) -> bytes:
    """The pool's uncertainty by round (boxes) with the selected batch on top (dots)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    with_pool = [r for r in rounds if r in pool and len(pool[r])]
    if with_pool:
        ax.boxplot([pool[r] for r in with_pool], positions=with_pool, widths=0.5, showfliers=False, manage_ticks=False)
    rng = np.random.default_rng(0)
    for r in rounds:
        values = selected.get(r, [])
        if values:
            jitter = rng.uniform(-0.12, 0.12, len(values))
            ax.scatter(np.full(len(values), r) + jitter, values, s=14, color="tab:red", alpha=0.7, zorder=3)
    ax.scatter([], [], s=14, color="tab:red", label="selected items")
    if with_pool:
        ax.plot([], [], color="black", label="pool (box: quartiles, whiskers 1.5 IQR)")
    ax.set_xticks(rounds)
    ax.set_xlim(min(rounds) - 0.6, max(rounds) + 0.6)
    ax.set_xlabel("round")
    ax.set_ylabel(measure.replace("_", " "))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8)
    return _png(fig)


def deltas(
    rounds: list[int], delta: list[float], epsilon: float | None, switch: int | None, ylabel: str, eps_label: str
) -> bytes:
    """|Δ| of the decision metric between rounds, against the plateau ε, with the hybrid switch marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    ax.bar(rounds, delta, width=0.5, color=["tab:green" if d >= 0 else "tab:red" for d in delta], label="Δ")
    values = [*delta, 0.0]
    if epsilon is not None:
        ax.axhspan(-epsilon, epsilon, color="grey", alpha=0.25, label=f"{eps_label} ±{epsilon:g}")
        values += [epsilon, -epsilon]
    if switch is not None:
        ax.axvline(switch - 0.5, color="tab:purple", ls="--", label=f"hybrid switch to fine_tune (round {switch})")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylim(*fitted_limits(values))
    ax.set_xticks(rounds)
    ax.set_xlabel("round")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="best", fontsize=8)
    return _png(fig)


@dataclass
class Interval:
    """One row of a forest or caterpillar plot: an estimate with the half-width of its interval."""

    name: str
    estimate: float
    half_width: float


def forest(panels: list[tuple[str, list[Interval]]], xlabel: str, level: str, top_down: bool = True) -> bytes:
    """Estimates with intervals, one panel per fit, a dashed line at 0; the interval's level is in the title.

    `top_down` lists the rows from the top (a forest plot); otherwise the first row is at the bottom, so a
    sorted caterpillar plot rises from left to right.
    """
    plt = _pyplot()
    rows = max(len(p) for _, p in panels)
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(max(WIDTH, min(3.4 * len(panels), 12)), max(2.4, 0.13 * min(rows, 60) + 1.6)),
        squeeze=False,
    )
    for ax, (title, intervals) in zip(axes[0], panels, strict=True):
        ypos = np.arange(len(intervals))[::-1] if top_down else np.arange(len(intervals))
        x = np.array([i.estimate for i in intervals])
        err = np.array([i.half_width for i in intervals])
        ax.errorbar(x, ypos, xerr=err, fmt="o", ms=3, lw=0.9, color="#1f4e79")
        ax.axvline(0, color="grey", lw=0.8, ls="--")
        labelled = len(intervals) <= 40
        ax.set_yticks(ypos if labelled else [])
        if labelled:
            ax.set_yticklabels([i.name for i in intervals], fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(level, fontsize=9)
    return _png(fig)
