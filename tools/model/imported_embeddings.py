"""Embeddings made elsewhere: a Parquet file of `id` and `embedding` rows, brought into a new run.

A million-item pool should not wait hours for this CPU to embed it, so a run can start from vectors
made on a GPU or by a service. The file is read in record batches straight into the run's
memory-mapped embedding cache (vectors.npy), so neither the file nor the matrix is ever held in
memory whole. Every id of the pool and held-out set must have exactly one finite, non-zero vector of
one length, and that length must be the named encoder's when its configuration is on disk. Vectors
are scaled to unit length, as alloop's own encoder makes them, because selection reads cosines.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alloop.tools.errors import InputError
from alloop.tools.model.encoders import EmbeddingCache, HFEncoder
from alloop.tools.run.rundir import RunDir, atomic_write_bytes

BATCH_ROWS = 65_536
SHOWN = 5


def encoder_dim(encoder: HFEncoder) -> int | None:
    """The encoder's output length from its config.json, when it is a folder on disk (else None)."""
    config = Path(encoder.location) / "config.json"
    if not config.is_file():
        return None
    values = json.loads(config.read_text(encoding="utf-8"))
    dim = values.get("hidden_size", values.get("dim", values.get("d_model")))
    return int(dim) if isinstance(dim, int) else None


def _embedding_column(schema: pa.Schema, where: str) -> None:
    names = schema.names
    if "id" not in names or "embedding" not in names:
        raise InputError(f"{where}: needs columns 'id' and 'embedding' (a list of floats); it has {names}")
    kind = schema.field("embedding").type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)):
        raise InputError(f"{where}: column 'embedding' is {kind}, not a list of floats")
    if not (pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)):
        raise InputError(f"{where}: column 'embedding' holds {kind.value_type}, not floats")


def _block(batch: pa.RecordBatch, dim: int | None, where: str, first_row: int) -> np.ndarray:
    """One batch's vectors as an n × d float32 array; ragged or missing vectors are refused by row."""
    column = batch.column("embedding")
    if column.null_count:
        row = first_row + column.is_null().to_pylist().index(True)
        raise InputError(f"{where}: row {row} has no embedding")
    lengths = np.asarray(pa.compute.list_value_length(column).to_numpy(zero_copy_only=False))
    want = dim if dim is not None else int(lengths[0]) if len(lengths) else 0
    odd = np.flatnonzero(lengths != want)
    if len(odd):
        raise InputError(
            f"{where}: row {first_row + int(odd[0])} has an embedding of length {int(lengths[odd[0]])}, "
            f"the others {want}; every vector must have one length"
        )
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(len(lengths), want)


def import_embeddings(
    source: Path, run: RunDir, ids: Sequence[str], encoder: HFEncoder, where: str | None = None
) -> dict[str, object]:
    """Fill `run`'s cache for `encoder` with the file's vectors, in the order of `ids` (pool, then held-out).

    Raises InputError, naming the file and the row or id, for anything that would make the cache
    wrong; the caller builds the run in a staging folder, so nothing is left behind.
    """
    where = where or str(source)
    try:
        reader = pq.ParquetFile(source)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{where}: not a readable Parquet file ({exc})") from exc
    _embedding_column(reader.schema_arrow, where)
    index = pa.array(list(ids), pa.string())
    expected = encoder_dim(encoder)
    cache = EmbeddingCache(run, encoder.key)
    cache.folder.mkdir(parents=True, exist_ok=True)
    seen = np.zeros(len(ids), dtype=bool)
    vectors: np.memmap | None = None
    dim: int | None = None
    row = 0
    for batch in reader.iter_batches(batch_size=BATCH_ROWS, columns=["id", "embedding"]):
        block = _block(batch, dim, where, row)
        if dim is None:
            dim = block.shape[1]
            if dim == 0:
                raise InputError(f"{where}: row 0 has an empty embedding")
            if expected is not None and dim != expected:
                raise InputError(
                    f"{where}: vectors have length {dim}, but encoder {encoder.name!r} makes {expected}; name the "
                    "encoder that made them (`encoder`), so new items and trained rounds use the same space"
                )
            vectors = _open_vectors(cache.vectors_path, len(ids), dim, where)
        rows = _rows_of(batch.column("id"), index, seen, where, row)
        norms = np.linalg.norm(block, axis=1)
        bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
        if len(bad):
            what = "a zero vector" if np.isfinite(norms[bad[0]]) else "a NaN or infinite value"
            raise InputError(f"{where}: row {row + int(bad[0])} ({ids[rows[bad[0]]]!r}) has {what}")
        vectors[rows] = block / norms[:, None]
        seen[rows] = True
        row += len(block)
    if vectors is None:
        raise InputError(f"{where}: the file has no rows")
    missing = np.flatnonzero(~seen)
    if len(missing):
        shown = ", ".join(repr(ids[k]) for k in missing[:SHOWN])
        raise InputError(
            f"{where}: no embedding for {len(missing)} of the {len(ids)} pool and held-out items (e.g. {shown}); "
            "the file must cover every item"
        )
    vectors.flush()
    del vectors
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"id": pa.array(list(ids), pa.string())}), sink)
    atomic_write_bytes(cache.ids_path, sink.getvalue().to_pybytes())
    meta = {"n": len(ids), "dim": dim, "imported_from": where, "scaled_to_unit_length": True}
    atomic_write_bytes(cache.folder / "meta.json", json.dumps(meta).encode())
    return {"items": len(ids), "dim": dim, "encoder": encoder.name}


