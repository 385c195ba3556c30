"""The report page's sections, each read from the run's files through the run package alone.

A section says what the files hold and nothing more: where a run lacks something (a baseline, two
people on one item, a GLMM head) the section says so instead of drawing a stand-in.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from typing import Any

import numpy as np

from alloop.tools.agreement.bootstrap import percentile_interval
from alloop.tools.agreement.convergence import level_for, measure_agreement
from alloop.tools.errors import AlloopError, InputError
from alloop.tools.report import charts
from alloop.tools.report.figures import figure
from alloop.tools.report.tables import Section, table
from alloop.tools.run.labels import current_labels
from alloop.tools.run.models import ModelDir, Predictions, model_rounds
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import CV_METRIC_COLUMNS, METRIC_COLUMNS, SUMMARY_COLUMNS, ResultRow, TaskSpec

BOOTSTRAP = 1000
CONFIDENCE = 0.95
BOUNDED_METRICS = frozenset({"macro_f1", "accuracy", "spearman"})
BAND_METRICS = frozenset({"macro_f1", "accuracy"})
UNCERTAINTY_ORDER = ("least_confidence", "entropy", "margin", "variance")


def scored(run: RunDir, round_: int, model_version: str | None = None) -> Predictions | None:
    """A round's saved predictions, if that round (and, when named, that model) scored them."""
    model = ModelDir(run, round_)
    if not model.has_predictions():
        return None
    try:
        return model.predictions(model_version)
    except AlloopError:
        return None


def bootstrap_scores(gold: list[str], predicted: list[str], labels: list[str], metric: str) -> np.ndarray:
    """The metric on resampled held-out items, scored as metrics.label_metrics scores it (macro-F1 over the
    schema, a class absent from gold and predictions left out), counted in one matrix product."""
    index = {label: k for k, label in enumerate(labels)}
    g = np.asarray([index.get(v, -1) for v in gold])
    p = np.asarray([index.get(v, -2) for v in predicted])
    weights = np.random.default_rng(0).multinomial(len(g), np.full(len(g), 1 / len(g)), size=BOOTSTRAP)
    right = weights @ (g == p).astype(float)
    if metric == "accuracy":
        return right / len(g)
    hit = np.stack([(g == k) & (p == k) for k in range(len(labels))], axis=1).astype(float)
    in_gold = np.stack([g == k for k in range(len(labels))], axis=1).astype(float)
    in_pred = np.stack([p == k for k in range(len(labels))], axis=1).astype(float)
    tp, gold_n, pred_n = weights @ hit, weights @ in_gold, weights @ in_pred
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(gold_n + pred_n > 0, 2 * tp / (gold_n + pred_n), np.nan)
    counted = (gold_n + pred_n > 0).sum(axis=1)
    return np.where(counted > 0, np.nansum(f1, axis=1) / np.maximum(counted, 1), np.nan)


def _band(gold: dict[str, Any], preds: Predictions, labels: list[str], metric: str) -> tuple[float, float] | None:
    """A percentile bootstrap interval of the metric over held-out items, from the saved predictions."""
    pairs = [(gold[i], p) for i, p in zip(preds.heldout_ids, preds.heldout_pred, strict=True) if i in gold]
    if len(pairs) < 2 or any(not isinstance(g, str) for g, _ in pairs):
        return None
    draws = bootstrap_scores([g for g, _ in pairs], [str(q) for _, q in pairs], labels, metric)
    low, high = percentile_interval(draws, CONFIDENCE)
    return None if low is None or high is None else (low, high)


def check_baseline(run: RunDir, baseline: RunDir) -> None:
    """A baseline's curve is comparable only when it is another run scored on the same held-out items."""
    if baseline.path == run.path:
        raise InputError(
            f"baseline {baseline.name!r} is the run itself; name another run (e.g. a random-selection one)"
        )
    ours, theirs = run.heldout(), baseline.heldout()
    if ours is None or theirs is None or set(ours.ids) != set(theirs.ids):
        raise InputError(
            f"baseline run {baseline.name!r} is not scored on run {run.name!r}'s held-out items, so their curves "
            "cannot be compared; create the baseline from the same pool and held-out file"
        )
    if baseline.spec().metric != run.spec().metric:
        raise InputError(
            f"baseline run {baseline.name!r} reports {baseline.spec().metric}, run {run.name!r} {run.spec().metric}; "
            "use a baseline with the same metric"
        )


