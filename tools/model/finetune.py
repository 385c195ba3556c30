"""Fine-tuning the encoder on the labels: full, LoRA or contrastive (SetFit's recipe), inputs → a folder.

`train_encoder` is pure: it reads texts, labels and a spec, writes the trained weights into `out`
and returns what happened. It touches no run directory and leaves the global RNG state and grad
mode as it found them, so the same call runs in the server, a test or a GPU runner.

full and lora train the encoder under a throwaway linear head on the pooled embedding (the
GLMM head is fit later on the embeddings, as for a frozen encoder); contrastive trains it on
same/different-label pairs with sentence-transformers' CosineSimilarityLoss. Pooling is the one
HFEncoder embeds with (attention-masked mean, unit norm), so training shapes the space that is used.

`out` is written atomically: everything goes into a sibling temp folder renamed onto `out` at the
end, so a run killed midway leaves `out` without a model (and at worst a `.<name>.*.partial` folder).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alloop.tools.base import ProgressFn, no_progress
from alloop.tools.errors import InputError
from alloop.tools.run.schema import EncoderTrainingSpec

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

ADAPTER_FILE = "alloop_adapter.json"
"""Written next to the peft files of a LoRA folder: names the base the adapter applies to."""
WEIGHT_SUFFIXES = (".safetensors", ".bin")
LOGIT_SCALE = 20.0
"""Inverse temperature of the head: unit-norm embeddings give logits in [-1, 1], too flat to learn from."""
CLIP_NORM = 1.0
WEIGHT_DECAY = 0.01
TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class EncoderTrainingResult:
    """What one training call did, for the model card."""

    kind: str
    train_size: int
    validation_size: int
    epochs_run: int
    best_epoch: int | None
    validation_macro_f1: float | None
    train_loss: float
    """Mean training loss over the kept epoch (the best on validation, else the last)."""
    seconds: float
    note: str
    """Why there was no validation split, early stopping, what a warm start did ('' when nothing to say)."""
    validation_ids_positions: list[int]
    """Positions into the given texts held out for validation (never trained on)."""
    history: list[dict[str, float | None]] = field(default_factory=list)
    """Per epoch: train_loss, validation_macro_f1, validation_loss."""
    warm_start: bool = False
    """Whether it continued from `init` (then it ran at most `fine_tune_epochs`, else at most `epochs`)."""
    epochs_planned: int = 0
    sample_epochs: int = 0
    """train_size × epochs_run: the training work done, the same on any hardware."""


def _unit_hash(seed: int, key: str) -> float:
    """A stable draw in [0, 1) for an item: the same on every machine and in every round."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def validation_split(
    labels: Sequence[int], fraction: float, seed: int = 0, keys: Sequence[str] | None = None
) -> tuple[list[int], list[int], str]:
    """Stratified (train, validation) positions: `fraction` of each class, at least one, never all.

    With `keys` (item ids) an item's side is fixed by a hash of (seed, id) below `fraction`, so it
    stays on the same side as the labels grow round after round: an item an earlier round's
    encoder trained on never turns up in a later round's validation (which warm-starts from it).

    When some labeled class has fewer than 2 items or `fraction` is 0 there is no split: all
    positions train, and the returned note says why (a recorded fallback, not an error).
    """
    positions = np.arange(len(labels))
    label_array = np.asarray(labels, dtype=np.int64)
    classes, counts = np.unique(label_array, return_counts=True)
    if fraction <= 0:
        return positions.tolist(), [], "no validation (validation_fraction is 0): trained every epoch on all labels"
    thin = [int(c) for c, n in zip(classes, counts, strict=True) if n < 2]
    if thin:
        return (
            positions.tolist(),
            [],
            f"no validation: class(es) {thin} have fewer than 2 labels, so none can be held out; "
            "trained every epoch on all labels",
        )
    held: list[int] = []
    if keys is not None:
        draw = np.asarray([_unit_hash(seed, key) for key in keys])
        for label in classes:
            members = positions[label_array == label]
            members = members[np.argsort(draw[members], kind="stable")]
            below = int((draw[members] < fraction).sum())
            held += members[: min(len(members) - 1, max(1, below))].tolist()
        held_set = set(held)
        return [int(p) for p in positions if p not in held_set], sorted(int(p) for p in held), ""
    rng = np.random.default_rng(seed)
    for label, count in zip(classes, counts, strict=True):
        members = rng.permutation(positions[label_array == label])
        take = min(count - 1, max(1, round(fraction * count)))
        held += members[:take].tolist()
    held_set = set(held)
    return [int(p) for p in positions if p not in held_set], sorted(int(p) for p in held), ""


