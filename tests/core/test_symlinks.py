"""Nothing is written through a link: each symbolic link the reliability review planted in a run.

The review (2026-11, §4) planted 15 links inside a run folder; 9 let alloop write outside the root.
Each test here plants one of them, pointing outside the root, runs the command the review ran, and
checks that nothing outside changed and the run says what to fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alloop.tools.errors import PathEscapeError
from alloop.tools.run.rundir import atomic_write_text
from alloop.tools.score_pool import ScoreInput, score_pool
from alloop.tools.seed_set import SeedInput, seed_set
from alloop.tools.select_batch import SelectInput, select_batch
from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
from alloop.tools.train_glmm import TrainInput, train_glmm
from alloop.tools.write_report import ReportInput, write_report

REFUSED = "symbolic link"


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the run root, with one file an attacker would like overwritten."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me\n")
    return folder


def untouched(folder: Path) -> bool:
    return (
        sorted(p.name for p in folder.iterdir()) == ["precious.txt"]
        and (folder / "precious.txt").read_text() == "keep me\n"
    )


def plant(link: Path, target: Path) -> None:
    if link.is_dir() and not link.is_symlink():
        import shutil

        shutil.rmtree(link)
    elif link.exists() or link.is_symlink():
        link.unlink()
    os.symlink(target, link)


def test_write_report_temp_name_linked_to_an_existing_file_overwrites_nothing(ctx, looped_copy, outside):
    run = ctx.root.path / looped_copy
    plant(run / ".learning_curve.png.tmp", outside / "precious.txt")

    out = write_report(ReportInput(run=looped_copy), ctx)

    assert untouched(outside)
    assert out.plot == "learning_curve.png"
    assert (run / "learning_curve.png").read_bytes().startswith(b"\x89PNG")
    assert not os.path.lexists(run / ".learning_curve.png.tmp")  # a link with a temp name is junk: removed


def test_models_folder_linked_outside_is_refused_by_train_glmm(ctx, looped_copy, outside):
    plant(ctx.root.path / looped_copy / "models", outside)

    with pytest.raises(PathEscapeError, match=REFUSED):
        train_glmm(TrainInput(run=looped_copy, round=3), ctx)

    assert untouched(outside)


def test_round_folder_linked_outside_is_refused_by_score_pool(ctx, looped_copy, outside):
    plant(ctx.root.path / looped_copy / "models" / "round_01", outside)

    with pytest.raises(PathEscapeError, match=r"models/round_01 → "):
        score_pool(ScoreInput(run=looped_copy, round=1), ctx)

    assert untouched(outside)


def test_cache_folder_linked_outside_is_refused_by_seed_set(ctx, bbc_run, outside):
    plant(ctx.root.path / bbc_run / "cache", outside)

    with pytest.raises(PathEscapeError, match=REFUSED):
        seed_set(SeedInput(run=bbc_run, strategy="typical"), ctx)

    assert untouched(outside)


def test_embeddings_folder_linked_outside_is_refused_by_seed_set(ctx, bbc_run, outside):
    (ctx.root.path / bbc_run / "cache" / "embeddings").mkdir()
    plant(ctx.root.path / bbc_run / "cache" / "embeddings", outside)

    with pytest.raises(PathEscapeError, match=r"cache/embeddings → "):
        seed_set(SeedInput(run=bbc_run, strategy="typical"), ctx)

    assert untouched(outside)


def test_labels_log_linked_to_a_file_outside_is_refused_by_simulate_annotator(ctx, looped_copy, outside, bbc_slice):
    plant(ctx.root.path / looped_copy / "labels.jsonl", outside / "precious.txt")

    with pytest.raises(PathEscapeError, match=r"labels.jsonl → "):
        simulate_annotator(SimulateAnnotatorInput(run=looped_copy, gold=str(bbc_slice["gold"]), round=2), ctx)

    assert untouched(outside)


def test_annotation_round_file_linked_outside_is_refused_by_simulate_annotator(ctx, looped_copy, outside, bbc_slice):
    plant(ctx.root.path / looped_copy / "annotation_round_00.jsonl", outside / "precious.txt")

    with pytest.raises(PathEscapeError, match=r"annotation_round_00.jsonl → "):
        simulate_annotator(SimulateAnnotatorInput(run=looped_copy, gold=str(bbc_slice["gold"]), round=0), ctx)

    assert untouched(outside)


def test_notes_linked_to_a_file_outside_is_refused_by_seed_set(ctx, bbc_run, outside):
    plant(ctx.root.path / bbc_run / "notes.md", outside / "precious.txt")

    with pytest.raises(PathEscapeError, match=r"notes.md → "):
        seed_set(SeedInput(run=bbc_run, strategy="random"), ctx)

    assert untouched(outside)


def test_lock_linked_to_a_missing_path_outside_is_refused_by_select_batch(ctx, looped_copy, outside):
    plant(ctx.root.path / looped_copy / ".lock", outside / "made-by-alloop")

    with pytest.raises(PathEscapeError, match=r"\.lock is a symbolic link"):
        select_batch(SelectInput(run=looped_copy, redo=True), ctx)

    assert untouched(outside)


def test_results_spec_and_selection_links_are_refused_before_any_read(ctx, looped_copy, outside):
    run = ctx.root.path / looped_copy
    for name in ("results.tsv", "spec.json", "selection_round_01.jsonl"):
        (outside / name).write_bytes((run / name).read_bytes())
        plant(run / name, outside / name)

    with pytest.raises(PathEscapeError, match=r"results.tsv → .*selection_round_01.jsonl → .*spec.json → "):
        write_report(ReportInput(run=looped_copy), ctx)


def test_a_writer_refuses_a_folder_reached_through_a_link(tmp_path, outside):
    """The primitives refuse too, so a link planted after the run was opened is not followed either."""
    (tmp_path / "run").mkdir()
    os.symlink(outside, tmp_path / "run" / "models")

    with pytest.raises(PathEscapeError, match=REFUSED):
        atomic_write_text(tmp_path / "run" / "models" / "round_01" / "card.json", "{}")

    assert untouched(outside)
