"""The run report: a round table with gold_* and judge_* kept apart, and the learning curve.

Read from the run's files alone, so a report can be rewritten at any time and says only what
the files say.
"""

from __future__ import annotations

import io
import json
from collections import Counter

from alloop.tools.report.figures import figure
from alloop.tools.run.rundir import RunDir, atomic_write_bytes
from alloop.tools.run.schema import SUMMARY_COLUMNS, ResultRow


def learning_curve(run: RunDir, rows: list[ResultRow]) -> str | None:
    """learning_curve.png: held-out gold accuracy and macro-F1 against labels used."""
    points = [r for r in rows if r.gold_macro_f1 is not None]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    x = [r.n_labeled for r in points]
    ax.plot(x, [r.gold_macro_f1 for r in points], marker="o", label="gold macro-F1")
    ax.plot(x, [r.gold_accuracy for r in points], marker="s", label="gold accuracy")
    judged = [r for r in points if r.judge_accuracy is not None]
    if judged:
        ax.plot(
            [r.n_labeled for r in judged], [r.judge_accuracy for r in judged], ls="--", label="judge-assisted accuracy"
        )
    ax.set_xlabel("labeled items")
    ax.set_ylabel("held-out score")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"{run.name}: learning curve")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png")
    plt.close(fig)
    path = run.plot_path("learning_curve")
    atomic_write_bytes(path, image.getvalue())
    return path.name


def report_markdown(run: RunDir, plot: str | None) -> str:
    """report.md: spec, round table, per-class F1 of the last round, labels by source, notes."""
    spec = run.spec()
    rows = run.results()
    events = run.labels()
    heldout = run.heldout()
    lines = [
        f"# Run report: {run.name}",
        "",
        f"Task: **{spec.task_type}** over labels {', '.join(spec.labels)}; pool {len(run.pool())} items, "
        f"held-out {len(heldout) if heldout is not None else 0}; spec version {spec.spec_version}; "
        f"encoder {spec.model.encoder}, head {spec.model.head} ({spec.model.effects}).",
        "",
        "## Rounds",
        "",
        "Human-gold figures (`gold_*`) are computed on the held-out set only; judge-assisted figures "
        "(`judge_*`) are shown apart and never enter them.",
        "",
        "| " + " | ".join(SUMMARY_COLUMNS) + " |",
        "|" + "---|" * len(SUMMARY_COLUMNS),
    ]
    for row in rows:
        data = row.model_dump()
        lines.append("| " + " | ".join(figure(data[c], 3, "–") for c in SUMMARY_COLUMNS) + " |")
    final = [r for r in rows if r.final]
    if final:
        row = final[-1]
        lines += [
            "",
            f"**Final model: round {row.round}** ({row.model_version}), trained once on all {row.n_labeled} labels "
            f"with encoder training `{row.encoder_training or 'frozen'}`: held-out gold macro-F1 "
            f"{figure(row.gold_macro_f1, 3, '–')}, accuracy {figure(row.gold_accuracy, 3, '–')}.",
        ]
    if plot:
        lines += ["", f"![learning curve]({plot})"]
    if rows and rows[-1].gold_f1_by_class:
        lines += ["", "## Final round: F1 per class (held-out gold)", "", "| label | F1 |", "|---|---|"]
        lines += [f"| {k} | {figure(v, 3, '–')} |" for k, v in json.loads(rows[-1].gold_f1_by_class).items()]
    by_source = Counter(e.source for e in events)
    by_label = Counter(str(e.label) for e in events if e.status == "submitted")
    lines += [
        "",
        "## Labels",
        "",
        f"{len(events)} label events: " + ", ".join(f"{k} {v}" for k, v in sorted(by_source.items())) + ".",
        "By label: " + ", ".join(f"{k} {v}" for k, v in sorted(by_label.items())) + ".",
    ]
    notes = run.notes_path.read_text(encoding="utf-8").strip().splitlines()[1:]
    lines += ["", "## Notes", "", *[n for n in notes if n.strip()]]
    return "\n".join(lines) + "\n"
