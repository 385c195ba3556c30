"""Pool and held-out files read in chunks: JSONL or Parquet in, one columnar ItemTable out.

A million-item pool must not become a million Python dicts at once: lines (or Parquet record
batches) are turned into Arrow columns a chunk at a time, so besides the table itself memory holds
one chunk of dicts and the rows that carry a label. Those stay outside the table, whole and with
their line (the checks read their text and annotator), because labels are checked against the
spec and may mix forms (a list or `"a | b"` for a cloze answer) that a typed column cannot hold;
a pool with a label on every row keeps its rows twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from alloop.tools.errors import InputError
from alloop.tools.run.items import ItemTable
from alloop.tools.run.reader import json_loads, normalize_id

CHUNK_ROWS = 50_000
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class LabeledRow:
    """A row that came with a label: its position in the table, its line in the file, the whole row."""

    index: int
    line: int
    row: dict[str, Any]


@dataclass
class ItemFile:
    """A file's items as a table (no label column) and the rows that carried a label."""

    table: ItemTable
    labeled: list[LabeledRow] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)
    """Each id's line in the file (its row number in a Parquet file), for errors."""


class _Chunks:
    """Rows gathered into Arrow chunks; ids normalized and checked unique across the whole file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tables: list[pa.Table] = []
        self.rows: list[dict[str, Any]] = []
        self.first_line: dict[str, int] = {}
        self.labeled: list[LabeledRow] = []
        self.count = 0

    def add(self, row: dict[str, Any], line: int) -> None:
        where = f"{self.source}:{line}"
        if row.get("id") is None:
            raise InputError(f"{where}: missing 'id'")
        item_id = normalize_id(row["id"], where)
        if item_id in self.first_line:
            spaces = " once surrounding spaces are dropped" if row["id"] != item_id else ""
            raise InputError(
                f"{where}: duplicate ids: this line's id {row['id']!r} and line {self.first_line[item_id]}'s "
                f"are both {item_id!r}{spaces}; ids must be unique"
            )
        self.first_line[item_id] = line
        row = {**row, "id": item_id}
        if row.get("label") not in (None, ""):
            self.labeled.append(LabeledRow(self.count, line, row))
        self.rows.append({k: v for k, v in row.items() if k != "label"})
        self.count += 1
        if len(self.rows) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        try:  # a struct array takes every key of every row; from_pylist would read the first row's only
            self.tables.append(pa.Table.from_struct_array(pa.array(self.rows)))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(
                f"{self.source}: a field has mixed types across rows ({exc}); make each field one type"
            ) from exc
        self.rows = []

    def result(self) -> ItemFile:
        self.flush()
        if not self.tables:
            raise InputError(f"{self.source}: the file has no rows; a pool or held-out file needs at least one item")
        try:
            table = pa.concat_tables(self.tables, promote_options="permissive")  # int64 here, double there
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(
                f"{self.source}: a field has mixed types across rows ({exc}); make each field one type"
            ) from exc
        return ItemFile(ItemTable(table, self.source), self.labeled, self.first_line)


def read_item_file(path: Path, source: str | None = None) -> ItemFile:
    """A pool or held-out file (JSONL, or Parquet by its suffix), read a chunk at a time."""
    source = source or str(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    chunks = _Chunks(source)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        _parquet_rows(path, chunks)
    else:
        _jsonl_rows(path, chunks)
    return chunks.result()


def _jsonl_rows(path: Path, chunks: _Chunks) -> None:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            at = f"{chunks.source}:{number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{at}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                    "save the file as UTF-8"
                ) from None
            if not line.strip():
                continue
            try:
                row = json_loads(line, at)
            except json.JSONDecodeError as exc:
                raise InputError(f"{at}: not valid JSON ({exc.msg}); fix or remove that line") from None
            if not isinstance(row, dict):
                raise InputError(f"{at}: expected a JSON object per line, got {type(row).__name__}")
            chunks.add(row, number)


def _parquet_rows(path: Path, chunks: _Chunks) -> None:
    try:
        reader = pq.ParquetFile(path)
        batches = reader.iter_batches(batch_size=CHUNK_ROWS)
        number = 0
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                chunks.add(row, number)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{chunks.source}: not a readable Parquet file ({exc})") from exc