def train_encoder(
    texts: Sequence[str],
    labels: Sequence[int],
    n_classes: int,
    spec: EncoderTrainingSpec,
    base: str,
    out: Path,
    init: Path | None = None,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    device: str | None = None,
    keys: Sequence[str] | None = None,
) -> EncoderTrainingResult:
    """Train the encoder as `spec.kind` says and write it to `out` (an empty or missing folder).

    `base` is a local model folder or an installed/cached Hugging Face name (never downloaded);
    `init` is a folder an earlier call wrote, to continue from (fine_tune): a warm start runs at
    most `spec.fine_tune_epochs` (the ΔF1 method's point: a fine-tuned round costs less than a
    retrained one), a fresh start at most `spec.epochs`. Validation items are carved from the
    given labels only (by item id when `keys` are given, stable across rounds); early stopping
    keeps the best epoch's weights.
    """
    import torch

    started = time.perf_counter()
    labels = [int(label) for label in labels]
    _check_inputs(texts, labels, n_classes, spec)
    out = Path(out)
    _check_out(out)
    if init is not None and not Path(init).is_dir():
        raise InputError(f"init {str(init)!r} is not a folder written by an earlier encoder training")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    train_pos, val_pos, split_note = validation_split(labels, spec.validation_fraction, seed, keys)
    notes = [split_note] if split_note else []
    texts = [text or " " for text in texts]

    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        with torch.random.fork_rng(devices=cuda_devices), torch.enable_grad():
            torch.manual_seed(seed)
            trainer = _Trainer(texts, labels, train_pos, val_pos, spec, base, Path(init) if init else None, seed)
            notes += trainer.prepare()
            history, best_epoch, stop_note = trainer.fit(device, progress)
            if stop_note:
                notes.append(stop_note)
            trainer.save(staging)
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    chosen = history[best_epoch - 1] if best_epoch else history[-1]
    return EncoderTrainingResult(
        kind=spec.kind,
        train_size=len(train_pos),
        validation_size=len(val_pos),
        epochs_run=len(history),
        best_epoch=best_epoch,
        validation_macro_f1=chosen["validation_macro_f1"],
        train_loss=float(chosen["train_loss"] or 0.0),
        seconds=round(time.perf_counter() - started, 3),
        note="; ".join(notes),
        validation_ids_positions=val_pos,
        history=history,
        warm_start=trainer.warm,
        epochs_planned=trainer.epochs,
        sample_epochs=len(train_pos) * len(history),
    )


def load_encoder(folder: Path | None, base: str) -> tuple[Any, Any]:
    """A transformers encoder (eval mode) and its tokenizer: the base, a trained folder, or base + LoRA merged."""
    if folder is None:
        return _load_pretrained(base)
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"encoder folder {str(folder)!r} does not exist")
    if _is_adapter(folder):
        recorded = (
            json.loads((folder / ADAPTER_FILE).read_text()).get("base") if (folder / ADAPTER_FILE).is_file() else None
        )
        if recorded and recorded != base:
            log.warning("LoRA adapter %s was trained on %s; applying it to %s", folder, recorded, base)
        model, tokenizer = _load_pretrained(base)
        return _with_adapter(model, folder, trainable=False).merge_and_unload().eval(), tokenizer
    return _load_pretrained(str(folder))


