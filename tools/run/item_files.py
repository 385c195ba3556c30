"""Pool and held-out files read in chunks: JSONL or Parquet in, one columnar ItemTable out.

A million-item pool must not become a million Python dicts at once. JSONL lines are turned into
Arrow columns a chunk at a time, so besides the table memory holds one chunk of dicts. Parquet
record batches are Arrow already and stay so: their ids are normalized and checked with
pyarrow.compute, the same way reader.normalize_id does it one id at a time.

Only the rows that carry a label become dicts. They stay outside the table, whole and with their
line (the checks read their text and annotator), because labels are checked against the spec and
may mix forms (a list or `"a | b"` for a cloze answer) that a typed column cannot hold; a pool
with a label on every row keeps its rows twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alloop.tools.errors import InputError
from alloop.tools.run.items import ItemTable
from alloop.tools.run.reader import json_loads, normalize_id

CHUNK_ROWS = 50_000
PARQUET_SUFFIXES = (".parquet", ".pq")
_WHITESPACE = "".join(c for c in map(chr, range(0x10000)) if c.isspace())
"""What str.strip() drops; every such character lies below U+10000 (a test checks the whole range)."""
_CONTROL_PATTERN = r"[\x00-\x1f\x7f]"
"""reader.normalize_id's control characters, as an RE2 pattern for pyarrow.compute."""


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
    lines: Mapping[str, int] = field(default_factory=dict)
    """Each id's line in the file (its row number in a Parquet file), for errors."""


class _RowNumbers(Mapping[str, int]):
    """id → row number of a Parquet file, found in the id column when asked.

    A row's number is its position plus one, so a dict would only repeat the ids; at a million rows
    it would cost more than the table itself, for an error message that may never be written.
    """

    def __init__(self, ids: pa.Array) -> None:
        self.ids = ids

    def __getitem__(self, item_id: str) -> int:
        position = pc.index(self.ids, pa.scalar(item_id, pa.string())).as_py() if isinstance(item_id, str) else -1
        if position < 0:
            raise KeyError(item_id)
        return position + 1

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids.to_pylist())

    def __len__(self) -> int:
        return len(self.ids)


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
        item_id = _checked_id(row.get("id"), where)
        if item_id in self.first_line:
            raise _duplicate_error(where, row["id"], self.first_line[item_id], item_id)
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
        return ItemFile(ItemTable(_concat(self.tables, self.source), self.source), self.labeled, self.first_line)


def _checked_id(value: Any, where: str) -> str:
    """One id normalized (reader.normalize_id); a missing one is refused like an empty one."""
    if value is None:
        raise InputError(f"{where}: missing 'id'")
    return normalize_id(value, where)


def _duplicate_error(where: str, raw: Any, first_line: int, item_id: str) -> InputError:
    spaces = " once surrounding spaces are dropped" if raw != item_id else ""
    return InputError(
        f"{where}: duplicate ids: this line's id {raw!r} and line {first_line}'s "
        f"are both {item_id!r}{spaces}; ids must be unique"
    )


def _concat(tables: list[pa.Table], source: str) -> pa.Table:
    """The chunks as one table; a field typed one way in a chunk and another way in the next is refused."""
    if not tables:
        raise InputError(f"{source}: the file has no rows; a pool or held-out file needs at least one item")
    try:
        return pa.concat_tables(tables, promote_options="permissive")  # int64 here, double there
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{source}: a field has mixed types across rows ({exc}); make each field one type") from exc


