"""Where a run stands in its rounds, and each round's model folder.

Round 0 is the seed set. Round r ≥ 1 trains on every label so far, scores the pool and selects
the batch whose answers come back as round r. A round's files: models/round_XX/ (head.npz,
card.json, predictions.npz) and selection_round_XX.jsonl. `ModelDir` is the one reader and
writer of a model folder; predictions carry the model version that made them, so nothing reads
scores of a different model than the one it names. The head file holds JSON and arrays only
(model/head_files.py); an older alloop's head.pkl is refused, never unpickled.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from alloop.tools.errors import InputError, StateError
from alloop.tools.run import files
from alloop.tools.run.reader import read_json
from alloop.tools.run.rundir import RunDir, atomic_write_bytes, atomic_write_json

_LABEL_ARRAYS = ("heldout_ids", "heldout_pred", "pool_ids", "pool_pred")


@dataclass
class Predictions:
    """A round's scored pool and held-out set.

    `*_pred` are label strings. `*_probs` (probabilities over `labels`, in order) are present for
    label heads; `model_version` names the model that made them.
    """

    pool_ids: np.ndarray
    pool_pred: np.ndarray
    heldout_ids: np.ndarray
    heldout_pred: np.ndarray
    labels: list[str]
    model_version: str | None = None
    pool_probs: np.ndarray | None = None
    heldout_probs: np.ndarray | None = None
    pool_scored: np.ndarray | None = None
    """Which pool rows this model scored (None: all); the rest carry a shortlist's stand-in scores."""

    @classmethod
    def from_probabilities(
        cls,
        pool_ids: np.ndarray,
        pool_probs: np.ndarray,
        heldout_ids: np.ndarray,
        heldout_probs: np.ndarray,
        labels: list[str],
        model_version: str,
    ) -> Predictions:
        return cls(
            pool_ids=np.asarray(pool_ids, dtype=str),
            pool_pred=_labels_of(pool_probs, labels),
            heldout_ids=np.asarray(heldout_ids, dtype=str),
            heldout_pred=_labels_of(heldout_probs, labels),
            labels=list(labels),
            model_version=model_version,
            pool_probs=pool_probs,
            heldout_probs=heldout_probs,
        )


def _labels_of(probs: np.ndarray, labels: list[str]) -> np.ndarray:
    """The most probable label of each row."""
    if not len(probs):
        return np.array([], dtype=str)
    return np.asarray(labels, dtype=str)[probs.argmax(axis=1)]


