"""ItemTable: a pool or held-out set as columns (ids, text fields, metadata), kept in Parquet.

JSONL comes in (one `{"id", "text", ...}` object a line); inside a run the table is columnar
so a million-item pool loads in a second and is never walked row by row in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alloop.tools.errors import InputError
from alloop.tools.run.reader import normalize_id


class ItemTable:
    """Items with unique string ids; columns are pyarrow arrays."""

    def __init__(self, table: pa.Table, source: str = "items", *, unique: bool = False) -> None:
        """`unique`: the ids are known to be distinct (rows taken from a checked table), so the check is skipped."""
        if "id" not in table.column_names:
            raise InputError(f"{source}: every row needs an 'id' field")
        if table.num_rows == 0:
            raise InputError(f"{source}: no items; the file is empty")
        ids = table.column("id").cast(pa.string())
        if ids.null_count:
            raise InputError(f"{source}: {ids.null_count} rows have an empty 'id'")
        table = table.set_column(table.column_names.index("id"), "id", ids)
        self.table = table
        self.source = source
        self.id_array: pa.Array = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
        """The ids as one Arrow array: vectorized lookups (pyarrow.compute) without a Python list."""
        self._ids: list[str] | None = None
        self._index: dict[str, int] | None = None
        if not unique and len(pc.unique(self.id_array)) != len(self.id_array):
            counts: dict[str, int] = {}
            for item_id in self.ids:
                counts[item_id] = counts.get(item_id, 0) + 1
            dupes = [i for i, c in counts.items() if c > 1][:5]
            raise InputError(f"{source}: duplicate ids {dupes}; ids must be unique")

    @property
    def ids(self) -> list[str]:
        """The ids as Python strings, built on first use (a million-item pool's list costs a few tenths of a second)."""
        if self._ids is None:
            self._ids = self.id_array.to_pylist()
        return self._ids

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]], source: str = "items") -> ItemTable:
        """Items from file rows; ids are normalized (reader.normalize_id), so `" p1"` and `"p1"` are one id."""
        normalized, first = [], {}
        for number, row in enumerate(rows, start=1):
            if row.get("id") is None:
                raise InputError(f"{source}:{number}: missing 'id'")
            item_id = normalize_id(row["id"], f"{source}:{number}")
            if item_id in first:
                spaces = " once surrounding spaces are dropped" if row["id"] != item_id else ""
                raise InputError(
                    f"{source}:{number}: duplicate ids: this line's id {row['id']!r} and line {first[item_id]}'s "
                    f"are both {item_id!r}{spaces}; ids must be unique"
                )
            first[item_id] = number
            normalized.append({**row, "id": item_id})
        try:
            table = pa.Table.from_pylist(list(normalized))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(
                f"{source}: a field has mixed types across rows ({exc}); make each field one type"
            ) from exc
        return cls(table, source)

    @classmethod
    def read_parquet(cls, path: Path) -> ItemTable:
        """The table in `path`; an unchanged file is read once per process (a server's rounds share it)."""
        stat = path.stat()
        return _read_parquet(str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def write_parquet(self, path: Path) -> None:
        from alloop.tools.run.rundir import atomic_write_bytes

        sink = pa.BufferOutputStream()
        pq.write_table(self.table, sink, compression="zstd")
        atomic_write_bytes(path, sink.getvalue().to_pybytes())

    # -- access --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def columns(self) -> list[str]:
        return self.table.column_names

    def has(self, column: str) -> bool:
        return column in self.table.column_names

    def column(self, name: str) -> list[Any]:
        if name not in self.table.column_names:
            raise InputError(f"{self.source}: no field {name!r} (fields: {', '.join(self.columns)})")
        return self.table.column(name).to_pylist()

    def index_of(self) -> dict[str, int]:
        """id → row position."""
        if self._index is None:
            self._index = {item_id: i for i, item_id in enumerate(self.ids)}
        return self._index

    def take(self, positions: Sequence[int] | np.ndarray) -> ItemTable:
        """The rows at these positions, as a table of their own (same source name)."""
        positions = np.asarray(positions, dtype=np.int64)
        distinct = len(np.unique(positions)) == len(positions)
        return ItemTable(self.table.take(pa.array(positions)), self.source, unique=distinct)

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        """Row positions of `ids`, in their order (a hash lookup in Arrow, no Python dict over the table)."""
        wanted = pa.array(list(ids), pa.string())
        if 8 * len(wanted) < len(self):  # a few ids: hash them and probe the table, not the other way round
            rows = np.flatnonzero(pc.is_in(self.id_array, value_set=wanted).to_numpy(zero_copy_only=False))
            found = pc.index_in(wanted, value_set=self.id_array.take(pa.array(rows)))
            located = rows[found.fill_null(0).to_numpy(zero_copy_only=False)] if len(rows) else rows
        else:
            found = pc.index_in(wanted, value_set=self.id_array)
            located = found.fill_null(0).to_numpy(zero_copy_only=False)
        if found.null_count:
            missing = [i for i, at in zip(ids, found.is_null().to_pylist(), strict=True) if at]
            raise InputError(f"{self.source}: unknown item ids {missing[:5]}")
        return np.asarray(located, dtype=np.int64)

    def contains(self, ids: Sequence[str] | pa.Array) -> np.ndarray:
        """A boolean mask over this table's rows: which row ids are among `ids` (vectorized)."""
        values = ids if isinstance(ids, pa.Array) else pa.array(list(ids), pa.string())
        return pc.is_in(self.id_array, value_set=values).to_numpy(zero_copy_only=False)

    def texts(self, fields: Sequence[str]) -> list[str]:
        """The text the encoder sees: the named fields joined, in order."""
        missing = [f for f in fields if f not in self.table.column_names]
        if missing:
            raise InputError(
                f"{self.source}: text field(s) {missing} not found (fields: {', '.join(self.columns)}); "
                "fix spec.text_fields or the data"
            )
        columns = [self.table.column(f).cast(pa.string()).fill_null("").to_pylist() for f in fields]
        if len(columns) == 1:
            return columns[0]
        return ["\n".join(parts) for parts in zip(*columns, strict=True)]

    def numeric(self, names: Sequence[str], positions: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Design predictors: the named fields as a float matrix (rows at `positions`, or all)."""
        columns = []
        for name in names:
            values = self.column(name)
            try:
                column = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError):
                raise InputError(f"{self.source}: predictor {name!r} must be numeric in every row") from None
            if np.isnan(column).any():
                raise InputError(f"{self.source}: predictor {name!r} is missing in some rows; fill it in")
            columns.append(column)
        matrix = np.stack(columns, axis=1) if columns else np.zeros((len(self), 0))
        return matrix if positions is None else matrix[np.asarray(positions, dtype=np.int64)]

    def rows(self, positions: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        return self.table.take(pa.array(np.asarray(positions, dtype=np.int64))).to_pylist()

    def row(self, item_id: str) -> dict[str, Any]:
        return self.rows([self.index_of()[item_id]])[0]


@lru_cache(maxsize=4)
def _read_parquet(path: str, inode: int, size: int, mtime_ns: int) -> ItemTable:
    """Keyed by the file's identity and version: a rewritten pool (atomic replace) is a new key."""
    return ItemTable(pq.read_table(path), path)
