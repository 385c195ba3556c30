"""A million-item pool end to end through the tools: embeddings imported, seed, train, score, select.

The pool is generated: five tight clusters on orthonormal directions (the classes), plus three
planted items the right selection must treat in a known way:
- CENTROID, the mean of the cluster directions, is equally far from every class: entropy ranks it first;
- OUTLIER points away from two clusters into an empty direction: k-center, farthest from all
  labeled items, picks it first;
- TWIN copies a held-out item that lies even farther out: it is never picked (a held-out twin).
Checks the batch invariants too: its size, no labeled, held-out or repeated items, no two picks
near-duplicates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alloop.tools.base import ToolContext
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.run.rundir import RunRoot
from alloop.tools.run.schema import LabelEvent
from alloop.tools.score_pool import ScoreInput, score_pool
from alloop.tools.seed_set import SeedInput, seed_set
from alloop.tools.select_batch import SelectInput, select_batch
from alloop.tools.selection import coreset
from alloop.tools.selection.candidates import Rows
from alloop.tools.train_glmm import TrainInput, train_glmm

POOL, HELDOUT, DIM = 1_000_000, 500, 16
LABELS = ["a", "b", "c", "d", "e"]
CENTROID, OUTLIER, TWIN = "p0", "p1", "p2"


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def generated(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of the pool then the held-out set, and each one's class (planted items: −1)."""
    classes = rng.integers(len(LABELS), size=POOL + HELDOUT)
    x = np.zeros((POOL + HELDOUT, DIM), dtype=np.float32)
    x[np.arange(len(x)), classes] = 1.0
    x[:, :8] += rng.normal(scale=0.1, size=(len(x), 8))  # the clusters span dimensions 0–7 only
    x = unit(x)
    centre = unit(np.eye(DIM, dtype=np.float32)[:5].sum(axis=0))
    away = np.eye(DIM, dtype=np.float32)
    x[0] = centre
    x[1] = unit(away[10] - 0.5 * away[0] - 0.5 * away[1])
    x[POOL] = unit(away[14] - 0.6 * centre)  # a held-out item far from everything ...
    x[2] = unit(x[POOL] + 1e-4 * away[15])  # ... and its twin in the pool
    classes[:3] = -1
    classes[POOL] = 0
    return x, classes


def build(tmp_path: Path) -> tuple[RunRoot, np.ndarray]:
    rng = np.random.default_rng(7)
    x, classes = generated(rng)
    ids = [f"p{i}" for i in range(POOL)] + [f"h{i}" for i in range(HELDOUT)]
    pq.write_table(pa.table({"id": ids[:POOL], "text": [""] * POOL}), tmp_path / "pool.parquet")
    held = [f'{{"id": "h{i}", "text": "", "label": "{LABELS[classes[POOL + i]]}"}}\n' for i in range(HELDOUT)]
    (tmp_path / "heldout.jsonl").write_text("".join(held))
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)
    pq.write_table(pa.table({"id": ids, "embedding": embedding}), tmp_path / "embeddings.parquet")
    root = RunRoot(tmp_path / "runs")
    interview_spec(
        InterviewInput(
            run="big",
            pool=str(tmp_path / "pool.parquet"),
            heldout=str(tmp_path / "heldout.jsonl"),
            task_type="categorical",
            labels=LABELS,
            batch_size=100,
            encoder="generated-16",
            embeddings=str(tmp_path / "embeddings.parquet"),
        ),
        ToolContext(root=root, inputs_anywhere=True),
    )
    return root, classes


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunRoot, set[str]]:
    root, classes = build(tmp_path_factory.mktemp("scale"))
    ctx = ToolContext(root=root)
    seed = seed_set(SeedInput(run="big", strategy="random", size=300, seed=1), ctx)
    assert seed.n_selected == 300
    run = root.run("big")
    seeded = [row.item_id for row in run.selection(0)]  # ids are "p<row>"
    assert not {CENTROID, OUTLIER, TWIN} & set(seeded)
    run.append_labels(
        [
            LabelEvent(item_id=i, label=LABELS[classes[int(i[1:])]], source="human", annotator="x", round=0)
            for i in seeded
        ]
    )
    train_glmm(TrainInput(run="big", round=1), ctx)
    out = score_pool(ScoreInput(run="big"), ctx)
    assert out.n_scored == POOL
    return root, set(seeded)


