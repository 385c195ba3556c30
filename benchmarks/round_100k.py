"""One active-learning round on a 100,000-item pool with cached embeddings: alloop vs small-text.

alloop runs its real tools over a run directory (train_glmm, score_pool, select_batch: file I/O,
locking and the selection log included). small-text runs the same round in memory on the same
embeddings, with the same classifier (scikit-learn logistic regression, C=10): its
SklearnClassifier, PredictionEntropy and GreedyCoreset. Times are medians of --repeat runs;
the figure that matters is the ratio, measured in the same process.

    .venv/bin/python benchmarks/round_100k.py [--pool 100000] [--batch 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from alloop.tools.base import ToolContext
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.model.encoders import EmbeddingCache, get_encoder
from alloop.tools.run.rundir import RunRoot
from alloop.tools.run.schema import LabelEvent
from alloop.tools.score_pool import ScoreInput, score_pool
from alloop.tools.select_batch import SelectInput, select_batch
from alloop.tools.train_glmm import TrainInput, train_glmm

LABELS = ["a", "b", "c", "d", "e"]


def synthetic(pool: int, heldout: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors from a five-class mixture (MiniLM-like dimension and spread)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(len(LABELS), dim))
    y = rng.integers(len(LABELS), size=pool + heldout)
    x = centers[y] * 0.35 + rng.normal(size=(len(y), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


def build_run(root: RunRoot, x: np.ndarray, y: np.ndarray, pool: int, labeled: int) -> str:
    folder = root.path.parent
    pool_file, heldout_file = folder / "pool.jsonl", folder / "heldout.jsonl"
    pool_file.write_text("".join(f'{{"id": "p{i}", "text": "item {i}"}}\n' for i in range(pool)))
    heldout_file.write_text(
        "".join(
            f'{{"id": "h{i}", "text": "held {i}", "label": "{LABELS[y[pool + i]]}"}}\n' for i in range(len(y) - pool)
        )
    )
    ctx = ToolContext(root=root, inputs_anywhere=True)
    interview_spec(
        InterviewInput(
            run="bench",
            pool=str(pool_file),
            heldout=str(heldout_file),
            task_type="categorical",
            labels=LABELS,
            batch_size=100,
        ),
        ctx,
    )
    run = root.run("bench")
    encoder = get_encoder("all-MiniLM-L6-v2", 256)
    ids = [f"p{i}" for i in range(pool)] + [f"h{i}" for i in range(len(y) - pool)]
    EmbeddingCache(run, encoder.key).save(ids, x)  # "cached embeddings": no encoding in the round
    run.append_labels(
        [
            LabelEvent(item_id=f"p{i}", label=LABELS[y[i]], source="import", annotator="bench", round=0)
            for i in range(labeled)
        ]
    )
    return "bench"


def alloop_round(root: RunRoot, strategy: str, batch: int) -> float:
    ctx = ToolContext(root=root)
    started = time.perf_counter()
    train_glmm(TrainInput(run="bench", round=1), ctx)
    score_pool(ScoreInput(run="bench"), ctx)
    select_batch(SelectInput(run="bench", strategy=strategy, batch_size=batch, redo=True), ctx)
    return time.perf_counter() - started


def small_text_round(x: np.ndarray, y: np.ndarray, labeled: int, pool: int, strategy: str, batch: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from small_text import SklearnClassifier, SklearnDataset
    from small_text.query_strategies import GreedyCoreset, PredictionEntropy

    started = time.perf_counter()
    dataset = SklearnDataset(x[:pool], y[:pool])
    indices_labeled = np.arange(labeled)
    indices_unlabeled = np.arange(labeled, pool)
    clf = SklearnClassifier(LogisticRegression(C=10, max_iter=2000), len(LABELS))
    clf.fit(dataset[indices_labeled])
    if strategy == "entropy":
        PredictionEntropy().query(clf, dataset, indices_unlabeled, indices_labeled, y[indices_labeled], n=batch)
    else:
        GreedyCoreset(distance_metric="cosine").query(
            clf, dataset, indices_unlabeled, indices_labeled, y[indices_labeled], n=batch, embeddings=x[:pool]
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--heldout", type=int, default=1_000)
    parser.add_argument("--labeled", type=int, default=300)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    x, y = synthetic(args.pool, args.heldout, 384, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        root = RunRoot(Path(tmp) / "runs")
        build_run(root, x, y, args.pool, args.labeled)
        alloop_round(root, "entropy", args.batch)  # warm-up: imports and the page cache, for both sides
        print(f"pool {args.pool:,} × 384, {args.labeled} labeled, batch {args.batch}; median of {args.repeat}")
        print("| round (train + score + select) | alloop, run directory | small-text, in memory | ratio |")
        print("|---|---|---|---|")
        for strategy in ("entropy", "kcenter"):
            ours = statistics.median(alloop_round(root, strategy, args.batch) for _ in range(args.repeat))
            repeat = args.repeat if strategy == "entropy" else 1  # small-text's coreset takes minutes
            theirs = statistics.median(
                small_text_round(x, y, args.labeled, args.pool, strategy, args.batch) for _ in range(repeat)
            )
            print(f"| {strategy} | {ours:.2f} s | {theirs:.2f} s | {theirs / ours:.1f}× |")


if __name__ == "__main__":
    main()
