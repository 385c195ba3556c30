"""The seed's near-duplicate screen: every candidate against the held-out set, in a fraction of the arithmetic.

`not_near` must keep exactly the candidates a full comparison keeps (`max_similarity` of every
candidate with every reference row), so a seed picks the same items as it did before the screen
was bounded: same candidates, same positions, same random draws.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alloop.tools.base import ToolContext
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.model.encoders import embed_table, run_encoder
from alloop.tools.run.rundir import RunRoot
from alloop.tools.seed_set import SeedInput, seed_set
from alloop.tools.selection.base import SelectionProblem
from alloop.tools.selection.duplicates import SCREEN_SLACK, NearDuplicateScreen, max_similarity, not_near
from alloop.tools.selection.seeding import RandomSeed, TypicalSeed

THRESHOLD = 0.98
DIM = 384


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def at_similarity(target: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector whose cosine similarity to the unit vector `target` is `cosine`."""
    away = rng.normal(size=target.shape)
    away = unit(away - (away @ target) * target)
    return unit(cosine * target + np.sqrt(1 - cosine**2) * away)


def embedding_like(rng: np.random.Generator, n: int, dims: int = DIM) -> np.ndarray:
    """Unit vectors with a shared direction, as sentence embeddings have (pairwise cosine ~0.25)."""
    shared = unit(rng.normal(size=dims))
    return unit(0.7 * shared + 1.2 * rng.normal(size=(n, dims)) / np.sqrt(dims))


def planted_pool(rng: np.random.Generator, reference: np.ndarray, n: int) -> tuple[np.ndarray, dict[str, list[int]]]:
    """A pool with twins of reference rows, and rows just above and just below the threshold to one."""
    pool = embedding_like(rng, n, reference.shape[1])
    planted: dict[str, list[int]] = {"twin": [], "just above": [], "just below": []}
    cosines = {"twin": 0.995, "just above": THRESHOLD + SCREEN_SLACK / 4, "just below": THRESHOLD - SCREEN_SLACK / 4}
    for k, (kind, cosine) in enumerate(cosines.items()):
        for row in range(k, n, 10):  # 30% of the pool is planted
            pool[row] = at_similarity(reference[rng.integers(len(reference))], cosine, rng)
            planted[kind].append(row)
    return pool, planted