def _open_vectors(path: Path, n: int, dim: int, where: str) -> np.memmap:
    """The cache's vectors.npy, memory-mapped, after checking the disk can hold it."""
    need = n * dim * 4
    free = shutil.disk_usage(path.parent).free
    if need > free:
        raise InputError(
            f"{where}: {n} vectors of length {dim} need {need / 1e9:.1f} GB in the run's cache; "
            f"{free / 1e9:.1f} GB are free"
        )
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))


def _rows_of(column: pa.Array, index: pa.Array, seen: np.ndarray, where: str, first: int) -> np.ndarray:
    """Each id's row in the cache, found in one vectorized lookup; ids are read as the pool's are (text or
    whole numbers, surrounding spaces dropped), and unknown, repeated and empty ids are refused with their row."""
    if column.null_count:
        raise InputError(f"{where}: row {first + column.is_null().to_pylist().index(True)} has no id")
    if pa.types.is_integer(column.type):
        column = pc.cast(column, pa.string())
    elif not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise InputError(f"{where}: ids are {column.type}; write them as text or whole numbers, as in the pool")
    ids = pc.utf8_trim_whitespace(column)
    empty = np.flatnonzero(np.asarray(pc.equal(pc.utf8_length(ids), 0).to_numpy(zero_copy_only=False)))
    if len(empty):
        raise InputError(f"{where}: row {first + int(empty[0])} has an empty id")
    rows = np.asarray(pc.index_in(ids, value_set=index).fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    unknown = np.flatnonzero(rows < 0)
    if len(unknown):
        k = int(unknown[0])
        raise InputError(
            f"{where}: row {first + k} is for id {ids[k].as_py()!r}, which is in neither the pool nor the held-out set"
        )
    order = np.argsort(rows, kind="stable")
    twice = np.flatnonzero(np.diff(rows[order]) == 0)
    again = order[twice[0] + 1] if len(twice) else None
    earlier = np.flatnonzero(seen[rows])
    if again is None and len(earlier):
        again = earlier[0]
    if again is not None:
        raise InputError(f"{where}: id {ids[int(again)].as_py()!r} has a second embedding at row {first + int(again)}")
    return rows


def imported_from(run: RunDir, encoder: HFEncoder) -> str | None:
    """The file a run's vectors for `encoder` were imported from, as it was named (None: embedded here)."""
    meta = EmbeddingCache(run, encoder.key).folder / "meta.json"
    if not meta.is_file():
        return None
    return json.loads(meta.read_text(encoding="utf-8")).get("imported_from")


def export_embeddings(run: RunDir, encoder: HFEncoder, path: Path) -> int:
    """Write the run's cached vectors for `encoder` as the Parquet this module imports (id, embedding).

    Another run over the same items (a baseline, a rerun) then starts without embedding again.
    """
    ids, vectors = EmbeddingCache(run, encoder.key).load()
    if not ids:
        raise InputError(f"run {run.name!r} has no cached embeddings from {encoder.name!r} yet; embed its pool first")
    writer: pq.ParquetWriter | None = None
    try:
        for start in range(0, len(ids), BATCH_ROWS):
            block = np.asarray(vectors[start : start + BATCH_ROWS], dtype=np.float32)
            dim = block.shape[1]
            column = pa.FixedSizeListArray.from_arrays(pa.array(block.ravel(), pa.float32()), dim)
            batch = pa.table({"id": pa.array(ids[start : start + BATCH_ROWS], pa.string()), "embedding": column})
            writer = writer or pq.ParquetWriter(path, batch.schema)
            writer.write_table(batch)
    finally:
        if writer is not None:
            writer.close()
    return len(ids)