def _gold_curve(run: RunDir, spec: TaskSpec, rows: list[ResultRow], name: str, style: str = "-") -> charts.Curve:
    """A run's held-out gold metric against labels used, with its bootstrap band when every round has one."""
    column = METRIC_COLUMNS[spec.metric]
    points = [r for r in rows if getattr(r, column) is not None]
    gold = run.heldout_gold()
    lows, highs = [], []
    for row in points:
        preds = scored(run, row.round, row.model_version) if spec.metric in BAND_METRICS and spec.labels else None
        band = _band(gold, preds, spec.labels, spec.metric) if preds is not None else None
        lows.append(band[0] if band else None)
        highs.append(band[1] if band else None)
    has_band = bool(points) and all(v is not None for v in lows)
    return charts.Curve(
        name,
        [r.n_labeled for r in points],
        [getattr(r, column) for r in points],
        lows if has_band else None,
        highs if has_band else None,
        style,
    )


def learning_curve(run: RunDir, spec: TaskSpec, rows: list[ResultRow], baseline: RunDir | None = None) -> Section:
    column = METRIC_COLUMNS[spec.metric]
    section = Section("learning-curve", f"Learning curve: held-out gold {spec.metric}")
    points = [r for r in rows if getattr(r, column) is not None]
    if not points:
        section.notes.append(f"No round has a held-out {column} yet (results.tsv): train and score a round first.")
        return section
    curve = _gold_curve(run, spec, points, f"{run.name} ({spec.selection.strategy})")
    curves = [curve]
    if baseline is not None:
        base_spec = baseline.spec()
        base_rows = [r for r in baseline.results() if not r.final]
        curves.append(
            _gold_curve(baseline, spec, base_rows, f"baseline {baseline.name} ({base_spec.selection.strategy})", "--")
        )
    panels: list[tuple[str, list[charts.Curve]]] = [(f"held-out gold {spec.metric}", curves)]
    judged = [r for r in points if r.judge_accuracy is not None]
    if judged:
        judge = charts.Curve(
            "judge-assisted accuracy", [r.n_labeled for r in judged], [r.judge_accuracy for r in judged]
        )
        panels.append(("judge-assisted accuracy (not gold)", [judge]))
    section.add_figure(
        f"learning curve of gold {spec.metric}",
        charts.learning_curves(panels, "labeled items", spec.metric in BOUNDED_METRICS),
    )
    if curve.low is not None:
        section.notes.append(
            f"Band: {CONFIDENCE:.0%} percentile bootstrap interval over the {len(run.heldout_gold())} held-out "
            f"items ({BOOTSTRAP} resamples of each round's saved predictions)."
        )
    else:
        section.notes.append(f"No interval: the rounds' saved held-out predictions give no bootstrap of {spec.metric}.")
    records = [
        {
            "round": r.round,
            "labeled": r.n_labeled,
            column: getattr(r, column),
            "low": lo,
            "high": hi,
            "final": "final" if r.final else None,
        }
        for r, lo, hi in zip(points, curve.low or [None] * len(points), curve.high or [None] * len(points), strict=True)
    ]
    if baseline is None:
        section.notes.append(
            "No baseline: this run records no random-selection baseline, so none is drawn; whether active "
            "learning beat random selection cannot be read from this page (write_report's `baseline` names one)."
        )
    else:
        base = curves[1]
        at = dict(zip(base.x, base.y, strict=True))
        for record in records:
            record["baseline"] = at.get(record["labeled"])
        latest = {r["labeled"]: r[column] for r in records if r["final"] is None}  # a redone round counts once
        paired = [(value, at[n]) for n, value in latest.items() if n in at]
        if paired:
            gain = float(np.mean([a - b for a, b in paired]))
            section.notes.append(
                f"Baseline: run {baseline.name!r} ({base_spec.selection.strategy} selection) on the same held-out "
                f"items, dashed. Mean {spec.metric} difference at the {len(paired)} label counts both runs reached: "
                f"{gain:+.3f} (this run minus the baseline; one run each, so read it beside the bands)."
            )
        else:
            section.notes.append(f"Baseline: run {baseline.name!r} reached none of this run's label counts.")
    section.tables.append(table(records))
    return section


