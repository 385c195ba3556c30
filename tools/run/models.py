"""Where a run stands in its rounds, and the per-round model files.

Round 0 is the seed set. Round r ≥ 1 trains on every label so far, scores the pool and selects
the batch whose answers come back as round r. A round's files: models/round_XX/ (head.pkl,
card.json, predictions.npz) and selection_round_XX.jsonl.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alloop.tools.errors import StateError
from alloop.tools.run.rundir import RunDir, atomic_write_bytes, atomic_write_json


def model_rounds(run: RunDir) -> list[int]:
    return sorted(int(p.parent.name.split("_")[1]) for p in (run.path / "models").glob("round_[0-9][0-9]/card.json"))


def latest_model_round(run: RunDir) -> int:
    rounds = model_rounds(run)
    if not rounds:
        raise StateError(f"run {run.name!r} has no trained model yet; run train_glmm first")
    return rounds[-1]


def next_training_round(run: RunDir) -> int:
    """The round a new training belongs to: one past the last selection (at least 1)."""
    selections = run.selection_rounds()
    return (selections[-1] + 1) if selections else 1


def data_hash(item_ids: list[str], labels: list[str]) -> str:
    digest = hashlib.sha256()
    for item_id, label in zip(item_ids, labels, strict=True):
        digest.update(f"{item_id}\t{label}\n".encode())
    return digest.hexdigest()[:12]


def read_card(run: RunDir, round_: int) -> dict[str, Any]:
    path = run.model_dir(round_) / "card.json"
    if not path.is_file():
        raise StateError(f"run {run.name!r} has no model for round {round_}; run train_glmm first")
    return json.loads(path.read_text(encoding="utf-8"))


def write_card(run: RunDir, round_: int, card: dict[str, Any]) -> None:
    atomic_write_json(run.model_dir(round_) / "card.json", card)


@dataclass
class Predictions:
    """A round's scored pool and held-out set (probabilities over spec.labels, in order)."""

    pool_ids: np.ndarray
    pool_probs: np.ndarray
    heldout_ids: np.ndarray
    heldout_probs: np.ndarray
    labels: list[str]

    @property
    def pool_pred(self) -> np.ndarray:
        return (
            np.asarray(self.labels, dtype=object)[self.pool_probs.argmax(axis=1)]
            if len(self.pool_probs)
            else np.array([], dtype=object)
        )

    @property
    def heldout_pred(self) -> np.ndarray:
        return (
            np.asarray(self.labels, dtype=object)[self.heldout_probs.argmax(axis=1)]
            if len(self.heldout_probs)
            else np.array([], dtype=object)
        )


def predictions_path(run: RunDir, round_: int) -> Path:
    return run.model_dir(round_) / "predictions.npz"


def save_predictions(run: RunDir, round_: int, preds: Predictions) -> None:
    import io

    handle = io.BytesIO()
    np.savez(
        handle,
        pool_ids=preds.pool_ids.astype(str),
        pool_probs=preds.pool_probs.astype(np.float32),
        pool_pred=preds.pool_pred.astype(str),
        heldout_ids=preds.heldout_ids.astype(str),
        heldout_probs=preds.heldout_probs.astype(np.float32),
        heldout_pred=preds.heldout_pred.astype(str),
        labels=np.asarray(preds.labels, dtype=str),
    )
    atomic_write_bytes(predictions_path(run, round_), handle.getvalue())


def load_predictions(run: RunDir, round_: int) -> Predictions:
    path = predictions_path(run, round_)
    if not path.is_file():
        raise StateError(f"run {run.name!r} has no scores for round {round_}; run score_pool first")
    with np.load(path) as data:
        return Predictions(
            pool_ids=data["pool_ids"],
            pool_probs=data["pool_probs"],
            heldout_ids=data["heldout_ids"],
            heldout_probs=data["heldout_probs"],
            labels=data["labels"].tolist(),
        )
