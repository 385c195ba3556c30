"""Repair on open: what a kill can leave in a run is brought back to a consistent state, without a person.

Run with the run's lock held, before any step (and by `RunRoot.run` when no step holds the run):
0. a symbolic link where a run file or folder belongs is refused (one with a temp file's name is removed);
1. an interrupted step is undone from its journal (journal.py);
2. temp files and staging folders of writers that are gone are removed;
3. a torn last line of an append-only log (a write cut off mid-line) is set aside in `<file>.torn-<time>`;
4. derived files are rebuilt from the source of truth: annotation_round_XX.jsonl from labels.jsonl,
   a missing results.tsv row from its round's model card, and predictions made by another model dropped.
Each repair is said in notes.md. Every check is cheap when there is nothing to repair.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alloop.tools.errors import PathEscapeError
from alloop.tools.run import files, journal

if TYPE_CHECKING:
    from alloop.tools.run.rundir import RunDir

APPEND_LOGS = ("labels.jsonl", "spec_history.jsonl", "judge_round_[0-9][0-9].jsonl")
ENCODER_STAGING = ".round_[0-9][0-9]_encoder.*"


def repair(run: RunDir, interrupted: dict[str, Any] | None = None) -> list[str]:
    """Repair what a kill left behind; returns what was done (also appended to notes.md)."""
    refuse_links(run)
    done: list[str] = []
    undone = journal.undo(run.path)
    if undone is not None:
        tool = undone.get("tool") or (interrupted or {}).get("tool")
        who = f"the interrupted {tool} call" if tool else "an interrupted call"
        done.append(f"undid the writes of {who} (it can simply be run again)")
    removed = remove_leftovers(run)
    if removed:
        done.append(f"removed {removed} temp or staging file(s) of killed writers")
    done += set_aside_torn_tails(run)
    done += rebuild_annotation_rounds(run)
    done += restore_results_rows(run)
    done += drop_stale_predictions(run)
    if done:
        run.append_note("repair after an interrupted step: " + "; ".join(done))
    return done


def _folders(run: RunDir) -> list[Path]:
    """The folders alloop's steps write temp files into."""
    folders = [run.path, run.models_dir, run.cache_dir, run.cache_dir / "embeddings"]
    folders += sorted(run.models_dir.glob("round_[0-9][0-9]"))
    folders += sorted((run.cache_dir / "embeddings").glob("*"))
    return [f for f in folders if f.is_dir() and not f.is_symlink()]


def refuse_links(run: RunDir) -> None:
    """No step may start in a run with a planted link among its files: it would read or write elsewhere.

    A link named like a temp file is junk, not a run file: it is removed (alloop's temp names are fresh
    each time, so such a link could never be written through anyway).
    """
    found = []
    for folder in _folders(run):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if not entry.is_symlink():
                continue
            if entry.name.startswith(".") and entry.name.endswith(files.TEMP_SUFFIX):
                os.unlink(entry.path)
                continue
            found.append(f"{Path(entry.path).relative_to(run.path)} → {os.readlink(entry.path)}")
    if found:
        raise PathEscapeError(
            f"run {run.name!r} has symbolic links where its own files belong ({', '.join(found)}); alloop never "
            "reads or writes a run through a link: replace each link with the file or folder itself, or remove it"
        )


def remove_leftovers(run: RunDir) -> int:
    """Temp files whose writer is gone, and encoder staging folders (the lock is held, so no training runs)."""
    removed = 0
    for folder in _folders(run):
        for entry in os.scandir(folder):
            if not entry.name.endswith(files.TEMP_SUFFIX) or not entry.name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False) and files.is_stale_temp(
                    entry.name, entry.stat(follow_symlinks=False).st_mtime
                ):
                    os.unlink(entry.path)
                    removed += 1
    if run.models_dir.is_dir() and not run.models_dir.is_symlink():
        for staging in run.models_dir.glob(ENCODER_STAGING):
            if staging.is_symlink():
                staging.unlink()
            else:
                shutil.rmtree(staging, ignore_errors=True)
            removed += 1
    return removed


def set_aside_torn_tails(run: RunDir) -> list[str]:
    """A log whose last line has no newline was cut off mid-write: that line moves to `<file>.torn-<time>`."""
    done = []
    for pattern in APPEND_LOGS:
        for path in sorted(run.path.glob(pattern)):
            if path.is_symlink() or not path.is_file():
                continue
            kept = _set_aside(path)
            if kept is not None:
                done.append(
                    f"{path.name} ended in a torn line ({kept[0]} bytes, cut off by a kill); it was set aside "
                    f"in {kept[1]} and the file ends at its last whole line"
                )
    return done