def per_class(rows: list[ResultRow]) -> Section:
    section = Section("per-class-f1", "Per-class F1 by round (held-out gold)")
    rounds, by_class = [], {}
    for row in rows:
        if not row.gold_f1_by_class:
            continue
        values = json.loads(row.gold_f1_by_class)
        rounds.append(row.round)
        for name in values:
            by_class.setdefault(name, [None] * (len(rounds) - 1))
        for name, series in by_class.items():
            series.append(values.get(name))
    if not rounds:
        section.notes.append("No round has per-class F1 (the task has no classes, or no round was scored).")
        return section
    section.add_figure("F1 of each class by round", charts.per_class_lines(rounds, by_class, "held-out F1"))
    records = [{"round": r, **{name: series[i] for name, series in by_class.items()}} for i, r in enumerate(rounds)]
    section.tables.append(table(records))
    section.notes.append("A class absent from the held-out gold shows as –.")
    return section


def confusion(run: RunDir, spec: TaskSpec) -> Section:
    section = Section("confusion", "Confusion matrix of the latest scored round (held-out gold)")
    rounds = model_rounds(run, having="predictions")
    gold = run.heldout_gold()
    preds = scored(run, rounds[-1]) if rounds else None
    if preds is None or not spec.labels or not gold:
        section.notes.append("No scored round with held-out gold labels: there is nothing to cross-tabulate.")
        return section
    index = {label: k for k, label in enumerate(spec.labels)}
    matrix = np.zeros((len(spec.labels), len(spec.labels)), dtype=int)
    counted = 0
    for item, predicted in zip(preds.heldout_ids, preds.heldout_pred, strict=True):
        truth = gold.get(item)
        if isinstance(truth, str) and truth in index and predicted in index:
            matrix[index[truth], index[predicted]] += 1
            counted += 1
    title = f"round {rounds[-1]} ({preds.model_version or 'model'}), {counted} held-out items"
    section.add_figure(f"confusion matrix, {title}", charts.confusion(matrix, spec.labels, title))
    records = [
        {"gold \\ predicted": label, **dict(zip(spec.labels, row.tolist(), strict=True))}
        for label, row in zip(spec.labels, matrix, strict=True)
    ]
    section.tables.append(table(records))
    return section


def _standing_label(run: RunDir) -> dict[str, str]:
    """Each item's label by people (the most common one where people differ); judges never count."""
    votes: dict[str, Counter[str]] = {}
    for (item, _, is_judge), event in current_labels(run.labels()).items():
        if not is_judge:
            votes.setdefault(item, Counter())[str(event.label)] += 1
    return {item: counts.most_common(1)[0][0] for item, counts in votes.items()}


def batch_mix(run: RunDir, spec: TaskSpec) -> Section:
    section = Section("batch-mix", "Class mix of every selected batch")
    rounds = run.selection_rounds()
    if not rounds:
        section.notes.append("No batch has been selected yet.")
        return section
    labels = _standing_label(run)
    names = [*spec.labels] if spec.labels else []
    counts: dict[int, Counter[str]] = {}
    strategies: dict[int, str] = {}
    for round_ in rounds:
        chosen = run.selection(round_)
        counts[round_] = Counter(labels.get(r.item_id, "not labeled yet") for r in chosen)
        strategies[round_] = ", ".join(sorted({r.strategy for r in chosen}))
        names += [n for n in counts[round_] if n not in names]
    names = [n for n in names if any(counts[r][n] for r in rounds)]
    section.add_figure(
        "labels of the items selected in each round",
        charts.stacked_mix(rounds, {n: [counts[r][n] for r in rounds] for n in names}),
    )
    records = [{"round": r, "strategy": strategies[r], **{n: counts[r][n] for n in names}} for r in rounds]
    section.tables.append(table(records))
    section.notes.append("Labels as people gave them (the most common where they differ); judges never count.")
    return section


def uncertainty(run: RunDir) -> Section:
    section = Section("uncertainty", "Uncertainty by round: the pool and the selected batch")
    selected: dict[int, list[dict[str, float]]] = {
        r: [row.scores for row in run.selection(r) if row.scores] for r in run.selection_rounds()
    }
    keys = {k for rows in selected.values() for s in rows for k in s}
    measure = next((k for k in UNCERTAINTY_ORDER if k in keys), min(keys) if keys else None)
    if measure is None:
        section.notes.append("No selected item carries uncertainty scores (the batches were chosen without a model).")
        return section
    picked = {r: [s[measure] for s in rows if measure in s] for r, rows in selected.items()}
    pool: dict[int, np.ndarray] = {}
    if measure == "least_confidence":
        for r in picked:
            preds = scored(run, r)
            if preds is not None and preds.pool_probs is not None and len(preds.pool_probs):
                pool[r] = 1.0 - preds.pool_probs.max(axis=1)
    rounds = sorted(r for r in picked if picked[r] or r in pool)
    section.add_figure(
        f"{measure} of the pool and of the selected items by round",
        charts.uncertainty_by_round(rounds, pool, picked, measure),
    )
    records = [
        {
            "round": r,
            "selected": len(picked[r]),
            f"selected median {measure}": float(np.median(picked[r])) if picked[r] else None,
            f"pool median {measure}": float(np.median(pool[r])) if r in pool else None,
            "pool items": len(pool[r]) if r in pool else None,
        }
        for r in rounds
    ]
    section.tables.append(table(records))
    return section