def check_batch(root: RunRoot, labeled: set[str], size: int) -> list[str]:
    run = root.run("big")
    rows = run.selection(1)
    picked = [row.item_id for row in rows]
    assert len(picked) == size == len(set(picked))
    assert not labeled & set(picked)
    assert all(i.startswith("p") for i in picked)  # never a held-out item
    assert TWIN not in picked
    return picked


@pytest.mark.slow
def test_entropy_over_a_million_items_ranks_the_planted_centroid_first(scored: tuple[RunRoot, set[str]]) -> None:
    root, labeled = scored
    out = select_batch(SelectInput(run="big", strategy="entropy", batch_size=100), ToolContext(root=root))
    assert out.n_candidates == POOL - len(labeled)
    picked = check_batch(root, labeled, 100)
    assert picked[0] == CENTROID


@pytest.mark.slow
def test_kcenter_picks_1000_of_a_million_starting_with_the_outlier(scored: tuple[RunRoot, set[str]]) -> None:
    root, labeled = scored
    ctx = ToolContext(root=root)
    select_batch(SelectInput(run="big", strategy="kcenter", batch_size=1000, redo=True), ctx)
    picked = check_batch(root, labeled, 1000)
    assert picked[0] == OUTLIER
    run = root.run("big")
    pool_ids = run.pool().positions(picked)
    from alloop.tools.model.encoders import embed_table, run_encoder

    vectors = np.asarray(embed_table(run, run.pool(), ["text"], run_encoder(run))[pool_ids])
    similarity = vectors @ vectors.T - 2 * np.eye(len(picked))
    assert similarity.max() < run.spec().selection.near_duplicate_threshold


def plain_k_center(x: np.ndarray, covered: np.ndarray, n: int, threshold: float, reference: np.ndarray) -> list[int]:
    """The textbook greedy: one full distance update per pick (what the lazy version must reproduce)."""
    nearest = 1.0 - (x @ covered.T).max(axis=1)
    nearest[(x @ reference.T).max(axis=1) >= threshold] = -1.0
    nearest[nearest <= 1 - threshold] = -1.0
    picked = []
    for _ in range(n):
        best = int(np.argmax(nearest))
        if nearest[best] < 0:
            break
        picked.append(best)
        nearest = np.minimum(nearest, 1.0 - x @ x[best])
        nearest[nearest <= 1 - threshold] = -1.0
    return picked


@pytest.mark.parametrize("active", [4, 64, 100_000])
def test_lazy_kcenter_picks_what_the_plain_greedy_picks(monkeypatch: pytest.MonkeyPatch, active: int) -> None:
    """With a tiny exact set the lazy greedy refolds many times; its picks must not change."""
    monkeypatch.setattr(coreset, "ACTIVE", active)
    rng = np.random.default_rng(3)
    centres = unit(rng.normal(size=(6, 24)))
    x = unit(centres[rng.integers(6, size=3000)] + rng.normal(scale=0.15, size=(3000, 24)))
    x[2900] = unit(-centres.sum(axis=0))  # a held-out item far from every cluster ...
    x[500] = unit(x[2900] + 1e-3 * unit(rng.normal(size=24)))  # ... and its twin among the candidates
    covered, heldout, candidates = x[:20], x[2900:], np.arange(20, 2900)
    reference = np.concatenate([covered, heldout])
    expected = plain_k_center(x[candidates], covered, 60, 0.98, reference)
    picked, distances = coreset.k_center_greedy(
        Rows(x, candidates), covered, 60, 0.98, np.random.default_rng(0), reference=reference
    )
    assert picked == expected
    assert 500 - 20 not in picked  # the held-out item's twin
    unmasked, _ = coreset.k_center_greedy(Rows(x, candidates), covered, 60, 0.98, np.random.default_rng(0))
    assert unmasked[0] == 500 - 20  # without the held-out set it would have come first
    assert distances == sorted(distances, reverse=True)  # greedy distances never grow