class ModelDir:
    """models/round_XX/: the round's head, its card and the pool scored with it."""

    def __init__(self, run: RunDir, round_: int) -> None:
        self.run = run
        self.round = round_
        self.path = run.model_dir(round_)

    @property
    def card_path(self) -> Path:
        return self.path / "card.json"

    @property
    def head_path(self) -> Path:
        """The head: JSON and arrays in one .npz, read without unpickling (an old head.pkl beside it is refused)."""
        return self.path / "head.npz"

    @property
    def predictions_path(self) -> Path:
        return self.path / "predictions.npz"

    @property
    def encoder_dir(self) -> Path:
        """The encoder weights this round trained (absent when the encoder stayed frozen)."""
        return self.path / "encoder"

    def encoder_weights(self) -> Path | None:
        return self.encoder_dir if self.encoder_dir.is_dir() else None

    def encoder_staging(self) -> Path:
        """A fresh folder for a training run; `publish_encoder` moves it in place when training succeeded.

        A killed training leaves it behind; the next open of the run removes it.
        """
        return files.make_folder(self.run.models_dir, f".round_{self.round:02d}_encoder.")

    def publish_encoder(self, staging: Path) -> None:
        files.place_folder(staging, self.encoder_dir)

    def drop_encoder(self) -> None:
        """A retrained round with a frozen encoder must not keep an earlier run's weights."""
        files.remove(self.encoder_dir)

    @property
    def lm_dir(self) -> Path:
        """free_text/cloze: the LoRA adapters this round trained (staged with `encoder_staging`)."""
        return self.path / "lm"

    def publish_lm(self, staging: Path) -> None:
        files.place_folder(staging, self.lm_dir)

    def has_card(self) -> bool:
        return self.card_path.is_file()

    def has_predictions(self) -> bool:
        return self.predictions_path.is_file()

    def card(self) -> dict[str, Any]:
        if not self.has_card():
            raise StateError(f"run {self.run.name!r} has no model for round {self.round}; run train_glmm first")
        card = read_json(self.card_path)
        if not isinstance(card, dict):
            raise InputError(f"{self.card_path}: expected a JSON object (a model card)")
        return card

    def write_card(self, card: dict[str, Any]) -> None:
        atomic_write_json(self.card_path, card)

    def drop_predictions(self) -> None:
        """Forget the scores of an earlier model of this round (a retrained round is scored anew)."""
        files.remove(self.predictions_path)

    def save_predictions(self, preds: Predictions) -> None:
        arrays: dict[str, np.ndarray] = {
            "pool_ids": preds.pool_ids.astype(str),
            "pool_pred": preds.pool_pred.astype(str),
            "heldout_ids": preds.heldout_ids.astype(str),
            "heldout_pred": preds.heldout_pred.astype(str),
            "labels": np.asarray(preds.labels, dtype=str),
            "model_version": np.asarray(preds.model_version or "", dtype=str),
        }
        if preds.pool_scored is not None:
            arrays["pool_scored"] = preds.pool_scored.astype(bool)
        if preds.pool_probs is not None and preds.heldout_probs is not None:
            arrays["pool_probs"] = preds.pool_probs.astype(np.float32)
            arrays["heldout_probs"] = preds.heldout_probs.astype(np.float32)
        handle = io.BytesIO()
        np.savez(handle, **arrays)
        atomic_write_bytes(self.predictions_path, handle.getvalue())

    def predictions(self, model_version: str | None = None) -> Predictions:
        """The round's scores, checked for shape; with `model_version`, refused unless that model made them."""
        path = self.predictions_path
        if not path.is_file():
            if self.has_card():
                raise StateError(
                    f"run {self.run.name!r} has no predictions for round {self.round} ({path}): its model is "
                    f"trained but not scored; run score_pool with round={self.round} first"
                )
            raise StateError(
                f"run {self.run.name!r} has no predictions for round {self.round} ({path}); train (train_glmm) "
                "and score (score_pool) that round first"
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable .npz file ({exc}); rewrite it with numpy.savez") from exc
        missing = set(_LABEL_ARRAYS) - set(arrays)
        if missing:
            raise InputError(f"{path}: missing arrays {sorted(missing)}")
        for ids, pred in (("heldout_ids", "heldout_pred"), ("pool_ids", "pool_pred")):
            if arrays[ids].shape != arrays[pred].shape or arrays[ids].ndim != 1:
                raise InputError(f"{path}: {ids} and {pred} must be 1-D and of one length")
        made_by = str(arrays["model_version"]) if "model_version" in arrays else None
        if model_version is not None and made_by != model_version:
            raise StateError(
                f"run {self.run.name!r}: round {self.round}'s predictions were made by model {made_by or 'unknown'}, "
                f"not by its current model {model_version}; run score_pool with round={self.round} first"
            )
        probs = {key: arrays[key] for key in ("pool_probs", "heldout_probs") if key in arrays}
        return Predictions(
            pool_ids=arrays["pool_ids"].astype(str),
            pool_pred=arrays["pool_pred"].astype(str),
            heldout_ids=arrays["heldout_ids"].astype(str),
            heldout_pred=arrays["heldout_pred"].astype(str),
            labels=arrays["labels"].tolist() if "labels" in arrays else [],
            model_version=made_by,
            pool_probs=probs.get("pool_probs"),
            heldout_probs=probs.get("heldout_probs"),
            pool_scored=arrays.get("pool_scored"),
        )


def model_rounds(run: RunDir, having: Literal["card", "predictions"] = "card") -> list[int]:
    """Rounds with a trained model (`card`) or with scores (`predictions`), ascending."""
    name = "card.json" if having == "card" else "predictions.npz"
    return sorted(int(p.parent.name.split("_")[1]) for p in run.models_dir.glob(f"round_[0-9][0-9]/{name}"))


def latest_model_round(run: RunDir) -> int:
    rounds = model_rounds(run)
    if not rounds:
        raise StateError(f"run {run.name!r} has no trained model yet; run train_glmm first")
    return rounds[-1]


def next_training_round(run: RunDir) -> int:
    """The round a new training belongs to: one past the last selection (at least 1)."""
    selections = run.selection_rounds()
    return (selections[-1] + 1) if selections else 1


def latest_round(run: RunDir) -> int:
    """The newest round anything was written for: a selection, a model or a results row (0 at first)."""
    return max([0, *run.selection_rounds(), *model_rounds(run), *(r.round for r in run.results())])


def latest_result_round(run: RunDir) -> int:
    """The newest round with a results.tsv row: the round a check reads by default."""
    rounds = [r.round for r in run.results()]
    if not rounds:
        raise StateError(f"run {run.name!r} has no rounds in results.tsv yet; train a round first")
    return max(rounds)


def resolve_round(requested: int | None, latest: int) -> int:
    """The round a caller asked for, else the latest one: the one idiom for a default round."""
    return latest if requested is None else requested


def data_hash(item_ids: list[str], labels: list[str]) -> str:
    digest = hashlib.sha256()
    for item_id, label in zip(item_ids, labels, strict=True):
        digest.update(f"{item_id}\t{label}\n".encode())
    return digest.hexdigest()[:12]
