"""select_batch: pick the next batch by a named strategy and write selection_round_XX.jsonl.

Near-duplicates: cosine ≥ spec.selection.near_duplicate_threshold to a labeled, held-out or
selected item, or to another pick. Each row records rank, reason, uncertainty scores,
prediction, confidence, model version and seed.
"""

from __future__ import annotations

import time

import numpy as np
from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import InputError, StateError
from alloop.tools.model.encoders import embed_table, run_encoder
from alloop.tools.model.heads import item_design, load_head
from alloop.tools.model.task_types import confidence
from alloop.tools.model.uncertainty import uncertainty
from alloop.tools.run.items import ItemTable
from alloop.tools.run.labels import answered_items
from alloop.tools.run.models import ModelDir, latest_model_round
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import SelectionRow, TaskSpec
from alloop.tools.selection import SelectionProblem, Strategy, check_requirements, get_strategy
from alloop.tools.selection.candidates import Rows, check_batch_fits, pool_candidates
from alloop.tools.selection.laplace import LaplacePosterior, laplace_posterior


class SelectInput(RunArgs):
    strategy: str | None = Field(
        None,
        description="random, least_confidence, margin, power_margin, entropy, kcenter, hybrid, badge, typiclust, "
        "bald, cluster_margin, class_balance; default: spec.",
    )
    batch_size: int | None = Field(None, ge=1, description="Default: budget.batch_size.")
    seed: int | None = Field(None, description="Default: selection.seed, mixed with the round.")
    redo: bool = Field(False, description="Redo this round's selection if none is labeled.")


class SelectOutput(BaseModel):
    run: str
    round: int
    strategy: str
    n_selected: int
    n_candidates: int
    duplicates_skipped: int = Field(0, description="Candidates passed over as near-duplicates.")
    file: str
    select_seconds: float
    items: list[dict] = Field(description="Selected items: id, prediction, confidence, reason (first 20).")


def head_posterior(run: RunDir, spec: TaskSpec, round_: int, pool: ItemTable, pool_x: np.ndarray) -> LaplacePosterior:
    """The round's head's Laplace posterior over its training rows (for BALD), or why there is none."""
    from alloop.tools.model.training import training_rows

    model = ModelDir(run, round_)
    if model.encoder_weights() is not None:
        raise InputError(
            f"bald reads the head's posterior over frozen embeddings, and round {round_} fine-tuned its encoder "
            "(MC dropout through the encoder is not built): use margin, entropy, badge or cluster_margin"
        )
    heldout = run.heldout()
    item_ids, _, design, _ = training_rows(spec, run, set(heldout.ids) if heldout is not None else set())
    return laplace_posterior(load_head(model.head_path), pool_x[pool.positions(item_ids)], design)


def candidate_vectors(strategy: Strategy, pool_x: np.ndarray, candidates: np.ndarray) -> np.ndarray | Rows:
    """The candidates' vectors: a lazy view for strategies that only index them (no copy of a large pool)."""
    if getattr(strategy, "gathers_rows", False):
        return Rows(pool_x, candidates)
    return np.asarray(pool_x[candidates], dtype=np.float32)


