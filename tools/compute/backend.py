"""spec.compute as a backend: the pool's embedding, the encoder's training and the pool's scoring, sharded.

`backend_for(spec)` is None for the local backend (the tools run their usual in-process code)
and a `Backend` otherwise. Each step cuts the work into shards, runs them on the executor, retries
failures (executors.run_shards) and returns the merged result only when every shard is back, so
the caller writes the run's files exactly as a local run writes them, or writes nothing.
$ALLOOP_BACKEND (local or modal) overrides spec.compute.backend for one process; `alloop
--backend modal <command>` sets it.

Scoring shards hold whole blocks of ROW_BLOCK rows. Embedding shards are cut from the encoder's
own order (longest text first, HFEncoder.encode) at multiples of its batch size and handed over
shortest first, which that order turns back into the same sequence: every batch a shard encodes
is a batch the local run encodes, so on the same hardware the merged matrix equals the local one
bit for bit.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import numpy as np

from alloop.tools.base import ProgressFn, no_progress
from alloop.tools.compute.executors import Executor, run_shards
from alloop.tools.compute.packing import Packed, extract, ship
from alloop.tools.errors import InputError
from alloop.tools.run.schema import ComputeBackend, ComputeSpec

if TYPE_CHECKING:  # pragma: no cover
    from alloop.tools.model.encoders import HFEncoder
    from alloop.tools.model.finetune import EncoderTrainingResult
    from alloop.tools.model.heads import Design
    from alloop.tools.run.schema import EncoderTrainingSpec, TaskSpec

BACKEND_ENV = "ALLOOP_BACKEND"
ROW_BLOCK = 64
"""Scoring shards are whole multiples of this many rows: BLAS treats a matrix's last, partial block
of rows with other kernels, so a shard that ended mid-block could differ from the local pass in the
last bits. (score_pool's local chunk of 65,536 rows is a multiple too.)"""


def _modal_executor(settings: ComputeSpec) -> Executor:
    from alloop.tools.compute.modal_app import ModalExecutor

    return ModalExecutor(settings)


EXECUTORS: dict[str, Callable[[ComputeSpec], Executor]] = {"modal": _modal_executor}
"""The executor of each backend other than local, built from the spec's settings."""


def settings_for(spec: TaskSpec) -> ComputeSpec:
    """spec.compute, with $ALLOOP_BACKEND's backend when it is set."""
    override = os.environ.get(BACKEND_ENV, "").strip()
    if not override:
        return spec.compute
    if override not in get_args(ComputeBackend):
        raise InputError(f"${BACKEND_ENV} is {override!r}; use one of {', '.join(get_args(ComputeBackend))}")
    return spec.compute.model_copy(update={"backend": override})


def backend_for(spec: TaskSpec) -> Backend | None:
    """The backend the spec names, or None for local (the in-process code paths)."""
    settings = settings_for(spec)
    if settings.backend == "local":
        return None
    return Backend(EXECUTORS[settings.backend](settings), settings)


@dataclass
class Backend:
    """The sharded steps on one executor, with spec.compute's shard size and retries."""

    executor: Executor
    settings: ComputeSpec

    def embed(self, encoder: HFEncoder, texts: Sequence[str], progress: ProgressFn = no_progress) -> np.ndarray:
        """What `encoder.encode(texts)` returns, computed shard by shard on the executor."""
        if not texts:
            return encoder.encode([])
        order = np.argsort([len(t) for t in texts], kind="stable")[::-1]  # HFEncoder.encode's order
        step = math.ceil(self.settings.shard_size / encoder.batch_size) * encoder.batch_size
        packs = self.executor.packs_models
        model, weights = ship(encoder.name, packs), ship(encoder.weights, packs)
        rows = [order[start : start + step][::-1] for start in range(0, len(order), step)]
        shards = [(model, encoder.max_length, weights, [texts[i] for i in index]) for index in rows]
        parts = run_shards(
            self.executor,
            "embed",
            shards,
            retries=self.settings.retries,
            what="embedding",
            sizes=[len(index) for index in rows],
            progress=progress,
        )
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        for index, part in zip(rows, parts, strict=True):
            out[index] = part
        return out

    def score(
        self, head: bytes, x: np.ndarray, design: Design | None, progress: ProgressFn = no_progress
    ) -> np.ndarray:
        """The head's score rows for `x` (a head file's bytes: heads travel as files, never pickles)."""
        step = math.ceil(self.settings.shard_size / ROW_BLOCK) * ROW_BLOCK
        bounds = [(start, min(start + step, len(x))) for start in range(0, len(x), step)]
        shards = [(head, x[a:b], None if design is None else design.subset(np.arange(a, b))) for a, b in bounds]
        parts = run_shards(
            self.executor,
            "score",
            shards,
            retries=self.settings.retries,
            what="scoring",
            sizes=[b - a for a, b in bounds],
            progress=progress,
        )
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)

    def train(
        self,
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
        """finetune.train_encoder's call, run as one task on the executor; `out` is written once it is back."""
        from alloop.tools.model.encoders import DEFAULT_ENCODER, resolve_encoder

        out = Path(out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InputError(f"out {str(out)!r} must be an empty or missing folder")
        packs = self.executor.packs_models
        bundled = packs and base == resolve_encoder(DEFAULT_ENCODER)  # installed in the image: send its name
        request = (
            list(texts),
            [int(label) for label in labels],
            n_classes,
            spec,
            DEFAULT_ENCODER if bundled else ship(base, packs),
            ship(init, packs),
            seed,
            None if keys is None else list(keys),
        )
        [(weights, result)] = run_shards(
            self.executor,
            "train",
            [request],
            retries=self.settings.retries,
            what="training the encoder",
            sizes=[len(texts)],
            progress=progress,
        )
        publish(weights, out)
        return result


def publish(weights: Packed, out: Path) -> None:
    """Unpack the trained folder beside `out` and rename it onto `out`: a crash leaves no half folder."""
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        extract(weights, staging)
        try:
            os.replace(staging, out)
        except OSError:
            out.rmdir()  # an empty folder that a rename cannot replace
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
