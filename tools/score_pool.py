"""score_pool: predictions, confidence and uncertainty for every pool item, in one pass.

Embeddings come from the cache (each item is embedded once per encoder); probabilities and
predictions go to models/round_XX/predictions.npz, tagged with the model version, for select_batch
(which derives the uncertainty measures) and check_convergence. The first call embeds the pool:
minutes (about 50–150 s for a few thousand texts on a CPU).
"""

from __future__ import annotations

import time

import numpy as np
from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.compute import backend_for
from alloop.tools.errors import InputError
from alloop.tools.model.encoders import run_encoder
from alloop.tools.model.generative_round import GENERATIVE_TASKS, score_round
from alloop.tools.model.heads import item_design, load_head
from alloop.tools.model.shortlist import shortlist
from alloop.tools.model.task_types import confidence, features, predicted, score_columns, scores
from alloop.tools.model.uncertainty import measure_for, uncertainty
from alloop.tools.run.models import ModelDir, Predictions, latest_model_round, resolve_round

CHUNK = 65536


class ScoreInput(RunArgs):
    round: int | None = Field(None, ge=1, description="Score with this round's model; default the latest.")
    shortlist: int | None = Field(
        None,
        ge=1,
        description="Trained encoder, large pool: re-embed only the N least certain items (plus N/4 at random).",
    )


class ScoreOutput(BaseModel):
    run: str
    round: int
    model_version: str
    n_scored: int
    predicted_counts: dict[str, int]
    mean_confidence: float | None
    uncertainty_measure: str = Field(description="entropy; summed option entropy (multi_select); variance; sd.")
    mean_uncertainty: float
    score_seconds: float
    most_uncertain: list[dict] = Field(description="The five most uncertain items: id, prediction, the measure.")


def head_predictions(args: ScoreInput, ctx: ToolContext, model: ModelDir, card: dict) -> Predictions:
    """The round's head over the encoder's features: score rows and predictions for pool and held-out."""
    run = model.run
    spec = run.spec()
    head = load_head(model.head_path)
    encoder = run_encoder(run, model.round)  # the encoder this round trained, or the pretrained one
    pool = run.pool()
    columns = score_columns(spec)
    probs = np.empty((len(pool), len(columns)), dtype=np.float32)
    scored = np.arange(len(pool))
    if args.shortlist is not None and encoder.weights is not None and args.shortlist < len(pool):
        probs, scored = shortlist(run, spec, args.shortlist, spec.selection.seed)
        model.write_card(card | {"scoring": {"shortlist": args.shortlist, "rescored": len(scored)}})
    elif "scoring" in card:  # a full scoring replaces an earlier shortlist's
        model.write_card({k: v for k, v in card.items() if k != "scoring"})
    table = pool if len(scored) == len(pool) else pool.take(scored)  # all: the cache's rows, memory-mapped
    x = features(run, spec, table, encoder, head.name, ctx.progress)
    backend = backend_for(spec)  # spec.compute: Modal scores in shards, merged here only once all are back
    if backend is not None:
        design = item_design(pool, spec.model.predictors, scored)
        probs[scored] = backend.score(model.head_path.read_bytes(), np.asarray(x), design, ctx.progress)
    else:
        from sklearn import config_context

        # sklearn's input check is a second pass over the matrix; the n × classes scores are checked below instead
        with config_context(assume_finite=True):
            for start in range(0, len(scored), CHUNK):
                rows = scored[start : start + CHUNK]
                design = item_design(pool, spec.model.predictors, rows)
                probs[rows] = scores(head, x[start : start + CHUNK], design)
                ctx.progress(min(start + CHUNK, len(scored)), len(scored), "scoring pool")
    bad = np.flatnonzero(~np.isfinite(probs[scored]).all(axis=1))
    if len(bad):
        shown = pool.id_array.take(scored[bad[:5]]).to_pylist()
        raise InputError(
            f"{len(bad)} pool items scored NaN or infinite (e.g. {shown}): their cached embeddings are not finite; "
            "re-embed them or bring new vectors for them"
        )
    heldout = run.heldout()
    if heldout is not None:
        hx = features(run, spec, heldout, encoder, head.name)
        heldout_probs = scores(head, hx, item_design(heldout, spec.model.predictors)).astype(np.float32)
        heldout_ids = np.asarray(heldout.ids)
    else:
        heldout_probs, heldout_ids = np.zeros((0, len(columns)), np.float32), np.asarray([], dtype=str)
    preds = Predictions(
        pool_ids=np.asarray(pool.ids, dtype=str),
        pool_pred=predicted(spec, probs),
        heldout_ids=np.asarray(heldout_ids, dtype=str),
        heldout_pred=predicted(spec, heldout_probs),
        labels=columns,
        model_version=card["model_version"],
        pool_probs=probs,
        heldout_probs=heldout_probs,
    )
    if len(scored) < len(pool):
        preds.pool_scored = np.isin(np.arange(len(pool)), scored)
    return preds


def score_pool(args: ScoreInput, ctx: ToolContext) -> ScoreOutput:
    """Score the pool and held-out set with a round's model, for select_batch and check_convergence.

    Use after train_glmm. The first call embeds the pool (minutes on a CPU).
    """
    run = ctx.root.run(args.run)
    with run.lock():
        spec = run.spec()
        round_ = resolve_round(args.round, latest_model_round(run))
        model = ModelDir(run, round_)
        card = model.card()
        started = time.perf_counter()
        if spec.task_type in GENERATIVE_TASKS:  # an LM writes the answers (model/generative_round.py)
            preds = score_round(run, spec, model, ctx.progress)
        else:
            preds = head_predictions(args, ctx, model, card)
        model.save_predictions(preds)
        seconds = time.perf_counter() - started
        run.update_result(round_, score_seconds=round(seconds, 3))

    probs = preds.pool_probs
    measures = uncertainty(probs, spec.task_type)
    measure = measure_for("entropy", spec.task_type)
    sure = confidence(spec, probs)
    labels, counts = np.unique(preds.pool_pred, return_counts=True)
    worst = np.argsort(-measures[measure])[:5]
    return ScoreOutput(
        run=args.run,
        round=round_,
        model_version=card["model_version"],
        n_scored=len(preds.pool_ids),
        predicted_counts={str(k): int(v) for k, v in zip(labels, counts, strict=True)},
        mean_confidence=None if sure is None else round(float(sure.mean()), 4),
        uncertainty_measure=measure,
        mean_uncertainty=round(float(measures[measure].mean()), 4),
        score_seconds=round(seconds, 3),
        most_uncertain=[
            {
                "id": str(preds.pool_ids[i]),
                "prediction": str(preds.pool_pred[i]),
                measure: round(float(measures[measure][i]), 4),
            }
            for i in worst
        ],
    )


SPEC = ToolSpec(
    name="score_pool",
    fn=score_pool,
    input_model=ScoreInput,
    output_model=ScoreOutput,
    behaviour="writes",
    idempotent=True,
)
