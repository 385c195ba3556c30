"""Pool files in chunks: JSONL or Parquet give the same run, and a chunk boundary changes nothing."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alloop.tools.errors import InputError
from alloop.tools.run import item_files
from alloop.tools.run.item_files import read_item_file


def jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_a_parquet_pool_reads_as_its_jsonl_does(bbc_slice, tmp_path):
    rows = [json.loads(line) for line in bbc_slice["pool"].read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pool.parquet")
    from_jsonl = read_item_file(bbc_slice["pool"])
    from_parquet = read_item_file(tmp_path / "pool.parquet")
    assert from_parquet.table.ids == from_jsonl.table.ids
    assert from_parquet.table.texts(["text"]) == from_jsonl.table.texts(["text"])


def test_chunks_keep_every_field_every_label_and_every_line(tmp_path, monkeypatch):
    monkeypatch.setattr(item_files, "CHUNK_ROWS", 3)
    rows = [{"id": f"i{n}", "text": f"text {n}"} for n in range(10)]
    rows[8]["source"] = "late field"  # a key only the third chunk has
    rows[4]["label"] = "yes"
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" + ("\n" if n == 1 else "") for n, r in enumerate(rows)))
    read = read_item_file(path)
    assert read.table.ids == [r["id"] for r in rows]
    assert read.table.table.column("source").to_pylist() == [None] * 8 + ["late field", None]
    (labeled,) = read.labeled
    assert (labeled.index, labeled.line, labeled.row["label"]) == (4, 6, "yes")  # line 3 is blank
    assert "label" not in read.table.table.column_names


def test_a_repeated_id_in_a_later_chunk_names_both_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(item_files, "CHUNK_ROWS", 2)
    jsonl(tmp_path / "pool.jsonl", [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": " a"}])
    message = "pool.jsonl:4: duplicate ids: this line's id ' a' and line 1's are both 'a'"
    with pytest.raises(InputError, match=re.escape(message)):
        read_item_file(tmp_path / "pool.jsonl")


def test_a_bad_byte_is_named_by_its_line(tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b\xff"}\n')
    with pytest.raises(InputError, match=r"pool.jsonl:2: not valid UTF-8 \(byte 0xff at column 10\)"):
        read_item_file(path)


def test_a_number_whole_in_one_chunk_and_fractional_in_the_next_is_one_column(tmp_path, monkeypatch):
    monkeypatch.setattr(item_files, "CHUNK_ROWS", 2)
    jsonl(tmp_path / "pool.jsonl", [{"id": "a", "age": 30}, {"id": "b", "age": 31}, {"id": "c", "age": 30.5}])
    assert read_item_file(tmp_path / "pool.jsonl").table.table.column("age").to_pylist() == [30.0, 31.0, 30.5]
    jsonl(tmp_path / "mixed.jsonl", [{"id": "a", "age": 30}, {"id": "b", "age": 31}, {"id": "c", "age": "old"}])
    with pytest.raises(InputError, match="a field has mixed types across rows"):
        read_item_file(tmp_path / "mixed.jsonl")