def _switch_round(run: RunDir, spec: TaskSpec, rows: list[ResultRow]) -> int | None:
    """The round a hybrid run first fine-tuned (from the model cards, else the round table)."""
    if spec.model.training_strategy != "hybrid":
        return None
    for round_ in model_rounds(run):
        switched = (ModelDir(run, round_).card().get("hybrid") or {}).get("switched_at")
        if switched is not None:
            return int(switched)
    return next((r.round for r in rows if r.training_strategy == "fine_tune"), None)


def deltas(run: RunDir, spec: TaskSpec, rows: list[ResultRow]) -> Section:
    source = spec.model.decision_source
    column = (CV_METRIC_COLUMNS if source == "cv" else METRIC_COLUMNS)[spec.metric]
    series = [(r.round, getattr(r, column)) for r in rows if not r.final and getattr(r, column) is not None]
    read = source
    if len(series) < 2 and source == "cv":
        column, read = METRIC_COLUMNS[spec.metric], "gold, as fewer than two rounds have cv figures"
        series = [(r.round, getattr(r, column)) for r in rows if not r.final and getattr(r, column) is not None]
    section = Section("delta", f"Δ{spec.metric} between rounds, plateau ε and hybrid switch")
    if len(series) < 2:
        section.notes.append(f"Fewer than two rounds have {column}: no change to show yet.")
        return section
    rounds = [r for r, _ in series[1:]]
    change = [b - a for (_, a), (_, b) in itertools.pairwise(series)]
    epsilon = spec.stopping.plateau_epsilon
    switch = _switch_round(run, spec, rows)
    section.add_figure(
        f"change of {column} between rounds",
        charts.deltas(rounds, change, epsilon, switch, f"Δ {column}", "plateau ε"),
    )
    plateau = (
        f"The plateau rule stops when |Δ| < ε = {epsilon:g} for {spec.stopping.plateau_rounds} rounds in a row."
        if epsilon is not None
        else "The plateau rule is off (no ε)."
    )
    section.notes.append(f"Δ of {column} (decisions read {source}; shown: {read}). {plateau}")
    if spec.model.training_strategy == "hybrid":
        when = f"it switched in round {switch}" if switch is not None else "it has not switched"
        settles = (
            f"|Δ| < {spec.model.hybrid_epsilon:g}"
            if spec.model.hybrid_kappa is None
            else f"κ between successive rounds' pool predictions ≥ {spec.model.hybrid_kappa:g}"
        )
        k = spec.model.hybrid_rounds
        section.notes.append(f"Hybrid training fine-tunes once {settles} for {k} rounds: {when}.")
    else:
        section.notes.append(f"Training strategy {spec.model.training_strategy}: no hybrid switch to mark.")
    section.tables.append(
        table([{"round": r, f"Δ {column}": d} for r, d in zip(rounds, change, strict=True)], digits=4)
    )
    return section


def labels(run: RunDir) -> Section:
    section = Section("labels", "Labels by annotator and destination")
    events = run.labels()
    if not events:
        section.notes.append("No label events yet.")
        return section
    counts = Counter((e.annotator, e.destination, e.source, e.status) for e in events)
    records = [
        {"annotator": a, "destination": d, "source": s, "status": st, "events": n}
        for (a, d, s, st), n in sorted(counts.items())
    ]
    section.tables.append(table(records))
    section.notes.append(f"{len(events)} label events; judge labels never count as human.")
    return section


