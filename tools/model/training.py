"""What a training round decides and trains on: its rows, its strategy, its cross-validated figures.

The four strategies act on the head's prior: retrain centres it on 0; fine_tune (all labels) and
new_only (the newest batch) centre it on the previous round's weights; hybrid retrains until
the decision figure settles, then fine-tunes for good. With a trained encoder they act on the
encoder instead: retrain starts from the pretrained weights, the others continue the previous
round's for fewer epochs (`fine_tune_epochs`), and the head is refitted on the new embeddings.
A decision figure is out-of-fold on the labeled items (for a trained encoder: its validation
split) unless the spec asks for held-out gold (`model.decision_source`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alloop.tools.base import ProgressFn
from alloop.tools.model.encoders import HFEncoder, resolve_encoder
from alloop.tools.model.heads import Design, item_design
from alloop.tools.model.metrics import label_metrics
from alloop.tools.model.task_metrics import option_matrix, option_text
from alloop.tools.model.task_types import cv_figures
from alloop.tools.run.labels import HUMAN_SOURCES, live_events, training_labels
from alloop.tools.run.models import ModelDir
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import EncoderTrainingSpec, LabelEvent, TaskSpec
from alloop.tools.stopping.evidence import prediction_changes


@dataclass
class StrategyChoice:
    """The training strategy applied this round, and why (for the card)."""

    applied: str
    note: str = ""
    anchor_round: int | None = None
    hybrid: dict[str, Any] | None = None
    """Hybrid only: the decision figure's series, its |Δ|, and the round it switched (for the card)."""


def choose_strategy(spec: TaskSpec, requested: str, run: RunDir, previous: int | None) -> StrategyChoice:
    """Hybrid retrains until its figure settles for k consecutive rounds, then fine-tunes for good.

    The figure is |ΔF1| < ε, F1 read from `spec.model.decision_source` (out-of-fold on the labeled
    items by default, so the held-out gold set never steers training), or, when
    `spec.model.hybrid_kappa` is set, κ ≥ that between successive rounds' pool predictions.
    """
    if previous is None:
        return StrategyChoice("retrain", f"{requested}: round 1 has no earlier model" if requested != "retrain" else "")
    if requested != "hybrid":
        return StrategyChoice(requested, anchor_round=None if requested == "retrain" else previous)
    settles = _kappa_settles if spec.model.hybrid_kappa is not None else _f1_settles
    record, settled, rule, shown = settles(spec, run, previous)
    before = ModelDir(run, previous).card()
    if before.get("training_strategy") == "fine_tune":
        switched = (before.get("hybrid") or {}).get("switched_at", previous)
        note = f"hybrid: switched to fine_tune in round {switched}"
        return StrategyChoice("fine_tune", note, previous, record | {"switched_at": switched})
    if settled:
        switch = record | {"switched_at": previous + 1}
        return StrategyChoice("fine_tune", f"hybrid: {rule} ({shown})", previous, switch)
    return StrategyChoice("retrain", f"hybrid: retrain until {rule}", hybrid=record | {"switched_at": None})


def _f1_settles(spec: TaskSpec, run: RunDir, previous: int) -> tuple[dict[str, Any], bool, str, str]:
    """|ΔF1| between rounds up to `previous`: the record for the card, settled or not, the rule, the last |Δ|s."""
    figure = f"{spec.model.decision_source}_macro_f1"
    rows = [r for r in run.results() if r.round <= previous and getattr(r, figure) is not None]
    k, eps = spec.model.hybrid_rounds, spec.model.hybrid_epsilon
    deltas = np.abs(np.diff([getattr(r, figure) for r in rows]))
    record: dict[str, Any] = {
        "figure": figure,
        "series": {r.round: round(getattr(r, figure), 6) for r in rows},
        "abs_delta": [round(float(d), 6) for d in deltas],
        "epsilon": eps,
        "rounds": k,
    }
    recent = deltas[-k:]
    settled = len(recent) == k and bool((recent < eps).all())
    return record, settled, f"|Δ{figure}| < {eps:g} for {k} rounds", ", ".join(f"{d:.4f}" for d in recent)


def _kappa_settles(spec: TaskSpec, run: RunDir, previous: int) -> tuple[dict[str, Any], bool, str, str]:
    """κ between successive scored rounds' pool predictions up to `previous` (the stabilizing-predictions
    figure): it measures how much the model itself changed, so it does not grow noisier as each batch
    of hard, uncertainty-picked items arrives the way a macro-F1 on a few dozen labels does."""
    k, threshold = spec.model.hybrid_rounds, spec.model.hybrid_kappa
    changes = prediction_changes(run, previous, k)
    record: dict[str, Any] = {
        "figure": "prediction_kappa",
        "kappa": {c.round_to: c.kappa for c in changes},
        "threshold": threshold,
        "rounds": k,
    }
    settled = len(changes) == k and all(c.kappa is not None and c.kappa >= threshold for c in changes)
    shown = ", ".join("none" if c.kappa is None else f"{c.kappa:.4f}" for c in changes)
    return record, settled, f"κ of successive pool predictions ≥ {threshold:g} for {k} rounds", shown


