"""The work of one shard, as plain functions of their inputs: no run directory, no settings.

These are the functions every executor runs: the local one calls them in threads, Modal runs the
very same functions in its containers (modal_app.py wraps them unchanged). What they take and
return is all a worker sees, so models arrive as names or packed folders (packing.py) and results
go back as arrays; the caller alone writes into the run, once every shard is back.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alloop.tools.compute.packing import ModelRef, Packed, local, pack

if TYPE_CHECKING:  # pragma: no cover
    from alloop.tools.model.finetune import EncoderTrainingResult
    from alloop.tools.model.heads import Design
    from alloop.tools.run.schema import EncoderTrainingSpec


def embed_shard(encoder: ModelRef, max_length: int, weights: ModelRef | None, texts: Sequence[str]) -> np.ndarray:
    """Unit-norm embeddings (n × d, float32) of `texts`, by the encoder (and trained weights) named.

    On a machine with a GPU the encoder runs there; the vectors come back as float32 on the CPU.
    """
    import torch

    from alloop.tools.model.encoders import get_encoder

    folder = local(weights)
    model = get_encoder(local(encoder) or "", max_length, Path(folder) if folder else None)
    if torch.cuda.is_available():
        model.to("cuda")
    return model.encode(list(texts))


def score_shard(head: bytes, x: np.ndarray, design: Design | None) -> np.ndarray:
    """A fitted head's score rows for these feature rows: probabilities (or a magnitude head's values)."""
    from alloop.tools.model.head_files import head_from_bytes
    from alloop.tools.model.task_types import scores

    return scores(head_from_bytes(head, "the round's head file"), x, design)


def train_step(
    texts: Sequence[str],
    labels: Sequence[int],
    n_classes: int,
    spec: EncoderTrainingSpec,
    base: ModelRef,
    init: ModelRef | None,
    seed: int,
    keys: Sequence[str] | None,
) -> tuple[Packed, EncoderTrainingResult]:
    """The encoder trained as finetune.train_encoder trains it, returned as a packed folder and its record."""
    from alloop.tools.model.finetune import train_encoder

    with tempfile.TemporaryDirectory(prefix="alloop-train-") as scratch:
        out = Path(scratch) / "encoder"
        start = local(init)
        result = train_encoder(
            list(texts),
            list(labels),
            n_classes,
            spec,
            base=local(base) or "",
            out=out,
            init=Path(start) if start else None,
            seed=seed,
            keys=None if keys is None else list(keys),
        )
        return pack(out), result


TASKS: dict[str, Callable[..., Any]] = {"embed": embed_shard, "score": score_shard, "train": train_step}
"""The functions an executor runs, by name: the same table for the local executor and Modal's app."""
