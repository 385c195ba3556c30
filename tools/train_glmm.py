"""train_glmm: fit the round's model on every label so far and evaluate it on held-out gold.

Uses every human-standing label so far (held-out items never), evaluates on the held-out gold set
and writes models/round_XX/ (head, card, and the encoder's weights when it learned) and the round's
gold_* row in results.tsv. Frozen takes seconds; encoder_training full, lora or contrastive takes
minutes on a CPU (progress is reported) and re-embeds the pool.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import InputError, StateError
from alloop.tools.model.encoders import run_encoder
from alloop.tools.model.generative_round import GENERATIVE_TASKS, train_round
from alloop.tools.model.heads import item_design, load_head, make_head, save_head
from alloop.tools.model.task_types import features, gold_figures, label_counts, scores, targets
from alloop.tools.model.training import (
    StrategyChoice,
    choose_strategy,
    cross_validated,
    newest_rows,
    train_round_encoder,
    training_rows,
)
from alloop.tools.run.labels import answered_items
from alloop.tools.run.models import ModelDir, data_hash, latest_round, model_rounds, next_training_round, resolve_round
from alloop.tools.run.schema import LABELED_TASKS, EncoderTrainingKind, ResultRow, TaskSpec, TrainingStrategy


class TrainInput(RunArgs):
    training_strategy: TrainingStrategy | None = Field(
        None,
        description="fine_tune: from the last round's weights; new_only: the newest batch; default from spec.json.",
    )
    head: str | None = Field(None, description="logistic or glmm; default from spec.json.")
    C: float | None = Field(None, gt=0, description="Prior variance of the weights; default the head's own.")
    round: int | None = Field(None, ge=1, description="Redo this round instead of training the next.")
    encoder_training: EncoderTrainingKind | None = Field(
        None,
        description="frozen, or the encoder learns too (minutes on a CPU); default from spec.json.",
    )
    final: bool = Field(
        False,
        description="Train the final model on every label and mark it final.",
    )


class TrainOutput(BaseModel):
    run: str
    round: int
    model_version: str
    training_strategy: TrainingStrategy
    strategy_note: str = ""
    n_labeled: int
    n_pseudo_labeled: int
    label_counts: dict[str, int]
    train_seconds: float
    gold: dict[str, Any] = Field(description="Held-out gold metrics (human gold only).")
    pending_in_last_batch: int = Field(0, description="Items of the last batch still without an answer.")
    card: dict[str, Any]


def cannot_train(spec: TaskSpec) -> str | None:
    """Why no round can be trained for this task type, and what to do instead (None: it can).

    status asks this too, so it never sends an agent to a training that cannot run.
    """
    task = spec.task_type
    if task not in LABELED_TASKS | {"magnitude"} | GENERATIVE_TASKS:
        return (
            f"train_glmm trains label heads, and task_type {task!r} has no label schema: the labels collected "
            "so far are kept; write the report (write_report)"
        )
    return None


def train_glmm(args: TrainInput, ctx: ToolContext) -> TrainOutput:
    """Train the next round's model on every label so far; its held-out gold_* scores go to results.tsv.

    Use once a batch's labels are in. A frozen encoder takes seconds; encoder_training full, lora
    or contrastive takes minutes on a CPU.
    """
    run = ctx.root.run(args.run)
    with run.lock():
        spec = run.spec()
        if (reason := cannot_train(spec)) is not None:
            raise InputError(reason)
        next_round = next_training_round(run)
        if args.final:  # a round of its own after the loop's last model, so the loop's curve stays whole
            next_round = max(next_round, latest_round(run) + 1)
        round_ = resolve_round(args.round, next_round)
        if round_ > next_round:
            raise StateError(f"round {round_} is ahead of the run; the next round to train is {next_round}")
        heldout = run.heldout()
        exclude = set(heldout.ids) if heldout is not None else set()
        item_ids, labels, design, n_pseudo = training_rows(spec, run, exclude)
        if not item_ids:
            raise StateError(
                "no labels yet: run seed_set, then get the seed batch labeled (import_labels, simulate or Argilla)"
            )
        if spec.task_type in GENERATIVE_TASKS:
            return train_generative(args, ctx, round_, item_ids, labels, n_pseudo)
        y = targets(spec, labels)

        started = time.perf_counter()
        requested = args.training_strategy or spec.model.training_strategy
        training = spec.model.encoder_training
        if args.encoder_training is not None:
            training = training.model_copy(update={"kind": args.encoder_training})
        head = make_head(args.head or spec.model.head, spec, C=args.C)
        if requested != "retrain" and not head.anchorable and training.kind == "frozen":
            raise InputError(
                f"head {head.name!r} is refitted from all labels every round (no warm start), so "
                f"training_strategy {requested!r} has no meaning for it; use retrain"
            )
        if training.kind != "frozen" and spec.task_type in ("multi_select", "magnitude", "forced_choice"):
            raise InputError(
                f"encoder_training {training.kind!r} trains the encoder on one class per item; a {spec.task_type} "
                "run trains its head on a frozen encoder: use encoder_training frozen"
            )
        previous = [r for r in model_rounds(run) if r < round_]
        choice = choose_strategy(spec, requested, run, previous[-1] if previous else None)
        anchor = load_head(ModelDir(run, choice.anchor_round).head_path) if choice.anchor_round is not None else None
        rows = np.arange(len(y))
        if choice.applied == "new_only":
            newest, note = newest_rows(run, item_ids, y, anchor, ModelDir(run, choice.anchor_round).card()["round"])
            if newest is None:
                choice = StrategyChoice("fine_tune", note, choice.anchor_round)
            else:
                rows = newest
        pool = run.pool()
        model = ModelDir(run, round_)
        encoder_card: dict[str, Any] = {"kind": "frozen"}
        staging = None
        try:
            if training.kind == "frozen":
                encoder = run_encoder(run)
                if anchor is not None and ModelDir(run, choice.anchor_round).card().get("encoder_key") != encoder.key:
                    note = f"{choice.applied} fell back to retrain: round {choice.anchor_round} read another encoder"
                    choice, anchor, rows = StrategyChoice("retrain", note), None, np.arange(len(y))
            else:  # the strategy acts on the encoder; the head is refitted on its new embeddings
                staging = model.encoder_staging()
                encoder, encoder_card = train_round_encoder(
                    run,
                    spec,
                    training,
                    [item_ids[i] for i in rows],
                    y[rows],
                    choice.anchor_round,
                    staging,
                    ctx.progress,
                )
                anchor, rows = None, np.arange(len(y))  # the head is fitted anew on every label
            # only the labeled items: score_pool embeds the rest (or a shortlist of it) with this encoder
            # (per response, an item has a row per answer: embed each item once)
            labeled, row_of = np.unique(pool.positions(item_ids), return_inverse=True)
            x = features(run, spec, pool.take(labeled), encoder, head.name, ctx.progress)[row_of]
            row_design = design.subset(rows) if design is not None else None
            warm = {"anchor": anchor, "sequential": choice.applied == "new_only"} if anchor is not None else {}
            head.fit(x[rows], y[rows], row_design, **warm)
            if anchor is not None and not head.anchored_:
                choice = StrategyChoice("retrain", f"{choice.applied} fell back to retrain: {head.anchor_note_}")
            train_seconds = time.perf_counter() - started
            hx = features(run, spec, heldout, encoder, head.name, ctx.progress) if heldout is not None else None
        except BaseException:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)  # a failed or killed training leaves nothing
            raise

        gold: dict[str, Any] = {}
        if heldout is not None:
            rows_scored = scores(head, hx, item_design(heldout, spec.model.predictors))
            gold = gold_figures(spec, heldout.column("label"), rows_scored)
        cv = cross_validated(spec, head, [labels[i] for i in rows], encoder_card, y[rows])

        version = f"r{round_:02d}-{data_hash(item_ids, labels)[:8]}"
        counts = label_counts(spec, y)
        card = {
            "round": round_,
            "model_version": version,
            "encoder": spec.model.encoder,
            "encoder_key": encoder.key,
            "encoder_version": encoder.version,
            "encoder_training": encoder_card,
            "final": args.final,
            "head": head.card(),
            "effects": spec.model.effects,
            "training_strategy": choice.applied,
            "requested_strategy": requested,
            "strategy_note": choice.note,
            "hybrid": choice.hybrid,
            "warm_start_from_round": choice.anchor_round if getattr(head, "anchored_", False) else None,
            "decision_source": spec.model.decision_source,
            "cv": cv,
            "n_labeled": len(item_ids),
            "label_counts": counts,
            "trained_on": {
                "n": len(rows),
                "label_counts": label_counts(spec, y[rows]),
            },
            "data_hash": data_hash(item_ids, labels),
            "seed": spec.selection.seed,
            "spec_version": spec.spec_version,
            "gold": gold,
        }
        model.drop_predictions()  # scores of an earlier model of this round must not outlive it
        if staging is not None:
            model.publish_encoder(staging)
        else:
            model.drop_encoder()
        save_head(head, model.head_path)
        model.write_card(card)
        run.upsert_result(
            ResultRow(
                round=round_,
                model_version=version,
                training_strategy=choice.applied,
                decision_source=spec.model.decision_source,
                encoder_training=training.kind,
                final=args.final,
                **cv,
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
        training_strategy=choice.applied,
        strategy_note=choice.note,
        n_labeled=len(item_ids),
        n_pseudo_labeled=n_pseudo,
        label_counts=counts,
        train_seconds=round(train_seconds, 3),
        gold=gold,
        pending_in_last_batch=pending,
        card=card,
    )


def train_generative(
    args: TrainInput, ctx: ToolContext, round_: int, item_ids: list[str], labels: list[Any], n_pseudo: int
) -> TrainOutput:
    """free_text and cloze: LoRA on the LM that `head` names (model/generative.py); run lock held."""
    run = ctx.root.run(args.run)
    spec = run.spec()
    if (args.training_strategy or spec.model.training_strategy) != "retrain":
        raise InputError("a free_text or cloze round refits the LM's adapters on every label: use retrain")
    started = time.perf_counter()
    model = ModelDir(run, round_)
    head, gold = train_round(run, spec, args.head or spec.model.head, item_ids, labels, model, ctx.progress)
    seconds = round(time.perf_counter() - started, 3)
    version = f"r{round_:02d}-{data_hash(item_ids, [str(v) for v in labels])[:8]}"
    counts = {"n": len(item_ids)}
    card = {
        "round": round_,
        "model_version": version,
        "final": args.final,
        "head": head,
        "training_strategy": "retrain",
        "n_labeled": len(item_ids),
        "label_counts": counts,
        "data_hash": data_hash(item_ids, [str(v) for v in labels]),
        "seed": spec.selection.seed,
        "spec_version": spec.spec_version,
        "gold": gold,
    }
    model.write_card(card)
    run.upsert_result(
        ResultRow(
            round=round_,
            model_version=version,
            training_strategy="retrain",
            decision_source=spec.model.decision_source,
            encoder_training="lora",
            final=args.final,
            n_labeled=len(item_ids),
            n_pool=len(run.pool()) - len(set(item_ids)),
            n_pseudo_labeled=n_pseudo,
            train_seconds=seconds,
            **gold,
        )
    )
    return TrainOutput(
        run=args.run,
        round=round_,
        model_version=version,
        training_strategy="retrain",
        n_labeled=len(item_ids),
        n_pseudo_labeled=n_pseudo,
        label_counts=counts,
        train_seconds=seconds,
        gold=gold,
        card=card,
    )


SPEC = ToolSpec(name="train_glmm", fn=train_glmm, input_model=TrainInput, output_model=TrainOutput, behaviour="writes")
