"""seed_set: build or confirm the initial labeled set (round 0)."""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import InputError, StateError
from alloop.tools.model.encoders import embed_table, run_encoder
from alloop.tools.run.labels import training_labels
from alloop.tools.run.schema import SelectionRow, TaskSpec
from alloop.tools.select_batch import excluded_items, reference_vectors
from alloop.tools.selection.duplicates import max_similarity, take_distinct

SeedStrategy = Literal["existing", "random", "diverse", "stratified", "keyword"]
KMEANS_SAMPLE = 20000


class SeedInput(RunArgs):
    strategy: SeedStrategy = Field(
        "diverse",
        description="existing (confirm imported labels), random, diverse (embedding clusters), "
        "stratified (balanced over classes guessed from partly known labels), keyword.",
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


def _diverse(x: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """The item nearest each of n k-means centroids (k-means on a sample for large pools)."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    sample = rng.choice(len(x), size=min(len(x), KMEANS_SAMPLE), replace=False)
    km = KMeans(n_clusters=n, n_init=3, random_state=seed).fit(x[sample])
    sims = x @ km.cluster_centers_.T  # unit vectors: larger is nearer
    order = np.argsort(-sims, axis=0)
    chosen: list[int] = []
    for c in range(n):
        for candidate in order[:, c]:
            if candidate not in chosen:
                chosen.append(int(candidate))
                break
    sizes = np.bincount(km.labels_, minlength=n)
    return np.asarray(chosen), [
        f"diverse: nearest item to cluster {c} ({sizes[c]} of {len(sample)} sampled items)" for c in range(n)
    ]


def _balanced(groups: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> list[tuple[int, str]]:
    """Round-robin over groups so no class dominates the seed."""
    pools = {g: list(rng.permutation(members)) for g, members in groups.items() if len(members)}
    picked: list[tuple[int, str]] = []
    while len(picked) < n and any(pools.values()):
        for group, members in pools.items():
            if members and len(picked) < n:
                picked.append((int(members.pop()), group))
    return picked


def _distinct(order: list[tuple[int, str]], x: np.ndarray, n: int, threshold: float) -> list[tuple[int, str]]:
    """The first n picks of a balanced order that are not near-duplicates of each other."""
    group = dict(order)
    chosen, _ = take_distinct(np.asarray([p for p, _ in order], dtype=np.int64), x, None, n, threshold)
    return [(p, group[p]) for p in chosen]


def _keyword_groups(texts: list[str], keywords: dict[str, list[str]], spec: TaskSpec) -> dict[str, np.ndarray]:
    unknown = [label for label in keywords if label not in spec.labels]
    if unknown:
        raise InputError(f"keywords given for {unknown}, which are not in the label schema {spec.labels}")
    column = pa.array(texts, pa.string())
    groups = {}
    for label, words in keywords.items():
        if not words:
            continue
        pattern = r"(?i)\b(" + "|".join(re.escape(w) for w in words) + r")\b"
        groups[label] = np.flatnonzero(pc.match_substring_regex(column, pattern).to_numpy(zero_copy_only=False))
    return groups


def seed_set(args: SeedInput, ctx: ToolContext) -> SeedOutput:
    """Choose the seed items to label first (written as selection_round_00.jsonl).

    'existing' confirms labels imported with the pool; the others pick unlabeled items: random,
    diverse (one per embedding cluster), stratified (balanced over classes predicted from the
    partly known labels) or keyword (items matching each class's keywords, balanced).
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

        if args.strategy == "existing":
            if len(set(known.labels)) < 2:
                raise StateError(
                    f"'existing' needs labels of at least two classes; the run has {len(known.item_ids)} labels "
                    f"of {sorted(set(known.labels))}"
                )
            rows = [
                SelectionRow(
                    round=0, rank=r, item_id=i, strategy="seed:existing", reason=f"existing label {label!r}", seed=seed
                )
                for r, (i, label) in enumerate(zip(known.item_ids, known.labels, strict=True), start=1)
            ]
        else:
            excluded = excluded_items(run, 0)
            is_candidate = np.fromiter((i not in excluded for i in pool.ids), dtype=bool, count=len(pool))
            candidates = np.flatnonzero(is_candidate)
            if n > len(candidates):
                raise InputError(f"seed size {n} is larger than the {len(candidates)} unlabeled items")
            encoder = run_encoder(run)
            pool_x = embed_table(run, pool, spec.text_fields, encoder, ctx.progress)
            heldout_x = embed_table(run, heldout, spec.text_fields, encoder) if heldout is not None else None
            reference = reference_vectors(pool_x, ~is_candidate, heldout_x)
            threshold = spec.selection.near_duplicate_threshold
            distinct = max_similarity(pool_x[candidates], reference) < threshold
            candidates, is_candidate = candidates[distinct], np.zeros(len(pool), dtype=bool)
            is_candidate[candidates] = True
            x = pool_x[candidates]
            if args.strategy == "random":
                order = rng.permutation(len(candidates))
                chosen, _ = take_distinct(order, x, reference, n, threshold)
                picks = [(c, "random draw") for c in chosen]
            elif args.strategy == "diverse":
                positions, reasons = _diverse(x, n, seed)
                picks = list(zip(positions.tolist(), reasons, strict=True))
            elif args.strategy == "stratified":
                if len(set(known.labels)) < 2:
                    raise StateError(
                        "'stratified' needs some known labels of at least two classes; use 'diverse' or 'keyword'"
                    )
                labeled_x = pool_x[pool.positions(known.item_ids)]
                centroids = np.stack(
                    [labeled_x[np.asarray(known.labels) == c].mean(0) for c in spec.labels if c in known.labels]
                )
                classes = [c for c in spec.labels if c in known.labels]
                guess = np.asarray(classes)[(x @ centroids.T).argmax(axis=1)]
                groups = {c: np.flatnonzero(guess == c) for c in classes}
                picks = _distinct(_balanced(groups, len(candidates), rng), x, n, threshold)
                picks = [(p, f"stratified: provisional class {g!r} (nearest labeled centroid)") for p, g in picks]
            else:
                if not args.keywords:
                    raise InputError("the keyword strategy needs keywords: {label: [words, ...]}")
                texts = [t for t, keep in zip(pool.texts(spec.text_fields), is_candidate, strict=True) if keep]
                groups = _keyword_groups(texts, args.keywords, spec)
                empty = [g for g, members in groups.items() if not len(members)]
                picks = _distinct(_balanced(groups, len(candidates), rng), x, n, threshold)
                picks = [(p, f"keyword match for {g!r}") for p, g in picks]
                if len(picks) < n:
                    taken = {p for p, _ in picks}
                    rest = [int(i) for i in rng.permutation(len(candidates)) if int(i) not in taken][: n - len(picks)]
                    picks += [(p, "random fill (keywords matched too few items)") for p in rest]
                if empty:
                    run.append_note(f"seed keyword: no items matched the keywords for {empty}")
            rows = [
                SelectionRow(
                    round=0,
                    rank=r,
                    item_id=pool.ids[candidates[p]],
                    strategy=f"seed:{args.strategy}",
                    reason=reason,
                    seed=seed,
                )
                for r, (p, reason) in enumerate(picks, start=1)
            ]
        path = run.write_selection(0, rows)
        run.append_note(f"round 0: seed set of {len(rows)} items by {args.strategy} (seed {seed})")
    by_reason: dict[str, int] = {}
    for row in rows:
        key = row.reason.split(":")[0] if args.strategy != "keyword" else row.reason
        by_reason[key] = by_reason.get(key, 0) + 1
    nxt = (
        "train_glmm"
        if args.strategy == "existing"
        else "get the seed batch labeled (export_batch/import_labels, push_to_argilla, or simulate_annotator)"
    )
    return SeedOutput(
        run=args.run, strategy=args.strategy, n_selected=len(rows), file=path.name, by_reason=by_reason, next_step=nxt
    )


SPEC = ToolSpec(name="seed_set", fn=seed_set, input_model=SeedInput, output_model=SeedOutput, behaviour="writes")
