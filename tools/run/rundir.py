"""RunRoot and RunDir: the only code that names a path inside a run (domain code asks them for it).

Writes are atomic (a fresh temp file in the same folder, fsync, rename) and never go through a
symbolic link (files.py); appends are flushed and fsynced; one writer at a time holds the run's
lock (a second one waits, with a bound), and everything a step writes while holding it stands or
falls together (journal.py): a kill is undone, and its leftovers repaired, when the run is next
opened (repair.py). Run names resolve inside the root. A run is never deleted by a tool: it is
archived (moved aside).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import inspect
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from alloop.tools.errors import (
    InputError,
    LockedError,
    PathEscapeError,
    RunNotFoundError,
    StateError,
    describe_validation,
)
from alloop.tools.run import files, journal
from alloop.tools.run.items import ItemTable
from alloop.tools.run.reader import parse_jsonl as parse_jsonl  # re-exported: where callers have always found it
from alloop.tools.run.reader import read_csv, read_json, read_jsonl
from alloop.tools.run.schema import LabelEvent, ResultRow, SelectionRow, TaskSpec, utc_now

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ROOT_ENV = "ALLOOP_ROOT"
LOCK_WAIT_ENV = "ALLOOP_LOCK_WAIT"
DEFAULT_LOCK_WAIT = 30.0
ARCHIVE_DIR = ".archive"
DRAFTS_DIR = ".drafts"
M = TypeVar("M", bound=BaseModel)


def default_root() -> Path:
    """The run root: $ALLOOP_ROOT, else ./runs."""
    return Path(os.environ.get(ROOT_ENV) or "runs")


def lock_wait() -> float:
    """How long a second writer waits for a run's lock: $ALLOOP_LOCK_WAIT seconds, else 30."""
    raw = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not raw:
        return DEFAULT_LOCK_WAIT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise InputError(f"${LOCK_WAIT_ENV} must be a number of seconds, 0 or more; got {raw!r}")
    return seconds


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so a reader sees the old content or the new, never half of it (and never through a link)."""
    files.write_bytes(path, data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, encodable(text, str(path)).encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def dump_jsonl(rows: Iterable[BaseModel | dict[str, Any]]) -> str:
    """JSON lines; a text no UTF-8 file can hold (a lone surrogate) is refused before anything is written."""
    lines = []
    for row in rows:
        data = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
        lines.append(json.dumps(data, ensure_ascii=False))
    text = "".join(line + "\n" for line in lines)
    encodable(text, "a row to write")
    return text


def encodable(text: str, what: str) -> str:
    """The text, if UTF-8 can store it; a lone surrogate (say, from a `\\ud800` escape) is an InputError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{what} holds a lone surrogate ({text[exc.start]!r}), which is not a character; fix or remove it"
        ) from None
    return text


def parse_rows(model: type[M], rows: Sequence[dict[str, Any]], where: str) -> list[M]:
    """Validate rows into a model; the first bad row is named with its line and field."""
    parsed = []
    for number, row in enumerate(rows, start=1):
        try:
            parsed.append(model.model_validate(row))
        except ValidationError as exc:
            raise InputError(describe_validation(exc, f"{where}:{number}", first_only=True)) from exc
    return parsed