def select_batch(args: SelectInput, ctx: ToolContext) -> SelectOutput:
    """Select the next batch to label (selection_round_XX.jsonl, each item with its reason).

    Never picks labeled, held-out, selected or near-duplicate items. An unembedded pool is embedded
    first (minutes on a CPU).
    """
    run = ctx.root.run(args.run)
    with run.lock():
        spec = run.spec()
        round_ = latest_model_round(run)
        if round_ in run.selection_rounds():
            answered = answered_items(run.labels())
            labeled_here = [r.item_id for r in run.selection(round_) if r.item_id in answered]
            if not args.redo:
                raise StateError(
                    f"round {round_} already has a selection; get it labeled and train round {round_ + 1}, "
                    "or pass redo=true to replace it"
                )
            if labeled_here:
                raise StateError(
                    f"round {round_}'s selection already has {len(labeled_here)} answers; it cannot be redone"
                )
        card = ModelDir(run, round_).card()
        name = args.strategy or spec.selection.strategy
        strategy = get_strategy(name)
        n = args.batch_size or spec.budget.batch_size
        seed = spec.selection.seed if args.seed is None else args.seed
        started = time.perf_counter()

        pool = run.pool()
        encoder = run_encoder(run)
        pool_x = embed_table(run, pool, spec.text_fields, encoder, ctx.progress)
        heldout = run.heldout()
        heldout_x = embed_table(run, heldout, spec.text_fields, encoder) if heldout is not None else None
        found = pool_candidates(run, round_, pool, pool_x, heldout_x)
        candidates = found.positions
        check_batch_fits(n, len(candidates))
        try:  # predictions are recorded for every strategy when the pool has been scored by this model
            scores = ModelDir(run, round_).predictions(model_version=card["model_version"])
            probs = scores.pool_probs
        except StateError:
            if "probs" in strategy.requires:
                raise
            probs, scores = None, None
        if scores is not None and scores.pool_scored is not None and "probs" in strategy.requires:
            candidates = candidates[scores.pool_scored[candidates]]  # rank only what this model scored
            check_batch_fits(n, len(candidates))
        problem = SelectionProblem(
            n=n,
            rng=np.random.default_rng([seed, round_]),
            duplicate_threshold=spec.selection.near_duplicate_threshold,
            embeddings=candidate_vectors(strategy, pool_x, candidates),
            probs=probs[candidates] if probs is not None else None,
            reference=found.duplicates_of,
            covered=found.covered,
            labels=list(spec.labels),
            options={
                "hybrid_factor": spec.selection.hybrid_factor,
                "task_type": spec.task_type,
                "class_targets": spec.selection.class_targets,
            },
        )
        if "posterior" in strategy.requires:
            problem.posterior = head_posterior(run, spec, round_, pool, pool_x)
            problem.options["design"] = item_design(pool, spec.model.predictors, candidates)
        check_requirements(strategy, problem)
        picked = strategy.select(problem)
        if len(picked) < n:
            raise StateError(
                f"only {len(picked)} of {n} items are left that are not near-duplicates of labeled, held-out or "
                "selected items; lower the batch size or the near_duplicate_threshold"
            )
        positions = candidates[[p.position for p in picked]]
        measures = uncertainty(probs[positions], spec.task_type) if probs is not None else {}
        texts = scores.pool_pred[positions] if scores is not None else None  # a label, a set, a number, an answer
        sure = confidence(spec, probs[positions]) if probs is not None else None
        rows = []
        picked_ids = pool.id_array.take(positions).to_pylist()
        for rank, (pick, item_id) in enumerate(zip(picked, picked_ids, strict=True), start=1):
            rows.append(
                SelectionRow(
                    round=round_,
                    rank=rank,
                    item_id=item_id,
                    strategy=strategy.name,
                    reason=pick.reason,
                    scores={m: round(float(v[rank - 1]), 6) for m, v in measures.items()},
                    prediction=str(texts[rank - 1]) if texts is not None else None,
                    confidence=round(float(sure[rank - 1]), 6) if sure is not None else None,
                    model_version=card["model_version"],
                    seed=seed,
                )
            )
        path = run.write_selection(round_, rows)
        seconds = time.perf_counter() - started
        run.update_result(
            round_, strategy=strategy.name, n_batch=len(rows), select_seconds=round(seconds, 3), n_pool=len(candidates)
        )
        skipped = problem.report.get("duplicates_skipped")
        run.append_note(
            f"round {round_}: selected {len(rows)} items by {strategy.name} "
            f"(seed {seed}, model {card['model_version']})"
            + (f"; {skipped} near-duplicate candidates skipped" if skipped else "")
        )
    return SelectOutput(
        run=args.run,
        round=round_,
        strategy=strategy.name,
        n_selected=len(rows),
        n_candidates=len(candidates),
        duplicates_skipped=skipped or 0,
        file=path.name,
        select_seconds=round(seconds, 3),
        items=[
            {"id": r.item_id, "prediction": r.prediction, "confidence": r.confidence, "reason": r.reason}
            for r in rows[:20]
        ],
    )


SPEC = ToolSpec(
    name="select_batch", fn=select_batch, input_model=SelectInput, output_model=SelectOutput, behaviour="writes"
)
