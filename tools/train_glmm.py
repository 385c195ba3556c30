"""train_glmm: fit the round's model on every label so far and evaluate it on held-out gold."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import InputError, StateError
from alloop.tools.model.encoders import embed_table, run_encoder
from alloop.tools.model.heads import Design, item_design, load_head, make_head, save_head
from alloop.tools.model.metrics import classification_metrics
from alloop.tools.run.labels import HUMAN_SOURCES, answered_items, live_events, training_labels
from alloop.tools.run.models import data_hash, model_rounds, next_training_round, read_card, write_card
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import LABELED_TASKS, ResultRow, TaskSpec, TrainingStrategy


class TrainInput(RunArgs):
    training_strategy: TrainingStrategy | None = Field(
        None, description="retrain, fine_tune (warm start), new_only, hybrid; default from spec.json."
    )
    head: str | None = Field(None, description="Head family; default from spec.json (model.head).")
    C: float = Field(10.0, gt=0, description="Inverse strength of the Gaussian prior on feature weights.")
    round: int | None = Field(None, ge=1, description="Redo this round instead of training the next.")


class TrainOutput(BaseModel):
    run: str
    round: int
    model_version: str
    training_strategy: str
    n_labeled: int
    n_pseudo_labeled: int
    label_counts: dict[str, int]
    train_seconds: float
    gold: dict[str, Any] = Field(description="Held-out gold metrics (human gold only).")
    pending_in_last_batch: int = Field(0, description="Items of the last batch still without an answer.")
    card: dict[str, Any]


def _choose_strategy(spec: TaskSpec, requested: TrainingStrategy, run: RunDir, round_: int) -> str:
    """Hybrid retrains until ΔF1 < ε for k rounds, then fine-tunes."""
    if requested != "hybrid":
        return requested
    scores = [r.gold_macro_f1 for r in run.results() if r.round < round_ and r.gold_macro_f1 is not None]
    k, eps = spec.model.hybrid_rounds, spec.model.hybrid_epsilon
    deltas = np.abs(np.diff(scores))[-k:] if len(scores) > k else np.array([])
    return "fine_tune" if len(deltas) == k and bool((deltas < eps).all()) else "retrain"


def _design(spec: TaskSpec, run: RunDir, exclude: set[str]) -> tuple[list[str], list[str], Design | None, int]:
    """Rows to train on: one per item (majority label) or, per response, one per human answer.

    Design predictors (spec.model.predictors, numeric pool fields) go with every row; per
    response, so do the participant (the label's annotator) and the item.
    """
    events = run.labels()
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


def train_glmm(args: TrainInput, ctx: ToolContext) -> TrainOutput:
    """Train this round's model: frozen-encoder embeddings (cached) and the spec's head.

    Uses every human-standing label so far (held-out items never), evaluates on the held-out
    gold set and writes models/round_XX/ (head, card) and the round's gold_* row in results.tsv.
    """
    run = ctx.root.run(args.run)
    with run.lock():
        spec = run.spec()
        if spec.task_type not in LABELED_TASKS:
            raise InputError(f"train_glmm trains label heads; task_type {spec.task_type!r} has no label schema")
        round_ = args.round or next_training_round(run)
        if args.round and args.round > next_training_round(run):
            raise StateError(
                f"round {args.round} is ahead of the run; the next round to train is {next_training_round(run)}"
            )
        heldout = run.heldout()
        exclude = set(heldout.ids) if heldout is not None else set()
        item_ids, labels, design, n_pseudo = _design(spec, run, exclude)
        if not item_ids:
            raise StateError(
                "no labels yet: run seed_set, then get the seed batch labeled (import_labels, simulate or Argilla)"
            )
        index = {label: i for i, label in enumerate(spec.labels)}
        y = np.asarray([index[label] for label in labels], dtype=np.int64)

        started = time.perf_counter()
        encoder = run_encoder(run)
        pool = run.pool()
        pool_x = embed_table(run, pool, spec.text_fields, encoder, ctx.progress)
        x = pool_x[pool.positions(item_ids)]

        requested = args.training_strategy or spec.model.training_strategy
        strategy = _choose_strategy(spec, requested, run, round_)
        previous = [r for r in model_rounds(run) if r < round_]
        warm = load_head(run.model_dir(previous[-1]) / "head.pkl") if previous and strategy != "retrain" else None
        if strategy == "new_only" and warm is not None:
            since = read_card(run, previous[-1])["round"]
            events_round = {e.item_id: e.round for e in run.labels() if e.source != "judge"}
            fresh = np.asarray([events_round.get(i, 0) >= since for i in item_ids])
            if len(np.unique(y[fresh])) >= 2:
                x, y = x[fresh], y[fresh]
            else:
                strategy = "fine_tune (new_only batch had one class)"
        head_name = args.head or spec.model.head
        params: dict[str, Any] = {"n_classes": len(spec.labels), "random_state": spec.selection.seed}
        if head_name == "logistic":
            params.update(C=args.C, warm_start_from=warm)
        elif head_name == "glmm":  # family from the task type, random effects from spec.model.effects
            params.update(effects=spec.model.effects, task_type=spec.task_type)
        head = make_head(head_name, **params)
        head.fit(x, y, design)
        train_seconds = time.perf_counter() - started

        gold: dict[str, Any] = {}
        if heldout is not None:
            hx = embed_table(run, heldout, spec.text_fields, encoder, ctx.progress)
            probs = head.predict_proba(hx, item_design(heldout, spec.model.predictors))
            predicted = np.asarray(spec.labels, dtype=object)[probs.argmax(axis=1)]
            gold = classification_metrics([str(v) for v in heldout.column("label")], list(predicted), spec.labels)

        version = f"r{round_:02d}-{data_hash(item_ids, labels)[:8]}"
        counts = {label: int((y == i).sum()) for label, i in index.items()}
        card = {
            "round": round_,
            "model_version": version,
            "encoder": spec.model.encoder,
            "encoder_key": encoder.key,
            "head": head.card(),
            "effects": spec.model.effects,
            "training_strategy": strategy,
            "requested_strategy": requested,
            "warm_start_from_round": previous[-1] if warm is not None else None,
            "n_labeled": len(item_ids),
            "label_counts": counts,
            "data_hash": data_hash(item_ids, labels),
            "seed": spec.selection.seed,
            "spec_version": spec.spec_version,
            "gold": gold,
        }
        save_head(head, run.model_dir(round_) / "head.pkl")
        write_card(run, round_, card)
        run.upsert_result(
            ResultRow(
                round=round_,
                model_version=version,
                training_strategy=strategy,
                n_labeled=len(item_ids),
                n_pool=len(pool) - len(set(item_ids)),
                n_pseudo_labeled=n_pseudo,
                train_seconds=round(train_seconds, 3),
                **gold,
            )
        )
        pending = 0
        if round_ - 1 in run.selection_rounds():
            answered = answered_items(run.labels())
            pending = sum(1 for row in run.selection(round_ - 1) if row.item_id not in answered)
    return TrainOutput(
        run=args.run,
        round=round_,
        model_version=version,
        training_strategy=strategy,
        n_labeled=len(item_ids),
        n_pseudo_labeled=n_pseudo,
        label_counts=counts,
        train_seconds=round(train_seconds, 3),
        gold=gold,
        pending_in_last_batch=pending,
        card=card,
    )


SPEC = ToolSpec(name="train_glmm", fn=train_glmm, input_model=TrainInput, output_model=TrainOutput, behaviour="writes")
