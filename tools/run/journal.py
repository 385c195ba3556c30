"""The undo journal: one step's writes (everything done under one hold of the run's lock) stand or fall together.

Before each write the old state is recorded in `.journal/log.jsonl` and fsynced: the old file kept
as a hard link (a replaced file), its length (an append), or the file itself moved aside (a removal).
The step commits when it lets go of the lock: the log is deleted. A kill (or an interruption such as
Ctrl-C or a cancelled call) leaves the log, and the next open of the run undoes the whole step, newest
write first, so a run is never left with a card but no results row, or labels but no round file.

The embedding cache (crash-safe on its own, and minutes to rebuild) and notes.md (a lock-free log
of what happened) are not journaled.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from contextvars import ContextVar
from pathlib import Path, PurePosixPath
from typing import Any

JOURNAL_DIR = ".journal"
LOG = "log.jsonl"
UNJOURNALED = frozenset({"cache", "notes.md", ".lock", JOURNAL_DIR})

_ACTIVE: ContextVar[Journal | None] = ContextVar("alloop_run_journal", default=None)


class Journal:
    """The undo log of the step that holds one run's lock (in this thread)."""

    def __init__(self, run_path: Path, holder: dict[str, Any] | None = None) -> None:
        self.run_path = run_path
        self.folder = run_path / JOURNAL_DIR
        self.count = 0
        self.holder = holder or {}
        self.begun = False

    def relative(self, path: Path) -> str | None:
        """The path inside the run, or None when it is not journaled (outside the run, cache, notes)."""
        try:
            rel = PurePosixPath(Path(os.path.abspath(path)).relative_to(self.run_path).as_posix())
        except ValueError:
            return None
        if not rel.parts or rel.parts[0] in UNJOURNALED:
            return None
        return str(rel)

    def _record(self, entry: dict[str, Any]) -> None:
        from alloop.tools.run import files

        lines = [entry] if self.begun else [{"op": "begin", **self.holder}, entry]  # who wrote: for the note
        with files.open_folder(self.folder, create=True) as folder:
            fd = os.open(LOG, files.APPEND, 0o600, dir_fd=folder)
            try:
                os.write(fd, "".join(json.dumps(line) + "\n" for line in lines).encode())
                files.fsync(fd)
            finally:
                os.close(fd)
        self.begun = True

    def _backup_name(self) -> str:
        self.count += 1
        return f"{self.count:05d}"

    def before_put(self, rel: str, name: str, folder: int) -> None:
        from alloop.tools.run import files

        backup = None
        try:
            info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            info = None
        if info is not None and stat.S_ISDIR(info.st_mode):
            return  # the rename onto a folder fails; there is nothing to undo
        if info is not None:
            backup = self._backup_name()
            with files.open_folder(self.folder, create=True) as store:
                os.link(name, backup, src_dir_fd=folder, dst_dir_fd=store, follow_symlinks=False)
        self._record({"op": "put", "path": rel, "backup": backup})

    def before_append(self, rel: str, name: str, folder: int) -> None:
        try:
            size = os.stat(name, dir_fd=folder, follow_symlinks=False).st_size
        except FileNotFoundError:
            size = -1
        self._record({"op": "append", "path": rel, "size": size})

    def move_aside(self, rel: str, name: str, folder: int) -> None:
        from alloop.tools.run import files

        backup = self._backup_name()
        self._record({"op": "move", "path": rel, "backup": backup})
        with files.open_folder(self.folder, create=True) as store:
            files.rename(name, backup, folder, store)

    def before_place(self, rel: str) -> None:
        self._record({"op": "place", "path": rel})

    def commit(self) -> None:
        """The step is done: forget how to undo it (removing the log is the commit point, made durable)."""
        log = self.folder / LOG
        if log.exists():
            log.unlink()
            fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)


def begin(run_path: Path, holder: dict[str, Any] | None = None) -> tuple[Journal, Any]:
    """Start journaling this thread's writes into `run_path` (the run's lock is held by `holder`)."""
    journal = Journal(run_path, holder)
    return journal, _ACTIVE.set(journal)


def end(token: Any) -> None:
    _ACTIVE.reset(token)


def _covering(path: Path) -> tuple[Journal, str] | None:
    journal = _ACTIVE.get()
    if journal is None:
        return None
    rel = journal.relative(path)
    return None if rel is None else (journal, rel)


def before_put(path: Path, folder: int) -> None:
    """Record the old version of `path` before it is replaced (no-op outside a journaled step)."""
    found = _covering(path)
    if found is not None:
        found[0].before_put(found[1], path.name, folder)


def before_append(path: Path, folder: int) -> None:
    found = _covering(path)
    if found is not None:
        found[0].before_append(found[1], path.name, folder)


def move_aside(path: Path, folder: int) -> bool:
    """Move `path` into the journal instead of deleting it; False outside a journaled step."""
    found = _covering(path)
    if found is None:
        return False
    found[0].move_aside(found[1], path.name, folder)
    return True


def before_place(path: Path, folder: int) -> None:
    found = _covering(path)
    if found is not None:
        found[0].before_place(found[1])


def pending(run_path: Path) -> bool:
    """Whether an interrupted step left its journal (or a committed step its leftovers)."""
    return os.path.lexists(run_path / JOURNAL_DIR)


def undo(run_path: Path) -> dict[str, Any] | None:
    """Undo an interrupted step from its log, newest write first; who held the lock then, or None if nothing.

    Safe to repeat: a kill during the undo leaves a log whose second undo ends in the same state.
    """
    folder = run_path / JOURNAL_DIR
    if folder.is_symlink():
        folder.unlink()
        return None
    log = folder / LOG
    if not log.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        return None
    entries, holder = [], {}
    for line in log.read_bytes().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("op") == "begin":
                holder = entry
            elif isinstance(entry, dict) and _safe(entry.get("path")):
                entries.append(entry)  # a torn last line is a write that never began
    for entry in reversed(entries):
        _undo_one(run_path, folder, entry)
    log.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    return holder


def _safe(rel: object) -> bool:
    if not isinstance(rel, str) or not rel:
        return False
    parts = PurePosixPath(rel).parts
    return not PurePosixPath(rel).is_absolute() and ".." not in parts and parts[0] not in UNJOURNALED


def _undo_one(run_path: Path, store_path: Path, entry: dict[str, Any]) -> None:
    from alloop.tools.run import files

    target = run_path / entry["path"]
    try:
        with files.open_folder(target.parent) as folder, files.open_folder(store_path) as store:
            name, op, backup = target.name, entry.get("op"), entry.get("backup")
            has_backup = isinstance(backup, str) and os.path.lexists(store_path / backup)
            if op in ("put", "move") and has_backup:
                if os.path.isdir(target) and not os.path.islink(target):
                    _drop(name, folder)  # a rename replaces a file, not a folder
                files.rename(backup, name, store, folder)
            elif op in ("put", "place") and backup is None:
                _drop(name, folder)
            elif op == "append":
                _truncate(name, folder, int(entry.get("size", -1)))
            files.fsync(folder)
    except FileNotFoundError:
        return  # the folder never came to be: nothing of this write is there to undo


def _drop(name: str, folder: int) -> None:
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, dir_fd=folder)
    else:
        os.unlink(name, dir_fd=folder)


def _truncate(name: str, folder: int, size: int) -> None:
    from alloop.tools.run import files

    if size < 0:
        _drop(name, folder)
        return
    try:
        fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
    except FileNotFoundError:
        return
    try:
        if os.fstat(fd).st_size > size:
            os.ftruncate(fd, size)
            files.fsync(fd)
    finally:
        os.close(fd)