def agreement(run: RunDir, spec: TaskSpec, rows: list[ResultRow]) -> Section:
    section = Section("agreement", "Agreement: the model with people, and the human ceiling")
    rounds = model_rounds(run, having="predictions")
    metric = spec.stopping.agreement_metric
    report, note = None, "no round has been scored yet"
    if rounds:
        try:
            level = level_for(spec, None)
            report, _, note = measure_agreement(
                run, spec, rounds[-1], ModelDir(run, rounds[-1]).predictions(), metric, level, 500, CONFIDENCE, 0
            )
        except AlloopError as exc:
            note = str(exc)
    if report is not None:
        distance = f", {report.distance}" if report.distance else ""
        pool = f", {report.ceiling_pool_items} of them pool items" if report.ceiling_pool_items else ""
        section.notes.append(
            f"{report.metric} ({report.level}{distance}), round {rounds[-1]}: the model with people on "
            f"{report.n_items} held-out items; the human ceiling among {report.n_people} people on "
            f"{report.ceiling_items} items labeled by two or more ({report.ceiling_from}{pool}). "
            f"{report.confidence:.0%} bootstrap intervals ({report.bootstrap} resamples over items)."
        )
        if report.note:
            section.notes.append(report.note)
        section.tables.append(
            table(
                [
                    {"measure": name, "value": i.value, "low": i.ci_low, "high": i.ci_high}
                    for name, i in (
                        ("model–human", report.model_human),
                        ("human ceiling", report.human_ceiling),
                        ("gap (model − ceiling)", report.gap),
                    )
                ],
                digits=4,
            )
        )
    else:
        section.notes.append(f"Not measured: {note}.")
    recorded = [
        {"round": r.round, "model–human": r.agreement_model_human, "human ceiling": r.agreement_human_ceiling}
        for r in rows
        if r.agreement_model_human is not None or r.agreement_human_ceiling is not None
    ]
    if recorded:
        section.tables.append(table(recorded, "As check_convergence recorded them in results.tsv", digits=4))
    return section


def stopping(rows: list[ResultRow]) -> Section:
    section = Section("stopping", "Why the run stopped")
    decided = [r for r in rows if r.stop_decision]
    if not decided:
        section.notes.append("No round has a stop decision yet: run check_convergence.")
        return section
    last = decided[-1]
    verdict = "stopped" if last.stop_decision == "stop" else "has not stopped"
    section.notes.append(f"Round {last.round}: the run {verdict} ({last.stop_decision}): {last.stop_reasons or '–'}.")
    section.tables.append(
        table([{"round": r.round, "decision": r.stop_decision, "reasons": r.stop_reasons} for r in decided])
    )
    return section


def glmm_card(run: RunDir) -> tuple[int, dict[str, Any]] | None:
    """The latest round and its GLMM head's card (fits with SDs, fixed effects, modes); None for other heads."""
    rounds = model_rounds(run)
    head = ModelDir(run, rounds[-1]).card().get("head") if rounds else None
    if not isinstance(head, dict) or "fits" not in head:
        return None
    return rounds[-1], head


def variance_components(glmm: tuple[int, dict[str, Any]] | None) -> Section | None:
    """A GLMM head's random-effect SDs from the latest model card; None for other heads."""
    if glmm is None:
        return None
    round_, head = glmm
    section = Section("variance-components", f"Variance components of the GLMM head (round {round_})")
    records = [
        {"class": fit.get("class"), "component": name, "sd": sd, "variance": sd * sd, "singular": fit.get("singular")}
        for fit in head["fits"]
        for name, sd in fit.get("sd", {}).items()
    ]
    section.notes.append(
        f"{head.get('family', '')} GLMM, effects {head.get('effects', '')}; {head.get('estimation', '')}."
    )
    if records:
        section.tables.append(table(records, digits=4))
    else:
        section.notes.append("The fit has no random effects (fixed effects only).")
    return section


def _fit_title(fit: dict[str, Any], spec: TaskSpec) -> str:
    """Which model a fit is: the class of a one-vs-rest fit, else the whole response."""
    if "class" not in fit:
        return spec.task_type.replace("_", " ")
    k = int(fit["class"])
    return f"{spec.labels[k] if k < len(spec.labels) else k} vs rest"


def _fixed_intervals(fit: dict[str, Any], spec: TaskSpec, z: float) -> list[charts.Interval]:
    """A fit's fixed effects, and an ordinal fit's thresholds (its cut points between levels)."""
    rows = [charts.Interval(n, b, z * fit["fixed_se"][n]) for n, b in fit.get("fixed", {}).items() if "fixed_se" in fit]
    levels = [spec.labels[int(v)] if v.isdigit() and int(v) < len(spec.labels) else v for v in fit.get("levels") or []]
    for k, (a, se) in enumerate(zip(fit.get("thresholds", []), fit.get("threshold_se", []), strict=False)):
        cut = f"{levels[k]}|{levels[k + 1]}" if k + 1 < len(levels) else str(k + 1)
        rows.append(charts.Interval(f"threshold {cut}", a, z * se))
    return rows