class RunRoot:
    """The folder that holds runs; every run name resolves inside it or is refused."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.path = Path(root if root is not None else default_root()).expanduser().resolve()

    def resolve(self, name: str) -> Path:
        if not isinstance(name, str) or not RUN_NAME.match(name) or name in {".", ".."}:
            raise PathEscapeError(
                f"run name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (a run name, not a path)"
            )
        path = (self.path / name).resolve()
        if path.parent != self.path:
            raise PathEscapeError(f"run {name!r} resolves to {path}, outside the run root {self.path}")
        return path

    def run(self, name: str) -> RunDir:
        """An existing run."""
        path = self.resolve(name)
        if not self.exists(name):
            draft = self.draft(name)
            if draft is not None:
                raise RunNotFoundError(
                    f"run {name!r} is not created yet: its setup interview holds answers for "
                    f"{', '.join(sorted(draft)) or 'nothing'}; finish it with interview_spec "
                    "(answering the held-out question, or 'none', creates the run)"
                )
            known = ", ".join(self.names()) or "none"
            raise RunNotFoundError(
                f"no run {name!r} under {self.path} (runs here: {known}); create it with interview_spec "
                "(`alloop init` at the command line)"
            )
        run = RunDir(path)
        run.recover()
        return run

    def exists(self, name: str) -> bool:
        """Whether a run of that name has been created (its spec is written)."""
        return (self.resolve(name) / "spec.json").is_file()

    def remove(self, name: str) -> None:
        """Delete a run folder for good (the demo's --fresh); the name is checked like any other."""
        path = self.resolve(name)
        if path.exists():
            shutil.rmtree(path)

    def names(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if (p / "spec.json").is_file())

    # -- drafts: interview answers kept until the run is created ------------------------
    def draft_path(self, name: str) -> Path:
        return self.path / DRAFTS_DIR / f"{self.resolve(name).name}.json"

    def draft(self, name: str) -> dict[str, Any] | None:
        """The interview answers given so far for a run not created yet (None: no draft)."""
        path = self.draft_path(name)
        if not path.is_file():
            return None
        data = read_json(path)
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a JSON object of interview answers")
        return data

    def write_draft(self, name: str, answers: dict[str, Any]) -> None:
        atomic_write_json(self.draft_path(name), answers)

    def drop_draft(self, name: str) -> None:
        """Forget a draft once its run is created (the answers now live in spec.json)."""
        with contextlib.suppress(FileNotFoundError):
            self.draft_path(name).unlink()

    # -- archive: moved aside under the root, never deleted ------------------------------
    def archive(self, name: str) -> Path:
        """Move a run, or its unfinished interview draft, to .archive/<name>-<UTC time>; the name is free again.

        The run's lock is held while it moves, so a writer at work finishes first (or this waits, then fails).
        """
        if self.exists(name):
            run = self.run(name)
            with run.lock():
                target = self._archive_target(name, "")
                os.rename(run.path, target)
            return target
        if self.draft(name) is None:
            self.run(name)  # raises: no such run, naming the runs there are
        target = self._archive_target(name, ".draft.json")
        os.rename(self.draft_path(name), target)
        return target

    def archived(self) -> list[str]:
        """What .archive/ holds, by name (so by time within one run name)."""
        folder = self.path / ARCHIVE_DIR
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def _archive_target(self, name: str, suffix: str) -> Path:
        folder = self.path / ARCHIVE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        base = f"{self.resolve(name).name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
        target, n = folder / f"{base}{suffix}", 1
        while target.exists():
            n += 1
            target = folder / f"{base}-{n}{suffix}"
        return target

    def create(
        self,
        spec: TaskSpec,
        pool: ItemTable,
        heldout: ItemTable | None,
        labels: Sequence[LabelEvent] = (),
        prepare: Callable[[RunDir], None] | None = None,
    ) -> RunDir:
        """Make a new run in one step: it is built, labels and all, in a staging folder, then renamed.

        A kill before the rename leaves only the staging folder (the next create removes it); after
        it, the run is whole. Of two creates of one name, the one that loses the race gets a clear error.
        `prepare` fills the staged run further (imported embeddings) before its spec is written.
        """
        path = self.resolve(spec.run)
        if path.exists():
            raise InputError(f"run {spec.run!r} already exists at {path}; use another name or archive it (archive_run)")
        self.remove_stale_staging()
        staging = files.make_folder(self.path, f".{spec.run}.creating-")
        try:
            run = RunDir(staging)
            pool.write_parquet(run.pool_path)
            if heldout is not None:
                heldout.write_parquet(run.heldout_path)
            for sub in ("models", "cache"):
                (staging / sub).mkdir()
            atomic_write_text(run.labels_path, "")
            atomic_write_text(run.notes_path, f"# {spec.run}\n\nCreated {utc_now()}.\n")
            if labels:
                run.append_labels(labels)
            if prepare is not None:
                prepare(run)
            run.write_results([])
            atomic_write_json(run.spec_path, spec.model_dump(mode="json"))
            self._publish(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.drop_draft(spec.run)
        return RunDir(path)

    def _publish(self, staging: Path, path: Path) -> None:
        with files.open_folder(self.path) as folder:
            try:
                files.rename(staging.name, path.name, folder)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR):
                    raise
                raise InputError(
                    f"run {path.name!r} was created by another call while this one prepared it; use it "
                    "(status), or archive it (archive_run) and create it again"
                ) from exc
            files.fsync(folder)

    def remove_stale_staging(self) -> None:
        """Staging folders of creates that were killed, and draft temp files of killed writers."""
        for folder, stale in ((self.path, files.is_stale_folder), (self.path / DRAFTS_DIR, files.is_stale_temp)):
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if folder == self.path and ".creating-" not in entry.name:
                    continue
                if folder != self.path and not entry.name.endswith(files.TEMP_SUFFIX):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                    if not entry.name.startswith(".") or not stale(entry.name, mtime):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)