def _set_aside(path: Path) -> tuple[int, str] | None:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return None
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return None
        start = max(0, size - (1 << 20))
        while True:  # find the last newline, reading back in 1 MiB steps
            handle.seek(start)
            chunk = handle.read(size - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            if start == 0:
                keep = 0
                break
            start = max(0, start - (1 << 20))
        handle.seek(keep)
        tail = handle.read()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.torn-{stamp}")
    files.write_bytes(aside, tail)
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, keep)
        files.fsync(fd)
    finally:
        os.close(fd)
    return len(tail), aside.name


def _round_files(run: RunDir) -> list[Path]:
    return sorted(run.path.glob("annotation_round_[0-9][0-9].jsonl"))


def rebuild_annotation_rounds(run: RunDir) -> list[str]:
    """annotation_round_XX.jsonl hold labels.jsonl's lines of their round; rebuilt when the sizes disagree."""
    labels = run.labels_path
    if not labels.is_file() or labels.is_symlink():
        return []
    rounds = _round_files(run)
    if labels.stat().st_size == sum(p.lstat().st_size for p in rounds):
        return []
    by_round: dict[int, list[bytes]] = {}
    for line in labels.read_bytes().splitlines(keepends=True):
        if not line.strip():
            continue
        try:
            round_ = int(json.loads(line)["round"])
        except (ValueError, KeyError, TypeError):
            return []  # a malformed log is for the reader to report, line and all
        if not 0 <= round_ <= 99:
            return []
        by_round.setdefault(round_, []).append(line)
    changed = []
    for round_, lines in sorted(by_round.items()):
        path = run.round_file("annotation", round_)
        content = b"".join(lines)
        if not path.is_file() or path.is_symlink() or path.read_bytes() != content:
            files.write_bytes(path, content)
            changed.append(round_)
    for path in rounds:
        if int(path.stem.rsplit("_", 1)[1]) not in by_round:
            files.remove(path)
            changed.append(int(path.stem.rsplit("_", 1)[1]))
    if not changed:
        return []
    return [f"annotation_round files of rounds {sorted(set(changed))} rebuilt from labels.jsonl"]


def restore_results_rows(run: RunDir) -> list[str]:
    """A round with a model card but no results.tsv row (or a row of another model) gets its row from the card."""
    from alloop.tools.errors import AlloopError
    from alloop.tools.run.models import ModelDir, model_rounds

    try:
        rows = {row.round: row for row in run.results()}
    except AlloopError:
        return []
    restored = []
    for round_ in model_rounds(run):
        try:
            card = ModelDir(run, round_).card()
        except (AlloopError, ValueError, OSError):
            continue
        version = card.get("model_version")
        if not isinstance(version, str) or (round_ in rows and rows[round_].model_version == version):
            continue
        rows[round_] = row_from_card(card, round_)
        restored.append(round_)
    if not restored:
        return []
    run.write_results([rows[r] for r in sorted(rows)])
    return [f"results.tsv rows of rounds {restored} restored from their model cards"]


def row_from_card(card: dict[str, Any], round_: int) -> Any:
    """A results row from what a model card records (timings it does not keep stay empty)."""
    from alloop.tools.run.schema import ResultRow

    fields = set(ResultRow.model_fields)
    figures = {
        k: v
        for part in ("cv", "gold")
        for k, v in (card.get(part) or {}).items()
        if k in fields and (v is None or isinstance(v, int | float | str))
    }
    training = card.get("encoder_training")
    data = {
        **figures,
        "round": round_,
        "model_version": card["model_version"],
        "training_strategy": str(card.get("training_strategy") or ""),
        "decision_source": str(card.get("decision_source") or ""),
        "encoder_training": str(training.get("kind", "")) if isinstance(training, dict) else "",
        "final": bool(card.get("final", False)),
        "n_labeled": int(card.get("n_labeled") or 0),
    }
    try:
        return ResultRow.model_validate(data)
    except ValueError:
        return ResultRow(round=round_, model_version=card["model_version"])


def drop_stale_predictions(run: RunDir) -> list[str]:
    """Scores made by another model than the round's card names are removed; score_pool makes them anew."""
    import numpy as np

    from alloop.tools.run.models import ModelDir, model_rounds

    dropped = []
    for round_ in model_rounds(run, "predictions"):
        model = ModelDir(run, round_)
        try:
            version = model.card().get("model_version") if model.has_card() else None
            with np.load(model.predictions_path, allow_pickle=False) as data:
                made_by = str(data["model_version"]) if "model_version" in data.files else None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # an unreadable file is the reader's to report
            continue
        if version is not None and made_by is not None and made_by != version:
            files.remove(model.predictions_path)
            dropped.append(round_)
    return [f"predictions of rounds {dropped} were made by an older model and were removed"] if dropped else []