def training_rows(spec: TaskSpec, run: RunDir, exclude: set[str]) -> tuple[list[str], list[str], Design | None, int]:
    """Rows to train on: one per item (majority label) or, per response, one per human answer.

    Design predictors (spec.model.predictors, numeric pool fields) go with every row; per
    response, so do the participant (the label's annotator) and the item.
    """
    events = answer_texts(spec, run.labels())
    names = spec.model.predictors
    if spec.prediction_unit == "item":
        tl = training_labels(spec, events, exclude)
        return tl.item_ids, tl.labels, item_design(run.pool(), names, run.pool().positions(tl.item_ids)), tl.n_pseudo
    rows = [
        e
        for e in live_events(events)
        if e.status == "submitted" and e.source in HUMAN_SOURCES and e.item_id not in exclude
    ]
    item_ids = [e.item_id for e in rows]
    predictors = item_design(run.pool(), names, run.pool().positions(item_ids))
    design = Design(
        participants=np.asarray([e.annotator for e in rows], dtype=object),
        items=np.asarray(item_ids, dtype=object),
        predictors=predictors.predictors if predictors else None,
        predictor_names=tuple(names),
    )
    return item_ids, [str(e.label) for e in rows], design, 0


def answer_texts(spec: TaskSpec, events: list[LabelEvent]) -> list[LabelEvent]:
    """multi_select answers as one text each ('a|b', options in schema order), so that votes on
    the same set count together; other task types' events as they are."""
    if spec.task_type != "multi_select":
        return events
    texts = [option_text(row, spec.labels) for row in option_matrix([e.label for e in events], spec.labels)]
    return [e.model_copy(update={"label": t}) if e.label is not None else e for e, t in zip(events, texts, strict=True)]


def cross_validated(
    spec: TaskSpec, head: Any, labels: list[str], encoder: dict[str, Any], y: np.ndarray | None = None
) -> dict[str, Any]:
    """cv_* figures: the head's out-of-fold predictions, or the trained encoder's validation split.

    When the encoder trained on these rows, the head's out-of-fold rows were in its training set,
    so only the validation items the encoder held back give an honest figure (macro-F1). The
    shipped head's out-of-fold macro-F1 over every label was tried as hybrid's figure instead
    (benchmarks/README.md, encoder training): on drug reviews it read 0.48-0.73 while gold was
    0.34-0.46, and moved 0.04-0.22 between rounds (this figure: 0.001-0.25, mostly under 0.06).
    multi_select and magnitude read `y`, the targets (task_types.cv_figures).
    """
    if spec.task_type in ("multi_select", "magnitude") and y is not None:
        return cv_figures(spec, head, y)
    if encoder.get("kind", "frozen") != "frozen":
        value = encoder.get("validation_macro_f1")
        return {"cv_macro_f1": None if value is None else round(float(value), 6)}
    oof = getattr(head, "oof_predictions_", None)
    if oof is None:
        return {}
    predicted = [spec.labels[int(c)] for c in oof]
    figures = label_metrics(labels, predicted, spec.labels, ordinal=spec.task_type == "ordinal_scale", prefix="cv")
    return {k: None if v is None else round(v, 6) for k, v in figures.items() if k not in ("cv_n", "cv_f1_by_class")}


def newest_rows(
    run: RunDir, item_ids: list[str], y: np.ndarray, anchor: Any, since: int
) -> tuple[np.ndarray | None, str]:
    """Rows labeled since the anchor's round, or None (and why) when they cannot train alone."""
    events_round = {e.item_id: e.round for e in run.labels() if e.source != "judge"}
    rows = np.flatnonzero([events_round.get(i, 0) >= since for i in item_ids])
    missing = sorted(set(anchor.classes_.tolist()) - set(y[rows].tolist()))
    if len(rows) == 0 or missing:
        return None, f"new_only fell back to fine_tune: the newest batch lacks class index(es) {missing or 'all'}"
    return rows, ""


def train_round_encoder(
    run: RunDir,
    spec: TaskSpec,
    training: EncoderTrainingSpec,
    item_ids: list[str],
    y: np.ndarray,
    anchor_round: int | None,
    out: Path,
    progress: ProgressFn,
) -> tuple[HFEncoder, dict[str, Any]]:
    """Train the round's encoder into `out` and say how (for the card).

    retrain starts from the pretrained weights for `training.epochs`; fine_tune and new_only (the
    caller chose the rows) continue from the anchor round's weights or adapter when it has them,
    for `training.fine_tune_epochs`.
    """
    from alloop.tools.compute import backend_for
    from alloop.tools.model.finetune import train_encoder  # torch training and peft load only when used

    init = ModelDir(run, anchor_round).encoder_weights() if anchor_round is not None else None
    texts = run.pool().texts(spec.text_fields)
    positions = run.pool().positions(item_ids)
    backend = backend_for(spec)  # spec.compute: Modal trains it; `out` is written once the weights are back
    result = (backend.train if backend else train_encoder)(
        [texts[p] for p in positions],
        y.tolist(),
        len(spec.labels),
        training,
        base=resolve_encoder(spec.model.encoder),
        out=out,
        init=init,
        seed=spec.selection.seed,
        progress=progress,
        keys=item_ids,
    )
    card = asdict(result)
    card["validation_item_ids"] = [item_ids[i] for i in card.pop("validation_ids_positions")]
    card |= {"kind": training.kind, "init_round": anchor_round if init is not None else None}
    return HFEncoder(spec.model.encoder, spec.model.max_length, weights=out), card