class RunDir:
    """One run's folder. Ask it for files; never build run paths elsewhere."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool: ItemTable | None = None
        self._heldout: ItemTable | None = None

    # -- paths ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def spec_path(self) -> Path:
        return self.path / "spec.json"

    @property
    def pool_path(self) -> Path:
        return self.path / "pool.parquet"

    @property
    def heldout_path(self) -> Path:
        return self.path / "heldout.parquet"

    @property
    def labels_path(self) -> Path:
        return self.path / "labels.jsonl"

    @property
    def results_path(self) -> Path:
        return self.path / "results.tsv"

    @property
    def notes_path(self) -> Path:
        return self.path / "notes.md"

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    def round_file(self, kind: str, round_: int, suffix: str = "jsonl") -> Path:
        """`<kind>_round_XX.<suffix>`, e.g. selection_round_03.jsonl."""
        if round_ < 0 or round_ > 99:
            raise InputError(f"round {round_} is out of range 0..99")
        return self.path / f"{kind}_round_{round_:02d}.{suffix}"

    @property
    def models_dir(self) -> Path:
        return self.path / "models"

    def model_dir(self, round_: int) -> Path:
        return self.models_dir / f"round_{round_:02d}"

    def embeddings_dir(self, encoder_key: str) -> Path:
        """The embedding cache of one encoder (its key names the model and its settings)."""
        return self.cache_dir / "embeddings" / encoder_key

    @property
    def judge_cache_path(self) -> Path:
        return self.cache_dir / "judge_cache.jsonl"

    @property
    def report_path(self) -> Path:
        return self.path / "report.md"

    def plot_path(self, name: str) -> Path:
        """A figure of the report, e.g. plot_path("learning_curve") -> learning_curve.png."""
        return self.inside(f"{name}.png")

    def experiment_dir(self, name: str) -> Path:
        """experiments/<name>/: a built jsPsych experiment."""
        return self.inside(f"experiments/{name}")

    def experiment_archive(self, name: str) -> Path:
        """experiments/<name>.jzip: the experiment packed as a JATOS study archive."""
        return self.inside(f"experiments/{name}.jzip")

    def inside(self, relative: str | Path) -> Path:
        """A path inside the run folder, refused if it escapes (`..`, absolute, symlink)."""
        candidate = (self.path / relative).resolve()
        if not candidate.is_relative_to(self.path.resolve()):
            raise PathEscapeError(f"{relative!s} leaves the run folder {self.path}")
        return candidate

    # -- lock ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, wait: float | None = None) -> Iterator[None]:
        """Hold the run's single-writer lock (an flock, so a crashed holder never keeps it).

        A second writer, in this process or another, waits up to `wait` seconds ($ALLOOP_LOCK_WAIT,
        default 30), then fails naming the holder and how long it waited. The holder is written
        into the lock file while it is held, and cleared on release.
        """
        bound = lock_wait() if wait is None else wait
        handle = os.fdopen(files.open_lock_file(self.path), "a+", encoding="utf-8")
        try:
            started = time.monotonic()
            if not _flock_within(handle, bound):
                raise LockedError(self._busy_message(handle, time.monotonic() - started))
            if not _same_file(handle, self.path / ".lock"):
                raise RunNotFoundError(f"run {self.name!r} was archived while this call waited for it")
            previous = _read_holder(handle)
            holder = _write_holder(handle)
            try:
                self._repair(previous)
                steps, token = journal.begin(self.path, holder)
                try:
                    yield
                except Exception:
                    steps.commit()  # a step that fails keeps what it wrote, as it always did
                    raise
                except BaseException:
                    raise  # an interruption (Ctrl-C, a cancelled call) is undone by the next open, like a kill
                else:
                    steps.commit()
                finally:
                    journal.end(token)
            finally:
                handle.truncate(0)
        finally:
            handle.close()

    def recover(self) -> list[str]:
        """Repair what a kill left in this run, if no step holds it now (a holder repaired it when it took it)."""
        try:
            handle = os.fdopen(files.open_lock_file(self.path), "a+", encoding="utf-8")
        except OSError:
            return []  # a read-only run: nothing can be repaired, and nothing is written
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return []
            try:
                done = self._repair(_read_holder(handle))
                if handle.tell():
                    handle.truncate(0)  # the holder named there is gone
                return done
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _repair(self, interrupted: dict[str, Any] | None) -> list[str]:
        from alloop.tools.run.repair import repair

        return repair(self, interrupted)

    def _busy_message(self, handle: Any, waited: float) -> str:
        handle.seek(0)
        try:
            holder = json.loads(handle.read() or "{}")
        except json.JSONDecodeError:
            holder = {}
        pid, host, tool = holder.get("pid"), holder.get("host"), holder.get("tool")
        call = f"the {tool} call" if tool else "a call"
        if pid == os.getpid() and host == socket.gethostname():
            who = f"{call} in this same process (pid {pid})"
        elif pid is not None:
            who = f"{call} in another alloop process (pid {pid} on {host})"
        else:
            who = "another alloop call"
        since = holder.get("since")
        held = f" since {since}" if since else ""
        return (
            f"run {self.name!r} is busy: {who} has held its lock{held}; waited {waited:.1f} s for it "
            f"(${LOCK_WAIT_ENV} sets the bound). Try again when that call ends, or call status to see where it stands"
        )

    # -- spec ----------------------------------------------------------------------------
    def spec(self) -> TaskSpec:
        try:
            return TaskSpec.model_validate(read_json(self.spec_path))
        except ValidationError as exc:
            raise InputError(describe_validation(exc, str(self.spec_path), first_only=True)) from exc

    def write_spec(self, spec: TaskSpec, reason: str) -> TaskSpec:
        """Replace spec.json with a new version; the old one goes to spec_history.jsonl."""
        old = self.spec()
        new = spec.model_copy(update={"spec_version": old.spec_version + 1, "updated": utc_now()})
        new = TaskSpec.model_validate(new.model_dump())
        entry = {"replaced_at": utc_now(), "reason": reason, "spec": old.model_dump(mode="json")}
        self._append_text(self.path / "spec_history.jsonl", json.dumps(entry, ensure_ascii=False) + "\n")
        atomic_write_json(self.spec_path, new.model_dump(mode="json"))
        self.append_note(f"spec v{old.spec_version} → v{new.spec_version}: {reason}")
        return new

    # -- items ---------------------------------------------------------------------------
    def pool(self) -> ItemTable:
        if self._pool is None:
            self._pool = ItemTable.read_parquet(self.pool_path)
        return self._pool

    def heldout(self) -> ItemTable | None:
        if not self.heldout_path.is_file():
            return None
        if self._heldout is None:
            self._heldout = ItemTable.read_parquet(self.heldout_path)
        return self._heldout

    def heldout_gold(self) -> dict[str, Any]:
        """Held-out item → its gold label (empty when the run has no held-out set with labels)."""
        heldout = self.heldout()
        if heldout is None or not heldout.has("label"):
            return {}
        return dict(zip(heldout.ids, heldout.column("label"), strict=True))

    # -- labels --------------------------------------------------------------------------
    def labels(self) -> list[LabelEvent]:
        return parse_rows(LabelEvent, read_jsonl(self.labels_path), str(self.labels_path))

    def append_labels(self, events: Sequence[LabelEvent]) -> list[LabelEvent]:
        """Append label events; ones already recorded (same event or external id) are skipped.

        Each new event also goes to annotation_round_XX.jsonl for its round. Returns what was new.
        """
        existing = self.labels()
        seen_events = {e.event_id for e in existing}
        seen_external = {(e.destination, e.external_id) for e in existing if e.external_id}
        heldout = self.heldout()
        known_items = set(self.pool().ids) | set(heldout.ids if heldout is not None else [])
        fresh: list[LabelEvent] = []
        for event in events:
            if event.item_id not in known_items:
                raise InputError(
                    f"label for unknown item {event.item_id!r}: it is in neither the pool nor held-out set"
                )
            key = (event.destination, event.external_id)
            if event.event_id in seen_events or (event.external_id and key in seen_external):
                continue
            seen_events.add(event.event_id)
            if event.external_id:
                seen_external.add(key)
            fresh.append(event)
        if not fresh:
            return []
        by_round: dict[int, list[LabelEvent]] = {}
        for event in fresh:
            by_round.setdefault(event.round, []).append(event)
        round_files = {round_: self.round_file("annotation", round_) for round_ in by_round}  # checked before writing
        self._append_text(self.labels_path, dump_jsonl(fresh))
        for round_, round_events in sorted(by_round.items()):
            self._append_text(round_files[round_], dump_jsonl(round_events))
        return fresh

    # -- selections ----------------------------------------------------------------------
    def write_selection(self, round_: int, rows: Sequence[SelectionRow]) -> Path:
        path = self.round_file("selection", round_)
        atomic_write_text(path, dump_jsonl(rows))
        return path

    def selection(self, round_: int) -> list[SelectionRow]:
        path = self.round_file("selection", round_)
        if not path.is_file():
            raise StateError(f"run {self.name!r} has no selection for round {round_}; run select_batch first")
        return parse_rows(SelectionRow, read_jsonl(path), str(path))

    def selection_rounds(self) -> list[int]:
        return sorted(int(p.stem.rsplit("_", 1)[1]) for p in self.path.glob("selection_round_[0-9][0-9].jsonl"))

    def latest_selection_round(self, default: int = 0) -> int:
        """The newest round with a selection file, or `default` when nothing was selected yet."""
        rounds = self.selection_rounds()
        return rounds[-1] if rounds else default

    # -- destinations --------------------------------------------------------------------
    @property
    def destinations_path(self) -> Path:
        return self.path / "destinations.json"

    def destinations(self) -> dict[str, Any]:
        """Where this run's batches went, per destination (say, an Argilla dataset and
        workspace). Names and ids only: never a service URL or a key."""
        if not self.destinations_path.is_file():
            return {}
        data = read_json(self.destinations_path)
        if not isinstance(data, dict):
            raise InputError(f"{self.destinations_path}: expected a JSON object")
        return data

    def write_destination(self, name: str, info: dict[str, Any]) -> None:
        """Replace one destination's entry in destinations.json (atomic)."""
        data = self.destinations()
        data[name] = info
        atomic_write_json(self.destinations_path, data)

    # -- judge ---------------------------------------------------------------------------
    def append_judge(self, round_: int, rows: Sequence[BaseModel | dict[str, Any]]) -> Path:
        path = self.round_file("judge", round_)
        self._append_text(path, dump_jsonl(rows))
        return path

    def judge_rows(self, round_: int) -> list[dict[str, Any]]:
        """The lines of judge_round_XX.jsonl (empty when the round has no judgments)."""
        path = self.round_file("judge", round_)
        return read_jsonl(path) if path.is_file() else []

    def judge_rounds(self) -> list[int]:
        return sorted(int(p.stem.rsplit("_", 1)[1]) for p in self.path.glob("judge_round_[0-9][0-9].jsonl"))

    # -- results -------------------------------------------------------------------------
    def results(self) -> list[ResultRow]:
        if not self.results_path.is_file():
            return []
        rows = read_csv(self.results_path, delimiter="\t")
        cleaned = [{k: v for k, v in row.items() if v not in ("", None)} for row in rows]
        return parse_rows(ResultRow, cleaned, str(self.results_path))

    def upsert_result(self, row: ResultRow) -> None:
        """Write a round's row, replacing an earlier row of the same round (a redone round)."""
        rows = [r for r in self.results() if r.round != row.round] + [row]
        self.write_results(sorted(rows, key=lambda r: r.round))

    def update_result(self, round_: int, **fields: Any) -> None:
        """Fill in columns of an existing round's row (say, the stopping decision)."""
        rows = self.results()
        for index, row in enumerate(rows):
            if row.round == round_:
                rows[index] = ResultRow.model_validate({**row.model_dump(), **fields})
                self.write_results(rows)
                return
        raise StateError(f"results.tsv has no row for round {round_}; train that round first")

    def write_results(self, rows: Sequence[ResultRow]) -> None:
        columns = ResultRow.columns()
        lines = ["\t".join(columns)]
        for row in rows:
            data = row.model_dump(mode="json")
            lines.append("\t".join(_tsv_cell(data[c]) for c in columns))
        atomic_write_text(self.results_path, "\n".join(lines) + "\n")

    # -- notes ---------------------------------------------------------------------------
    def append_note(self, text: str) -> None:
        self._append_text(self.notes_path, f"\n- {utc_now()} {text.strip()}\n")

    # -- plumbing ------------------------------------------------------------------------
    @staticmethod
    def _append_text(path: Path, text: str) -> None:
        """Append and fsync, never through a link; a torn line a kill leaves is set aside on the next open."""
        files.append_text(path, text)