def encoder_digest(folder: Path) -> str:
    """A short hash of a trained folder's weights (and LoRA settings), stable across saves: a cache key part.

    The base model is not in it: combine it with the base encoder's own key.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"encoder folder {str(folder)!r} does not exist")
    digest = hashlib.sha256()
    weights = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not weights:
        raise InputError(f"{str(folder)!r} holds no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    for path in weights:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    config = folder / "adapter_config.json"
    if config.is_file():
        settings = json.loads(config.read_text())
        kept = {k: settings.get(k) for k in ("r", "lora_alpha", "target_modules", "use_rslora", "peft_type")}
        if isinstance(kept["target_modules"], list):
            kept["target_modules"] = sorted(kept["target_modules"])
        digest.update(json.dumps(kept, sort_keys=True).encode())
    return digest.hexdigest()[:16]


# --- the training itself --------------------------------------------------------------------------


class _Trainer:
    """One training call's state: the model, the tokenized items, the epoch loop."""

    def __init__(
        self,
        texts: list[str],
        labels: list[int],
        train_pos: list[int],
        val_pos: list[int],
        spec: EncoderTrainingSpec,
        base: str,
        init: Path | None,
        seed: int,
    ) -> None:
        self.texts, self.spec, self.base, self.init, self.seed = texts, spec, base, init, seed
        self.train_pos, self.val_pos = train_pos, val_pos
        self.classes = sorted({labels[p] for p in train_pos})
        index = {label: i for i, label in enumerate(self.classes)}
        self.targets = np.array([index.get(label, -1) for label in labels], dtype=np.int64)
        self.rng = np.random.default_rng(seed)
        self.encoder: Any = None
        self.tokenizer: Any = None
        self.head: Any = None
        self.tokens: Any = None
        self.lengths = np.zeros(0, dtype=np.int64)
        self.device = "cpu"
        self.warm = False
        """Set by prepare: whether training continues from init (then it runs fine_tune_epochs)."""
        self.epochs = spec.epochs

    # model

    def prepare(self) -> list[str]:
        """Load the base (and init), attach LoRA if asked; the notes say what the warm start did."""
        encoder, self.tokenizer = _load_pretrained(self.base)
        notes: list[str] = []
        init_is_adapter = self.init is not None and _is_adapter(self.init)
        if self.spec.kind == "lora":
            _check_lora_targets(encoder, self.spec.lora_target_modules)
            if init_is_adapter and self.init is not None:
                mismatch = _adapter_mismatch(self.init, self.spec)
                if mismatch:
                    notes.append(f"init adapter not used ({mismatch}): trained a fresh adapter")
                    encoder = _new_adapter(encoder, self.spec)
                else:
                    encoder = _with_adapter(encoder, self.init, trainable=True)
                    self.warm = True
                    notes.append("warm start: continued the LoRA adapter in init")
            else:
                if self.init is not None:
                    notes.append("init holds a full model, not a LoRA adapter: trained a fresh adapter on the base")
                encoder = _new_adapter(encoder, self.spec)
        elif self.init is not None:
            if init_is_adapter:
                encoder = _with_adapter(encoder, self.init, trainable=False).merge_and_unload()
                notes.append("warm start: merged the LoRA adapter in init into the base, then trained every weight")
            else:
                encoder, _ = _load_pretrained(str(self.init))
                notes.append("warm start: continued from the weights in init")
            self.warm = True
        if self.warm:
            self.epochs = self.spec.fine_tune_epochs
            notes.append(f"at most {self.epochs} epoch(s) (fine_tune_epochs; a fresh start runs {self.spec.epochs})")
        self.encoder = encoder
        self.tokens = self.tokenizer(self.texts, truncation=True, max_length=self.spec.max_length)
        self.lengths = np.array([len(ids) for ids in self.tokens["input_ids"]])
        return notes

    def fit(self, device: str, progress: ProgressFn) -> tuple[list[dict[str, float | None]], int | None, str]:
        """The epoch loop with early stopping on validation macro-F1 (ties: lower validation loss)."""
        import torch

        self.device = device
        self.encoder.to(device)
        contrastive = self.spec.kind == "contrastive"
        if contrastive:
            batches_per_epoch, run_epoch = self._contrastive_epochs()
        else:
            batches_per_epoch, run_epoch = self._classifier_epochs()
        params = [p for p in self._trainable() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.spec.learning_rate, weight_decay=WEIGHT_DECAY)
        total = self.epochs * batches_per_epoch
        history: list[dict[str, float | None]] = []
        best: tuple[float, float] | None = None
        best_epoch: int | None = None
        best_state: dict[str, torch.Tensor] = {}
        stale = 0
        stop_note = ""
        for epoch in range(1, self.epochs + 1):
            step0 = (epoch - 1) * batches_per_epoch

            def tick(done: int, epoch: int = epoch, step0: int = step0) -> None:
                progress(step0 + done, total, f"encoder {self.spec.kind}: epoch {epoch}/{self.epochs}")

            train_loss = run_epoch(optimizer, params, tick)
            row: dict[str, float | None] = {
                "epoch": epoch,
                "train_loss": train_loss,
                "validation_macro_f1": None,
                "validation_loss": None,
            }
            history.append(row)
            if not self.val_pos:
                continue
            f1, val_loss = self._validate(contrastive)
            row["validation_macro_f1"], row["validation_loss"] = f1, val_loss
            if best is None or (f1, -val_loss) > best:
                best, best_epoch, stale = (f1, -val_loss), epoch, 0
                best_state = {name: p.detach().to("cpu", copy=True) for name, p in self._named_state()}
            else:
                stale += 1
                if stale > self.spec.patience and epoch < self.epochs:  # at the last epoch it is no early stop
                    stop_note = (
                        f"stopped early after epoch {epoch}: no better validation macro-F1 for {stale} epoch(s) "
                        f"(patience {self.spec.patience}); kept epoch {best_epoch}"
                    )
                    break
        if best_state and best_epoch != len(history):
            with torch.no_grad():
                for name, p in self._named_state():
                    p.copy_(best_state[name].to(p.device))
            if not stop_note:
                stop_note = f"kept epoch {best_epoch}, the best on validation macro-F1"
        progress(total, total, f"encoder {self.spec.kind}: trained {len(history)} epoch(s)")
        self.encoder.eval()
        return history, best_epoch, stop_note

    def save(self, folder: Path) -> None:
        """full/contrastive: a transformers model folder with the tokenizer; lora: the peft adapter + ADAPTER_FILE."""
        self.encoder.to("cpu")
        if self.spec.kind == "lora":
            self.encoder.save_pretrained(str(folder))
            (folder / "README.md").unlink(missing_ok=True)  # peft's model card: not ours to ship
            (folder / ADAPTER_FILE).write_text(json.dumps({"kind": "lora", "base": self.base}, indent=1))
        else:
            self.encoder.save_pretrained(str(folder))
            self.tokenizer.save_pretrained(str(folder))

    # parts

    def _trainable(self) -> list[Any]:
        return list(self.encoder.parameters()) + (list(self.head.parameters()) if self.head is not None else [])

    def _named_state(self) -> list[tuple[str, Any]]:
        """The encoder parameters training changes: all of them (full, contrastive) or the adapters (lora)."""
        return [(name, p) for name, p in self.encoder.named_parameters() if p.requires_grad]

    def _batch(self, positions: Sequence[int]) -> dict[str, Any]:
        rows = [{k: self.tokens[k][i] for k in TOKEN_KEYS if k in self.tokens} for i in positions]
        padded = self.tokenizer.pad(rows, return_tensors="pt")
        return {k: v.to(self.device) for k, v in padded.items()}

    def _embed(self, positions: Sequence[int]) -> Any:
        """Unit-norm pooled embeddings (eval mode, no grad), in the given order."""
        import torch

        was_training = self.encoder.training
        self.encoder.eval()
        chunks = []
        with torch.no_grad():
            for start in range(0, len(positions), 64):
                batch = self._batch(positions[start : start + 64])
                chunks.append(_pool(self.encoder(**batch).last_hidden_state, batch["attention_mask"]))
        self.encoder.train(was_training)
        return torch.cat(chunks)

    def _centroids(self, embeddings: Any, targets: Any) -> Any:
        import torch

        rows = [embeddings[targets == c].mean(0) for c in range(len(self.classes))]
        return torch.nn.functional.normalize(torch.stack(rows), dim=1)

    def _classifier_epochs(self) -> tuple[int, Callable[..., float]]:
        """full / lora: a linear head (initialised at the class centroids) under cross-entropy."""
        import torch

        train_targets = torch.as_tensor(self.targets[self.train_pos], device=self.device)
        centroids = self._centroids(self._embed(self.train_pos), train_targets)
        self.head = torch.nn.Linear(centroids.shape[1], len(self.classes)).to(self.device)
        with torch.no_grad():
            self.head.weight.copy_(LOGIT_SCALE * centroids)
            self.head.bias.zero_()
        n_batches = -(-len(self.train_pos) // self.spec.batch_size)

        def run_epoch(optimizer: Any, params: list[Any], tick: Callable[[int], None]) -> float:
            self.encoder.train()
            losses = []
            for done, batch_index in enumerate(self._length_batches(self.lengths[self.train_pos]), start=1):
                positions = [self.train_pos[i] for i in batch_index]
                batch = self._batch(positions)
                pooled = _pool(self.encoder(**batch).last_hidden_state, batch["attention_mask"])
                target = torch.as_tensor(self.targets[positions], device=self.device)
                loss = torch.nn.functional.cross_entropy(self.head(pooled), target)
                losses.append(self._step(loss, optimizer, params))
                tick(done)
            return float(np.mean(losses))

        return n_batches, run_epoch

    def _contrastive_epochs(self) -> tuple[int, Callable[..., float]]:
        """contrastive: SetFit's pairs (same label → 1, different → 0) under CosineSimilarityLoss."""
        import torch

        try:
            from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
        except ImportError:  # sentence-transformers < 6
            from sentence_transformers.losses import CosineSimilarityLoss

        pairs = self._pairs()
        loss_fn = CosineSimilarityLoss(_mean_pooled(self.encoder))
        pair_lengths = self.lengths[pairs[:, 0]] + self.lengths[pairs[:, 1]]
        n_batches = -(-len(pairs) // self.spec.batch_size)

        def run_epoch(optimizer: Any, params: list[Any], tick: Callable[[int], None]) -> float:
            self.encoder.train()
            losses = []
            for done, batch_index in enumerate(self._length_batches(pair_lengths), start=1):
                chosen = pairs[batch_index]
                features = [self._batch(chosen[:, 0].tolist()), self._batch(chosen[:, 1].tolist())]
                similar = torch.as_tensor(chosen[:, 2], dtype=torch.float32, device=self.device)
                losses.append(self._step(loss_fn(features, similar), optimizer, params))
                tick(done)
            return float(np.mean(losses))

        return n_batches, run_epoch

    def _pairs(self) -> np.ndarray:
        """`contrastive_pairs` (anchor, partner, same) rows per training item, alternating positive and negative."""
        train = np.asarray(self.train_pos)
        train_targets = self.targets[train]
        rows = []
        for anchor, target in zip(train, train_targets, strict=True):
            same = train[(train_targets == target) & (train != anchor)]
            other = train[train_targets != target]
            for k in range(self.spec.contrastive_pairs):
                positive = k % 2 == 0 and len(same) > 0
                partner = self.rng.choice(same if positive else other)
                rows.append((anchor, partner, int(positive)))
        return np.asarray(rows, dtype=np.int64)

    def _length_batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Batches of indices into `lengths`: shuffled, sorted by length within windows of 50
        batches so a batch pads little, then the batches themselves shuffled."""
        size = self.spec.batch_size
        order = self.rng.permutation(len(lengths))
        window = size * 50
        batches: list[np.ndarray] = []
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
        return [batches[i] for i in self.rng.permutation(len(batches))]

    def _step(self, loss: Any, optimizer: Any, params: list[Any]) -> float:
        import torch

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP_NORM)
        optimizer.step()
        return float(loss.detach())

    def _validate(self, contrastive: bool) -> tuple[float, float]:
        """Macro-F1 and cross-entropy on the validation items: the head's logits (full, lora) or
        scaled cosines to the training centroids (contrastive)."""
        import torch
        from sklearn.metrics import f1_score

        val_targets = torch.as_tensor(self.targets[self.val_pos], device=self.device)
        embedded = self._embed(self.val_pos)
        with torch.no_grad():
            if contrastive:
                train_targets = torch.as_tensor(self.targets[self.train_pos], device=self.device)
                centroids = self._centroids(self._embed(self.train_pos), train_targets)
                logits = LOGIT_SCALE * embedded @ centroids.T
            else:
                logits = self.head(embedded)
            loss = float(torch.nn.functional.cross_entropy(logits, val_targets))
        predicted = logits.argmax(1).cpu().numpy()
        f1 = f1_score(
            val_targets.cpu().numpy(),
            predicted,
            labels=list(range(len(self.classes))),
            average="macro",
            zero_division=0,
        )
        return float(f1), loss


def _mean_pooled(encoder: Any) -> Any:
    """The encoder as sentence-transformers' losses call a model: features → sentence_embedding."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, features: dict[str, Any]) -> dict[str, Any]:
            inputs = {k: features[k] for k in TOKEN_KEYS if k in features}
            hidden = self.encoder(**inputs).last_hidden_state
            return {**features, "sentence_embedding": _pool(hidden, inputs["attention_mask"])}

    return MeanPooled()


# --- loading, LoRA, files ---------------------------------------------------------------------------


def _pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Attention-masked mean, then unit norm: what HFEncoder.encode embeds with."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1)


def _load_pretrained(location: str) -> tuple[Any, Any]:
    """Model (eval mode) and tokenizer from a local folder or the local Hugging Face cache: never the network."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True)
        model = AutoModel.from_pretrained(location, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(
            f"encoder {location!r} could not be loaded offline ({exc.__class__.__name__}: {exc}); give a local "
            "model folder or an installed model (all-MiniLM-L6-v2 is bundled)"
        ) from exc
    return model.eval(), tokenizer


def _is_adapter(folder: Path) -> bool:
    return (Path(folder) / "adapter_config.json").is_file()


def _with_adapter(model: Any, folder: Path, trainable: bool) -> Any:
    from peft import PeftModel

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers name deprecated in v5
            return PeftModel.from_pretrained(model, str(folder), is_trainable=trainable)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError(
            f"LoRA adapter {str(folder)!r} does not fit the base ({exc.__class__.__name__}: {exc})"
        ) from exc


def _lora_config(spec: EncoderTrainingSpec) -> Any:
    from peft import LoraConfig

    targets: list[str] | str = spec.lora_target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    return LoraConfig(
        r=spec.lora_rank,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=targets,
        bias="none",
    )


def _new_adapter(model: Any, spec: EncoderTrainingSpec) -> Any:
    from peft import get_peft_model

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers name deprecated in v5
            return get_peft_model(model, _lora_config(spec))
    except ValueError as exc:
        raise InputError(f"LoRA could not attach to {spec.lora_target_modules}: {exc}") from exc


def _check_lora_targets(model: Any, targets: Sequence[str]) -> None:
    """Every target must name a module of the model; the error lists the names it has."""
    import torch

    if list(targets) == ["all-linear"]:
        return
    linear = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if not targets or missing:
        raise InputError(
            f"lora_target_modules {missing or list(targets)} not found in the encoder; its Linear layers are "
            f"named {linear} (or use ['all-linear'])"
        )


def _adapter_mismatch(folder: Path, spec: EncoderTrainingSpec) -> str:
    """How the adapter in `folder` differs from the spec's LoRA settings ('' when it fits)."""
    saved = json.loads((folder / "adapter_config.json").read_text())
    targets = saved.get("target_modules")
    saved_targets = sorted(targets) if isinstance(targets, list) else [targets]
    wanted = {"r": spec.lora_rank, "lora_alpha": spec.lora_alpha, "target_modules": sorted(spec.lora_target_modules)}
    have = {"r": saved.get("r"), "lora_alpha": saved.get("lora_alpha"), "target_modules": saved_targets}
    diff = [f"{k} {have[k]} ≠ spec {wanted[k]}" for k in wanted if have[k] != wanted[k]]
    return ", ".join(diff)


def _check_inputs(texts: Sequence[str], labels: list[int], n_classes: int, spec: EncoderTrainingSpec) -> None:
    if spec.kind == "frozen":
        raise InputError("encoder_training.kind 'frozen' trains nothing: embed with load_encoder(None, base)")
    if len(texts) != len(labels):
        raise InputError(f"{len(texts)} texts but {len(labels)} labels")
    if n_classes < 2:
        raise InputError(f"n_classes must be at least 2, got {n_classes}")
    bad = sorted({label for label in labels if not 0 <= label < n_classes})
    if bad:
        raise InputError(f"labels must lie in 0..{n_classes - 1}; got {bad}")
    if len(set(labels)) < 2:
        raise InputError("training the encoder needs labels of at least two classes")


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"out {str(out)!r} must be an empty or missing folder")
    if not out.parent.is_dir():
        raise InputError(f"the folder {str(out.parent)!r} (out's parent) does not exist")


def _publish(staging: Path, out: Path) -> None:
    """Rename the finished folder onto `out` (an empty folder is replaced in one step on POSIX)."""
    try:
        os.replace(staging, out)
    except OSError:
        out.rmdir()
        os.replace(staging, out)
