"""The run directory's invariants: confinement, atomic writes, the lock, append-only labels."""

from __future__ import annotations

import os

import pytest

from alloop.tools.errors import InputError, LockedError, PathEscapeError, RunNotFoundError
from alloop.tools.run.items import ItemTable
from alloop.tools.run.rundir import atomic_write_text, read_jsonl
from alloop.tools.run.schema import LabelEvent, ResultRow, TaskSpec


def small_run(root, name="r1"):
    spec = TaskSpec(run=name, task_type="binary", labels=["no", "yes"])
    pool = ItemTable.from_rows([{"id": f"p{i}", "text": f"item {i}"} for i in range(5)])
    heldout = ItemTable.from_rows([{"id": "h1", "text": "held", "label": "yes"}])
    return root.create(spec, pool, heldout)


@pytest.mark.parametrize("name", ["../escape", "a/b", "/etc", "..", ".hidden", "", "x" * 65, "a\nb"])
def test_path_traversal_in_run_names_is_refused(root, name):
    with pytest.raises(PathEscapeError):
        root.resolve(name)


def test_symlink_escape_is_refused(root, tmp_path):
    root.path.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root.path / "sneaky")
    with pytest.raises(PathEscapeError):
        root.resolve("sneaky")


def test_file_inside_run_cannot_leave_it(root):
    run = small_run(root)
    with pytest.raises(PathEscapeError):
        run.inside("../../etc/passwd")


def test_unknown_run_names_the_runs_that_exist(root):
    small_run(root, "known")
    with pytest.raises(RunNotFoundError, match="known"):
        root.run("missing")


def test_create_writes_every_file_and_refuses_to_overwrite(root):
    run = small_run(root)
    for name in ["spec.json", "pool.parquet", "heldout.parquet", "labels.jsonl", "results.tsv", "notes.md"]:
        assert (run.path / name).is_file(), name
    assert (run.path / "models").is_dir() and (run.path / "cache").is_dir()
    with pytest.raises(InputError, match="already exists"):
        small_run(root)


def test_failed_create_leaves_nothing_behind(root, monkeypatch):
    spec = TaskSpec(run="broken", task_type="binary", labels=["no", "yes"])
    pool = ItemTable.from_rows([{"id": "a", "text": "x"}])

    def disk_full(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(ItemTable, "write_parquet", disk_full)
    with pytest.raises(OSError):
        root.create(spec, pool, None)
    assert list(root.path.iterdir()) == []


def test_lock_refuses_a_second_writer(root, monkeypatch):
    monkeypatch.setenv("ALLOOP_LOCK_WAIT", "0.1")  # a second writer waits this long, then is refused
    run = small_run(root)
    with run.lock(), pytest.raises(LockedError), root.run("r1").lock():
        pass
    with run.lock():  # released after the first holder leaves
        pass


def test_labels_are_append_only_and_a_second_pull_adds_nothing(root):
    run = small_run(root)
    first = LabelEvent(item_id="p1", label="yes", source="human", annotator="ann", round=0, external_id="resp-1")
    assert run.append_labels([first]) == [first]
    again = LabelEvent(item_id="p1", label="yes", source="human", annotator="ann", round=0, external_id="resp-1")
    assert run.append_labels([again]) == []
    correction = LabelEvent(
        item_id="p1", label="no", source="human", annotator="ann", round=0, supersedes=first.event_id
    )
    run.append_labels([correction])
    assert [e.label for e in run.labels()] == ["yes", "no"]
    assert len(read_jsonl(run.round_file("annotation", 0))) == 2


def test_label_for_an_unknown_item_is_refused(root):
    run = small_run(root)
    with pytest.raises(InputError, match="unknown item"):
        run.append_labels([LabelEvent(item_id="nope", label="yes", source="human", annotator="a", round=0)])
    assert run.labels() == []


def test_redone_round_replaces_its_results_row(root):
    run = small_run(root)
    run.upsert_result(ResultRow(round=1, model_version="r01-a", gold_accuracy=0.5))
    run.upsert_result(ResultRow(round=2, model_version="r02-a"))
    run.upsert_result(ResultRow(round=1, model_version="r01-b", gold_accuracy=0.7))
    rows = run.results()
    assert [(r.round, r.model_version) for r in rows] == [(1, "r01-b"), (2, "r02-a")]
    header = run.results_path.read_text().splitlines()[0].split("\t")
    assert {"round", "n_labeled", "strategy", "gold_accuracy", "gold_macro_f1", "judge_accuracy"} <= set(header)


def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a"}\n{"id": \n')
    with pytest.raises(InputError, match=r"bad.jsonl:2"):
        read_jsonl(path)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_duplicate_ids_are_refused():
    with pytest.raises(InputError, match="duplicate ids"):
        ItemTable.from_rows([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}])


def test_spec_changes_are_versioned(root):
    run = small_run(root)
    spec = run.spec()
    new = run.write_spec(spec.model_copy(update={"guidelines": "Be careful."}), reason="guidelines")
    assert new.spec_version == spec.spec_version + 1
    assert read_jsonl(run.path / "spec_history.jsonl")[0]["spec"]["spec_version"] == 1
    assert "spec v1 → v2" in run.notes_path.read_text()