def _flock_within(handle: Any, seconds: float) -> bool:
    """Take an exclusive flock, retrying until `seconds` have passed; False if it stayed busy."""
    deadline = time.monotonic() + seconds
    delay = 0.02
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.5)


def _same_file(handle: Any, path: Path) -> bool:
    """Whether the open lock file is still the one at `path` (not moved away by an archive)."""
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _calling_tool() -> str | None:
    """The outermost tool function on this thread's stack (a tool module defines SPEC), or None."""
    frame, tool = inspect.currentframe(), None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("alloop.tools.") and module.count(".") == 2 and "SPEC" in frame.f_globals:
            tool = frame.f_code.co_name
        frame = frame.f_back
    return tool


def _read_holder(handle: Any) -> dict[str, Any] | None:
    """Who held the lock before: set only when that holder was killed (a release clears it)."""
    handle.seek(0)
    try:
        holder = json.loads(handle.read() or "null")
    except json.JSONDecodeError:
        return {}
    return holder if isinstance(holder, dict) else None


def _write_holder(handle: Any) -> dict[str, Any]:
    """Say in the lock file who holds it, so a waiting writer can tell whom it waits for."""
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "tool": _calling_tool(), "since": utc_now()}
    handle.truncate(0)
    handle.write(json.dumps(holder))
    handle.flush()
    return holder


def _tsv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("\t", " ").replace("\n", " ")
