"""Pool files in chunks: JSONL or Parquet give the same run, and a chunk boundary changes nothing."""

from __future__ import annotations

import json
import re
import sys

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


# -- Parquet stays columnar: its ids, labels and errors are the JSONL path's, row for row -----------


def parquet(path, rows) -> str:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def test_whole_number_ids_become_text(tmp_path):
    read = read_item_file(tmp_path / "pool.parquet", parquet(tmp_path / "pool.parquet", [{"id": 7}, {"id": -2}]))
    assert read.table.ids == ["7", "-2"]
    assert read.table.table.schema.field("id").type == pa.string()


def test_spaces_around_ids_are_dropped_even_unicode_ones(tmp_path):
    every_space = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())  # what str.strip() drops
    rows = [{"id": " p1 "}, {"id": "\u3000p2\xa0"}, {"id": f"{every_space}p 3{every_space}"}]
    read = read_item_file(tmp_path / "pool.parquet", parquet(tmp_path / "pool.parquet", rows))
    assert read.table.ids == ["p1", "p2", "p 3"]


def test_lines_give_each_ids_row_number(tmp_path, monkeypatch):
    monkeypatch.setattr(item_files, "CHUNK_ROWS", 2)
    rows = [{"id": f" i{n}"} for n in range(5)]
    read = read_item_file(tmp_path / "pool.parquet", parquet(tmp_path / "pool.parquet", rows))
    assert read.lines["i4"] == 5
    assert dict(read.lines) == {f"i{n}": n + 1 for n in range(5)}
    with pytest.raises(KeyError):
        read.lines[" i4"]  # the ids are the normalized ones


def test_a_repeated_id_in_a_later_batch_names_both_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(item_files, "CHUNK_ROWS", 2)
    parquet(tmp_path / "pool.parquet", [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": " a"}])
    message = (
        "pool.parquet:4: duplicate ids: this line's id ' a' and line 1's are both 'a' "
        "once surrounding spaces are dropped; ids must be unique"
    )
    with pytest.raises(InputError, match=re.escape(message)):
        read_item_file(tmp_path / "pool.parquet")


BAD_IDS = {
    "a missing id": [{"id": "a"}, {"id": "b"}, {"id": None}],
    "an empty id": [{"id": "a"}, {"id": "   "}],
    "a tab inside an id": [{"id": "a"}, {"id": " a\tb "}],
    "a fractional id": [{"id": 1.0}, {"id": 2.5}],
    "a yes/no id": [{"id": True}],
    "a repeated whole number": [{"id": 1}, {"id": 2}, {"id": 1}],
    "a repeat before a missing id": [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "a"}, {"id": None}],
}


@pytest.mark.parametrize("rows", BAD_IDS.values(), ids=BAD_IDS.keys())
def test_a_bad_id_is_refused_with_the_jsonl_message(tmp_path, monkeypatch, rows):
    monkeypatch.setattr(item_files, "CHUNK_ROWS", 2)
    with pytest.raises(InputError) as from_jsonl:
        read_item_file(tmp_path / "pool.jsonl", jsonl(tmp_path / "pool.jsonl", rows) and "pool")
    with pytest.raises(InputError) as from_parquet:
        read_item_file(tmp_path / "pool.parquet", parquet(tmp_path / "pool.parquet", rows) and "pool")
    assert str(from_parquet.value) == str(from_jsonl.value)
    assert re.match(r"pool:\d+: ", str(from_parquet.value))


def test_a_file_without_an_id_column_is_refused_at_its_first_row(tmp_path):
    parquet(tmp_path / "pool.parquet", [{"text": "no id"}])
    with pytest.raises(InputError, match=re.escape("pool.parquet:1: missing 'id'")):
        read_item_file(tmp_path / "pool.parquet")


def test_only_rows_with_a_label_become_labeled_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(item_files, "CHUNK_ROWS", 2)
    labels = ["yes", None, "", "no", None, "yes"]
    rows = [{"id": f" i{n}", "text": f"t{n}", "label": label} for n, label in enumerate(labels)]
    read = read_item_file(tmp_path / "pool.parquet", parquet(tmp_path / "pool.parquet", rows))
    assert [(r.index, r.line, r.row) for r in read.labeled] == [
        (0, 1, {"id": "i0", "text": "t0", "label": "yes"}),
        (3, 4, {"id": "i3", "text": "t3", "label": "no"}),
        (5, 6, {"id": "i5", "text": "t5", "label": "yes"}),
    ]
    assert read.table.columns == ["id", "text"]


def test_a_parquet_file_and_a_jsonl_file_with_the_same_rows_read_alike(tmp_path, monkeypatch):
    monkeypatch.setattr(item_files, "CHUNK_ROWS", 3)
    rows = [
        {"id": f" p{n} ", "text": f"text {n}", "age": 20 + n, "label": ["a", None, "", "b"][n % 4]} for n in range(10)
    ]
    from_jsonl = read_item_file(tmp_path / "pool.jsonl", jsonl(tmp_path / "pool.jsonl", rows) and "pool")
    from_parquet = read_item_file(tmp_path / "pool.parquet", parquet(tmp_path / "pool.parquet", rows) and "pool")
    assert from_parquet.table.table.equals(from_jsonl.table.table)
    assert from_parquet.table.table.schema == from_jsonl.table.table.schema
    assert from_parquet.labeled == from_jsonl.labeled
    assert dict(from_parquet.lines) == from_jsonl.lines


def test_a_pandas_category_column_reads_as_plain_text(tmp_path):
    table = pa.table(
        {"id": pa.array(["a", "b"]).dictionary_encode(), "topic": pa.array(["x", "x"]).dictionary_encode()}
    )
    pq.write_table(table, tmp_path / "pool.parquet")
    read = read_item_file(tmp_path / "pool.parquet")
    assert read.table.table.schema.field("topic").type == pa.string()
    assert read.table.ids == ["a", "b"]


def test_a_parquet_held_out_row_without_a_label_is_named_by_its_row(new_run, tmp_path):
    rows = [{"id": "h1", "text": "one", "label": "sport"}, {"id": "h2", "text": "two", "label": None}]
    heldout = parquet(tmp_path / "heldout.parquet", rows)
    with pytest.raises(InputError, match=re.escape("heldout.parquet:2: held-out row 'h2' has no 'label'")):
        new_run("parquet_heldout", heldout=heldout)