def read_item_file(path: Path, source: str | None = None) -> ItemFile:
    """A pool or held-out file (JSONL, or Parquet by its suffix), read a chunk at a time."""
    source = source or str(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return _read_parquet(path, source)
    chunks = _Chunks(source)
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


def _read_parquet(path: Path, source: str) -> ItemFile:
    """A Parquet file a record batch at a time, each kept as Arrow: no row becomes a dict unless it has a label."""
    tables: list[pa.Table] = []
    labeled: list[LabeledRow] = []
    count = 0
    for batch in _parquet_batches(path, source):
        table = _checked_batch(_without_dictionaries(pa.Table.from_batches([batch])), tables, path, source)
        labeled.extend(_labeled_rows(table, count))
        tables.append(table.drop_columns("label") if "label" in table.column_names else table)
        count += table.num_rows
    items = ItemTable(_concat(tables, source), source, unique=True)  # unique: checked just below
    _refuse_repeated_ids(items.id_array, path, source)
    return ItemFile(items, labeled, _RowNumbers(items.id_array))


def _parquet_batches(path: Path, source: str) -> Iterator[pa.RecordBatch]:
    try:
        with pq.ParquetFile(path) as parquet:
            for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
                if batch.num_rows:
                    yield batch
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{source}: not a readable Parquet file ({exc})") from exc


def _without_dictionaries(table: pa.Table) -> pa.Table:
    """Dictionary-encoded columns (a pandas category) as plain ones, the type a JSONL file gives."""
    for position, column in enumerate(table.schema):
        if pa.types.is_dictionary(column.type):
            table = table.set_column(position, column.name, table.column(position).cast(column.type.value_type))
    return table


def _checked_batch(table: pa.Table, earlier: list[pa.Table], path: Path, source: str) -> pa.Table:
    """A batch with its ids normalized, after the batches `earlier`; a bad id is refused with its row.

    Repeats are looked for once every id is in (one hash of the whole column), except when a bad id
    turns up: a repeat before it is then the first fault, as the JSONL path, a row at a time, finds.
    """
    count = sum(t.num_rows for t in earlier)
    if "id" not in table.column_names:
        raise InputError(f"{source}:{count + 1}: missing 'id'")
    position = table.column_names.index("id")
    raw = table.column(position).combine_chunks()
    ids = _normal_ids(raw, source, count)
    bad = pc.index(_bad_ids(ids), True).as_py()
    if bad >= 0:
        before = pa.chunked_array([c for t in earlier for c in t.column("id").chunks] + [ids[:bad]], pa.string())
        _refuse_repeated_ids(before.combine_chunks(), path, source)
        _refuse_id(raw[bad].as_py(), f"{source}:{count + bad + 1}")
    return table.set_column(position, "id", ids)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _normal_ids(raw: pa.Array, source: str, count: int) -> pa.Array:
    """Ids as text stripped of surrounding spaces (reader.normalize_id); a missing, empty or unfit one stays so."""
    if pa.types.is_integer(raw.type):
        return raw.cast(pa.string())
    if _is_text(raw.type):
        return pc.utf8_trim(raw.cast(pa.string()), characters=_WHITESPACE)
    # neither text nor whole numbers: the reader's own check, one id at a time, refuses it
    return pa.array([_checked_id(v, f"{source}:{count + n}") for n, v in enumerate(raw.to_pylist(), 1)], pa.string())


def _bad_ids(ids: pa.Array) -> pa.Array:
    """Which normalized ids reader.normalize_id refuses: missing, empty, or holding a control character."""
    empty = pc.equal(ids, "")
    return pc.or_kleene(pc.is_null(ids), pc.or_kleene(empty, pc.match_substring_regex(ids, _CONTROL_PATTERN)))


def _refuse_id(value: Any, where: str) -> NoReturn:
    """reader.normalize_id's error for an id the columnar check found missing, empty or with a control character."""
    _checked_id(value, where)
    raise AssertionError(f"{where}: id {value!r} was refused as a column but normalize_id accepts it")


def _labeled_rows(table: pa.Table, count: int) -> list[LabeledRow]:
    """The rows of a batch whose label is there and not empty, as whole dicts (ids normalized)."""
    if "label" not in table.column_names:
        return []
    label = table.column("label")
    present = pc.is_valid(label)
    if _is_text(label.type):
        present = pc.and_kleene(present, pc.not_equal(label.cast(pa.string()), ""))
    positions = np.flatnonzero(present.to_numpy(zero_copy_only=False))
    rows = table.take(pa.array(positions)).to_pylist()
    return [LabeledRow(count + p, count + p + 1, row) for p, row in zip(positions.tolist(), rows, strict=True)]


def _refuse_repeated_ids(ids: pa.Array, path: Path, source: str) -> None:
    """Ids must be unique across the whole file; the first row that repeats one is named with the row it repeats."""
    if len(pc.unique(ids)) == len(ids):
        return
    codes = pc.dictionary_encode(ids).indices.to_numpy(zero_copy_only=False)
    first_rows = np.unique(codes, return_index=True)[1]  # codes run 0..k-1, so position k is code k's first row
    row = int(np.flatnonzero(first_rows[codes] != np.arange(len(codes)))[0])
    raw = pq.read_table(path, columns=["id"]).column("id")[row].as_py()  # as written: ' a', or 5 for '5'
    raise _duplicate_error(f"{source}:{row + 1}", raw, int(first_rows[codes[row]]) + 1, ids[row].as_py())
