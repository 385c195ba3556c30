"""A round at 100,000 and 1,000,000 items, per phase, against the bare arithmetic of one matrix pass.

The pool is generated (ids, short texts, unit vectors from a five-class mixture, MiniLM-like
dimension) and brought in as embeddings made elsewhere (`interview_spec(embeddings=...)`), so
nothing is embedded. Each phase (seed_set → train_glmm → score_pool → select_batch) runs through
the real tools in a fresh process, as the CLI runs it, so its peak RSS is its own; the process
first times one pass over the cached matrix (read from vectors.npy in chunks, times a 384 × 5
weight matrix): the bare arithmetic a round cannot do without. Wall time moves with the machine's
load; CPU time (process_time) and the ratio to the matrix pass, measured in the same process,
are the figures to compare.

    .venv/bin/python benchmarks/round_scale.py [--pool 100000 1000000] [--strategies entropy kcenter]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

LABELS = ["a", "b", "c", "d", "e"]
DIM = 384
CHUNK = 65_536
HELDOUT = 1_000


def mixture_chunk(start: int, stop: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows start..stop of the generated pool: unit vectors and their class (the same rows every time)."""
    centers = np.random.default_rng(seed).normal(size=(len(LABELS), DIM))
    rng = np.random.default_rng([seed, start])
    y = rng.integers(len(LABELS), size=stop - start)
    x = centers[y] * 0.35 + rng.normal(size=(len(y), DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


def write_inputs(folder: Path, pool: int, seed: int = 0) -> np.ndarray:
    """pool.jsonl, heldout.jsonl and embeddings.parquet, written in chunks; returns every row's class."""
    total = pool + HELDOUT
    classes = np.empty(total, dtype=np.int8)
    schema = pa.schema([("id", pa.string()), ("embedding", pa.list_(pa.float32(), DIM))])
    with (
        pq.ParquetWriter(folder / "embeddings.parquet", schema) as writer,
        (folder / "pool.jsonl").open("w") as pool_file,
        (folder / "heldout.jsonl").open("w") as heldout_file,
    ):
        for start in range(0, total, CHUNK):
            stop = min(start + CHUNK, total)
            x, y = mixture_chunk(start, stop, seed)
            classes[start:stop] = y
            ids = [f"p{i}" if i < pool else f"h{i - pool}" for i in range(start, stop)]
            values = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)
            writer.write_table(pa.table({"id": pa.array(ids), "embedding": values}, schema=schema))
            for i, item_id in zip(range(start, stop), ids, strict=True):
                if i < pool:
                    pool_file.write(f'{{"id": "{item_id}", "text": "item {i}"}}\n')
                else:
                    label = LABELS[y[i - start]]
                    heldout_file.write(f'{{"id": "{item_id}", "text": "held {i}", "label": "{label}"}}\n')
    return classes


def create_run(folder: Path) -> float:
    """The run, with the generated embeddings imported into its cache; returns the seconds it took."""
    from alloop.tools.base import ToolContext
    from alloop.tools.interview_spec import InterviewInput, interview_spec
    from alloop.tools.run.rundir import RunRoot

    started = time.perf_counter()
    interview_spec(
        InterviewInput(
            run="bench",
            pool=str(folder / "pool.jsonl"),
            heldout=str(folder / "heldout.jsonl"),
            task_type="categorical",
            labels=LABELS,
            batch_size=100,
            embeddings=str(folder / "embeddings.parquet"),
        ),
        ToolContext(root=RunRoot(folder / "runs"), inputs_anywhere=True),
    )
    return time.perf_counter() - started


def matrix_pass(folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one pass over the cached vectors: chunked reads, times a 384 × 5 matrix."""
    vectors_path = next((folder / "runs" / "bench").glob("cache/embeddings/*/vectors.npy"))
    weights = np.random.default_rng(0).normal(size=(DIM, len(LABELS))).astype(np.float32)
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = np.load(vectors_path, mmap_mode="r")
    out = np.empty((len(vectors), len(LABELS)), dtype=np.float32)
    for start in range(0, len(vectors), CHUNK):
        np.matmul(vectors[start : start + CHUNK], weights, out=out[start : start + CHUNK])
    del vectors
    return time.perf_counter() - wall, time.process_time() - cpu


def label_seed(folder: Path, classes: np.ndarray) -> None:
    """The seed batch's true labels, as if annotated (not timed: a person's part)."""
    from alloop.tools.run.rundir import RunRoot
    from alloop.tools.run.schema import LabelEvent

    run = RunRoot(folder / "runs").run("bench")
    rows = run.selection(0)
    events = [
        LabelEvent(item_id=r.item_id, label=LABELS[classes[int(r.item_id[1:])]], source="human", annotator="b", round=0)
        for r in rows
    ]
    run.append_labels(events)


def memory(field: str) -> int:
    """Bytes of a /proc/self/status field (VmRSS now, VmHWM the peak since the last reset); Linux only."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"no {field} in /proc/self/status: this benchmark reads Linux's memory figures")


def phase(folder: Path, name: str, argument: str) -> dict[str, float]:
    """Run one phase through its tool; times and peak RSS of this process (a fresh one per phase)."""
    import sklearn.linear_model  # imported once by a server, not per round (~0.18 s cold)
    import sklearn.model_selection  # noqa: F401

    import alloop.tools.glmm.head  # noqa: F401  (scikit-learn and SciPy: imported once by a server, not per round)
    from alloop.tools.base import ToolContext
    from alloop.tools.run.rundir import RunRoot
    from alloop.tools.score_pool import ScoreInput, score_pool
    from alloop.tools.seed_set import SeedInput, seed_set
    from alloop.tools.select_batch import SelectInput, select_batch
    from alloop.tools.train_glmm import TrainInput, train_glmm

    ctx = ToolContext(root=RunRoot(folder / "runs"))
    before = memory("VmRSS")  # the interpreter and its imports
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts from here
    wall, cpu = time.perf_counter(), time.process_time()
    if name == "seed":
        seed_set(SeedInput(run="bench", strategy=argument, size=300), ctx)
    elif name == "train":
        train_glmm(TrainInput(run="bench", round=1), ctx)
    elif name == "score":
        score_pool(ScoreInput(run="bench"), ctx)
    else:
        select_batch(SelectInput(run="bench", strategy=argument, batch_size=int(name.split(":")[1]), redo=True), ctx)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = memory("VmHWM")
    bare_wall, bare_cpu = matrix_pass(folder)  # after the phase, so its pages do not count in the phase's peak
    return {
        "wall": wall,
        "cpu": cpu,
        "bare_wall": bare_wall,
        "bare_cpu": bare_cpu,
        "peak_rss": peak,
        "rss_before": before,
    }


def in_child(folder: Path, name: str, argument: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, argument, str(folder)], capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(f"phase {name} {argument} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def one_pool(pool: int, strategies: list[str], seed_strategy: str, kcenter_batch: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        classes = write_inputs(folder, pool)
        generated = time.perf_counter() - started
        imported = create_run(folder)
        print(f"pool {pool:,}: generated in {generated:.1f} s, run created (embeddings imported) in {imported:.1f} s")
        plan = [("seed", seed_strategy), ("train", ""), ("score", "")]
        plan += [(f"select:{kcenter_batch if s == 'kcenter' else 100}", s) for s in strategies]
        for name, argument in plan:
            result = in_child(folder, name, argument)
            if name == "seed":
                label_seed(folder, classes)
            rows.append({"pool": pool, "phase": name.split(":")[0], "argument": argument, **result})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    matrix = {r["pool"]: r["pool"] * DIM * 4 for r in rows}
    lines = [
        "| pool | phase | wall s | CPU s | matrix pass CPU s | CPU / matrix pass | peak RSS GB | over imports/matrix |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        what = r["phase"] + (f" ({r['argument']})" if r["argument"] else "")
        lines.append(
            f"| {r['pool']:,} | {what} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['bare_cpu']:.3f} | "
            f"{r['cpu'] / r['bare_cpu']:.0f}× | {r['peak_rss'] / 1e9:.2f} | "
            f"{(r['peak_rss'] - r['rss_before']) / matrix[r['pool']]:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--strategies", nargs="+", default=["entropy", "kcenter"])
    parser.add_argument("--seed-strategy", default="random")
    parser.add_argument("--kcenter-batch", type=int, default=1000)
    parser.add_argument("--phase", nargs=3, metavar=("NAME", "ARGUMENT", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    if args.phase:
        name, argument, folder = args.phase
        print(json.dumps(phase(Path(folder), name, argument)))
        return
    rows = [r for pool in args.pool for r in one_pool(pool, args.strategies, args.seed_strategy, args.kcenter_batch)]
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