def glmm_effects(glmm: tuple[int, dict[str, Any]] | None, spec: TaskSpec) -> Section | None:
    """A GLMM head's fixed effects (forest plot, Wald intervals) and conditional modes (caterpillar
    plots) from the latest model card; None for other heads."""
    if glmm is None:
        return None
    round_, head = glmm
    section = Section("glmm-effects", f"GLMM effects (round {round_})")
    z = charts.Z95
    fixed = [(_fit_title(fit, spec), _fixed_intervals(fit, spec, z)) for fit in head["fits"]]
    fixed = [(title, rows) for title, rows in fixed if rows]
    if fixed:
        section.add_figure(
            "fixed effects with 95% Wald intervals",
            charts.forest(fixed, "estimate (link scale)", "Fixed effects: estimate ± 1.96 SE (95% Wald intervals)"),
        )
        section.tables.append(
            table(
                [
                    {"model": title, "effect": i.name, "estimate": i.estimate, "se": i.half_width / z}
                    for title, rows in fixed
                    for i in rows
                ],
                digits=4,
            )
        )
        section.notes.append(
            "The text embedding enters as a shared term with a Gaussian prior (a variance component), "
            "so only the intercept (an ordinal model's thresholds) and design predictors are fixed effects."
        )
    terms = sorted({name for fit in head["fits"] for name in fit.get("ranef", {})})
    for name in terms:
        panels = [
            (
                _fit_title(fit, spec),
                [charts.Interval(str(level), mode, z * sd) for level, mode, sd in fit["ranef"][name]],
            )
            for fit in head["fits"]
            if fit.get("ranef", {}).get(name)
        ]
        group, _, column = name.partition(":")
        section.add_figure(
            f"caterpillar plot of {group} {column}",
            charts.forest(
                panels,
                "conditional mode (link scale)",
                f"{group}: {column}, conditional modes ± 1.96 conditional SD (95%), sorted",
                top_down=False,
            ),
        )
        shown = max(len(p) for _, p in panels)
        sds = [fit.get("sd", {}).get(f"{group}:{column}") for fit in head["fits"]]
        flat = " Its SD is estimated at 0, so every mode is 0 (a singular fit)." if all(v == 0 for v in sds) else ""
        section.notes.append(f"{group} {column}: {shown} levels per panel, sorted by their conditional mode.{flat}")
    if not fixed and not terms:
        section.notes.append("This model card predates fixed-effect SEs and conditional modes: retrain to draw them.")
    return section


def round_table(rows: list[ResultRow]) -> Section:
    section = Section("rounds", "Rounds")
    section.notes.append("gold_* figures are on the held-out set only; judge_* figures never enter them.")
    section.tables.append(table([{c: r.model_dump()[c] for c in SUMMARY_COLUMNS} for r in rows]))
    return section


def all_sections(run: RunDir, baseline: RunDir | None = None) -> list[Section]:
    """Every section of the page, in reading order (a baseline run's curve beside this run's, when named)."""
    spec, rows, glmm = run.spec(), run.results(), glmm_card(run)
    found = [
        round_table(rows),
        learning_curve(run, spec, rows, baseline),
        per_class(rows),
        confusion(run, spec),
        batch_mix(run, spec),
        uncertainty(run),
        deltas(run, spec, rows),
        labels(run),
        agreement(run, spec, rows),
        stopping(rows),
        variance_components(glmm),
        glmm_effects(glmm, spec),
    ]
    return [s for s in found if s is not None]


def summary_line(run: RunDir, spec: TaskSpec, rows: list[ResultRow]) -> str:
    """The page's first line: task, data, model, and the final figure."""
    heldout = run.heldout()
    last = rows[-1] if rows else None
    metric = figure(getattr(last, METRIC_COLUMNS[spec.metric]) if last else None, 3, "–")
    return (
        f"{spec.task_type} over {', '.join(spec.labels) or 'free answers'}; pool {len(run.pool())} items, held-out "
        f"{len(heldout) if heldout is not None else 0}; encoder {spec.model.encoder}, head {spec.model.head} "
        f"({spec.model.effects}); {len(rows)} rounds; latest gold {spec.metric} {metric}."
    )