def full_comparison(matrix: np.ndarray, positions: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """What the seed did before: every candidate against every reference row."""
    return positions[max_similarity(matrix[positions], reference) < THRESHOLD]


@pytest.mark.parametrize(("n_reference", "dims"), [(300, DIM), (20, DIM), (300, 16)])
def test_the_screen_keeps_exactly_what_a_full_comparison_keeps(n_reference: int, dims: int) -> None:
    rng = np.random.default_rng(n_reference + dims)
    reference = embedding_like(rng, n_reference, dims)
    pool, planted = planted_pool(rng, reference, 3000)
    positions = np.arange(1, 3000, dtype=np.int64)  # every candidate but row 0, in pool order

    kept = not_near(pool, positions, reference, THRESHOLD)

    np.testing.assert_array_equal(kept, full_comparison(pool, positions, reference))
    assert not set(planted["twin"] + planted["just above"]) & set(kept.tolist())
    assert set(planted["just below"]) - {0} <= set(kept.tolist())


def test_a_large_reference_is_screened_by_the_bound() -> None:
    """With 300 reference rows in 384 dimensions the bound is used, and it clears the unplanted rows."""
    rng = np.random.default_rng(1)
    reference = embedding_like(rng, 300, DIM)
    screen = NearDuplicateScreen(reference, THRESHOLD)
    assert screen.directions is not None
    pool = embedding_like(rng, 2000, DIM)
    assert screen.clear_by_bound(pool).mean() > 0.99


def test_rows_in_a_few_dimensions_are_screened_exactly() -> None:
    """Vectors that lie in the reference's leading directions: what the bound leaves out is ~0, rounding included."""
    rng = np.random.default_rng(2)
    reference = np.zeros((200, DIM), dtype=np.float32)
    reference[:, :20] = unit(rng.normal(size=(200, 20)))
    pool = np.zeros((2000, DIM), dtype=np.float32)
    pool[:, :20], _ = planted_pool(rng, reference[:, :20], 2000)
    positions = np.arange(2000, dtype=np.int64)
    np.testing.assert_array_equal(
        not_near(pool, positions, reference, THRESHOLD), full_comparison(pool, positions, reference)
    )


@pytest.mark.parametrize("in_a_few_dimensions", [False, True])
def test_similarities_on_the_threshold_round_as_the_full_comparison_rounds_them(in_a_few_dimensions: bool) -> None:
    """Every 8th row a few float32 roundings from the threshold. BLAS rounds a row's products differently
    in a product of another size (the few rows the bound leaves unsure), so a dozen of these would land on
    the other side; the screen must answer as the full comparison's own product does."""
    rng = np.random.default_rng(5)
    dims = 20 if in_a_few_dimensions else DIM
    reference = np.zeros((200, DIM), dtype=np.float32)
    reference[:, :dims] = embedding_like(rng, 200, dims)
    pool = np.zeros((8192, DIM), dtype=np.float32)
    pool[:, :dims] = embedding_like(rng, len(pool), dims)
    for row in range(0, len(pool), 8):
        target = reference[rng.integers(len(reference)), :dims]
        pool[row, :dims] = at_similarity(target, THRESHOLD + rng.uniform(-3e-7, 3e-7), rng)
    positions = np.arange(len(pool), dtype=np.int64)
    np.testing.assert_array_equal(
        not_near(pool, positions, reference, THRESHOLD), full_comparison(pool, positions, reference)
    )


def test_without_a_reference_every_position_is_kept() -> None:
    pool = embedding_like(np.random.default_rng(3), 50)
    positions = np.array([7, 3, 40], dtype=np.int64)
    np.testing.assert_array_equal(not_near(pool, positions, None, THRESHOLD), positions)
    np.testing.assert_array_equal(not_near(pool, positions, pool[:0], THRESHOLD), positions)


POOL, HELDOUT = 4000, 200


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> RunRoot:
    """A run whose pool holds twins of held-out items and items just either side of the threshold."""
    folder: Path = tmp_path_factory.mktemp("screen")
    rng = np.random.default_rng(4)
    heldout = embedding_like(rng, HELDOUT)
    pool, _ = planted_pool(rng, heldout, POOL)
    ids = [f"p{i}" for i in range(POOL)] + [f"h{i}" for i in range(HELDOUT)]
    pq.write_table(pa.table({"id": ids[:POOL], "text": [f"item {i}" for i in range(POOL)]}), folder / "pool.parquet")
    held = [f'{{"id": "h{i}", "text": "held {i}", "label": "{"ab"[i % 2]}"}}\n' for i in range(HELDOUT)]
    (folder / "heldout.jsonl").write_text("".join(held))
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate([pool, heldout]).reshape(-1)), DIM)
    pq.write_table(pa.table({"id": ids, "embedding": vectors}), folder / "embeddings.parquet")
    root = RunRoot(folder / "runs")
    interview_spec(
        InterviewInput(
            run="planted",
            pool=str(folder / "pool.parquet"),
            heldout=str(folder / "heldout.jsonl"),
            task_type="categorical",
            labels=["a", "b"],
            batch_size=40,
            encoder="generated-384",
            embeddings=str(folder / "embeddings.parquet"),
        ),
        ToolContext(root=root, inputs_anywhere=True),
    )
    return root


@pytest.mark.parametrize("strategy", [RandomSeed, TypicalSeed])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_seed_picks_what_it_picked_after_a_full_comparison(planted_run: RunRoot, strategy: type, seed: int) -> None:
    run = planted_run.run("planted")
    for done in run.path.glob("selection_round_00.jsonl"):
        done.unlink()  # a fresh seed each time
    spec = run.spec()
    pool_x = embed_table(run, run.pool(), spec.text_fields, run_encoder(run))
    heldout_x = np.asarray(embed_table(run, run.heldout(), spec.text_fields, run_encoder(run)))
    candidates = full_comparison(pool_x, np.arange(POOL), heldout_x)
    before = strategy().select(
        SelectionProblem(
            n=40,
            rng=np.random.default_rng([seed, 0]),
            duplicate_threshold=THRESHOLD,
            embeddings=np.asarray(pool_x[candidates]),
            reference=heldout_x,
            options={"seed": seed},
        )
    )

    seed_set(SeedInput(run="planted", strategy=strategy.name, size=40, seed=seed), ToolContext(root=planted_run))

    assert [row.item_id for row in run.selection(0)] == [f"p{candidates[p.position]}" for p in before]
