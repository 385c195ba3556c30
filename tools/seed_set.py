"""seed_set: build or confirm the initial labeled set (round 0)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import StateError
from alloop.tools.model.encoders import embed_table, run_encoder
from alloop.tools.run.items import ItemTable
from alloop.tools.run.labels import TrainingLabels, training_labels
from alloop.tools.run.schema import SelectionRow
from alloop.tools.selection import check_requirements
from alloop.tools.selection.base import SelectionProblem
from alloop.tools.selection.candidates import check_batch_fits, pool_candidates, vectors_of
from alloop.tools.selection.duplicates import not_near
from alloop.tools.selection.seeding import SEED_STRATEGIES

SeedStrategy = Literal[("existing", *SEED_STRATEGIES)]  # type: ignore[valid-type]
"""existing confirms imported labels; the rest are the seed family's strategies."""


class SeedInput(RunArgs):
    strategy: SeedStrategy | None = Field(
        None,
        description="existing, random, diverse, typical (densest item per cluster), stratified (typical items, "
        "equal shares of classes guessed from known labels or label names), keyword. Default: stratified "
        "when two classes are known, else typical.",
    )
    size: int | None = Field(None, ge=1, description="Seed items; default: the spec's batch size.")
    keywords: dict[str, list[str]] | None = Field(None, description="keyword strategy: label → keywords.")
    seed: int | None = None


class SeedOutput(BaseModel):
    run: str
    strategy: str
    n_selected: int
    file: str
    by_reason: dict[str, int]
    next_step: str


def default_strategy(schema: Sequence[str], known_labels: Sequence[str]) -> str:
    """Known labels of two or more classes of the schema give strata to balance the seed over; else dense regions."""
    return "stratified" if len(set(known_labels) & set(schema)) >= 2 else "typical"


def _texts_of(pool: ItemTable, fields: list[str], positions: np.ndarray) -> list[str]:
    texts = pool.texts(fields)
    return [texts[i] for i in positions]


def _confirm_existing(known: TrainingLabels, seed: int) -> list[SelectionRow]:
    if len(set(known.labels)) < 2:
        raise StateError(
            f"'existing' needs labels of at least two classes; the run has {len(known.item_ids)} labels "
            f"of {sorted(set(known.labels))}"
        )
    return [
        SelectionRow(
            round=0, rank=r, item_id=i, strategy="seed:existing", reason=f"existing label {label!r}", seed=seed
        )
        for r, (i, label) in enumerate(zip(known.item_ids, known.labels, strict=True), start=1)
    ]


def seed_set(args: SeedInput, ctx: ToolContext) -> SeedOutput:
    """Choose the seed items to label first (selection_round_00.jsonl), before any model exists.

    Except 'existing', the first call embeds the pool (minutes on a CPU).
    """
    run = ctx.root.run(args.run)
    with run.lock():
        spec = run.spec()
        if run.selection_rounds():
            raise StateError("this run already has a seed set (selection_round_00.jsonl); go on with train_glmm")
        seed = spec.selection.seed if args.seed is None else args.seed
        rng = np.random.default_rng([seed, 0])
        n = args.size or spec.budget.batch_size
        pool = run.pool()
        heldout = run.heldout()
        known = training_labels(spec, run.labels(), set(heldout.ids) if heldout else set())
        name = args.strategy or default_strategy(spec.labels, known.labels)

        if name == "existing":
            rows = _confirm_existing(known, seed)
        else:
            encoder = run_encoder(run)
            pool_x = embed_table(run, pool, spec.text_fields, encoder, ctx.progress)
            heldout_x = embed_table(run, heldout, spec.text_fields, encoder) if heldout is not None else None
            found = pool_candidates(run, 0, pool, pool_x, heldout_x)
            threshold = spec.selection.near_duplicate_threshold
            candidates = not_near(pool_x, found.positions, found.duplicates_of, threshold)
            check_batch_fits(n, len(candidates), "seed")
            strategy = SEED_STRATEGIES[name]()
            problem = SelectionProblem(
                n=n,
                rng=rng,
                duplicate_threshold=threshold,
                embeddings=vectors_of(strategy, pool_x, candidates),
                reference=found.duplicates_of,
                covered=found.covered,
                known_vectors=pool_x[pool.positions(known.item_ids)],
                known_labels=list(known.labels),
                texts=_texts_of(pool, spec.text_fields, candidates) if name == "keyword" else None,
                keywords=args.keywords,
                labels=list(spec.labels),
                label_vectors=encoder.encode(list(spec.labels)) if name == "stratified" else None,
                options={"seed": seed},
            )
            check_requirements(strategy, problem)
            picked = strategy.select(problem)
            if problem.report.get("keywords_without_match"):
                run.append_note(
                    f"seed keyword: no items matched the keywords for {problem.report['keywords_without_match']}"
                )
            picked_ids = pool.id_array.take(pa.array(candidates[[pick.position for pick in picked]])).to_pylist()
            rows = [
                SelectionRow(round=0, rank=r, item_id=item_id, strategy=f"seed:{name}", reason=pick.reason, seed=seed)
                for r, (pick, item_id) in enumerate(zip(picked, picked_ids, strict=True), start=1)
            ]
        path = run.write_selection(0, rows)
        run.append_note(f"round 0: seed set of {len(rows)} items by {name} (seed {seed})")
    by_reason: dict[str, int] = {}
    for row in rows:
        key = row.reason.split(":")[0] if name != "keyword" else row.reason
        by_reason[key] = by_reason.get(key, 0) + 1
    nxt = (
        "train_glmm"
        if name == "existing"
        else "get the seed batch labeled (export_batch/import_labels, push_to_argilla, or simulate_annotator)"
    )
    return SeedOutput(
        run=args.run, strategy=name, n_selected=len(rows), file=path.name, by_reason=by_reason, next_step=nxt
    )


SPEC = ToolSpec(name="seed_set", fn=seed_set, input_model=SeedInput, output_model=SeedOutput, behaviour="writes")
