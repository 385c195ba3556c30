"""The W&B side of a sync: one W&B run per alloop run, resumed by a stable id, its files in `<run>/wandb/`.

The session captures no console (stdout is the MCP channel) and collects no git state, code,
requirements, system metrics or machine information; W&B's own error reporting is off unless the
user set WANDB_ERROR_REPORTING. For the session, W&B's cache and staging folders (WANDB_CACHE_DIR,
WANDB_DATA_DIR) point into `<run>/wandb/`, and its service process is shut down afterwards so none
outlives the sync. The key is never passed or written by alloop: W&B reads $WANDB_API_KEY itself,
and any error text is scrubbed of secrets. A failed offline sync removes the folder it began.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from alloop.tools.errors import ServiceError
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import TaskSpec, TrackingMode
from alloop.tools.secrets import scrub
from alloop.tools.tracking import ledger
from alloop.tools.tracking.mode import ready, wandb_run_id
from alloop.tools.tracking.plan import Content, Figure, contents, plan

_SESSION = threading.Lock()
"""One W&B session at a time in this process: W&B's state and the environment it reads are global."""
PRIVATE_CONFIG = {"guidelines", "data_source", "pool_file", "heldout", "answered", "tracking", "created", "updated"}
"""Spec fields kept out of the W&B config: free text and local paths say nothing about the model."""


def _public_config(spec: Any) -> dict[str, Any]:
    """The spec for W&B's config: no free text or local paths (an encoder given as a path shows its folder name)."""
    config = spec.model_dump(mode="json", exclude=PRIVATE_CONFIG)
    encoder = config["model"]["encoder"]
    if Path(encoder).expanduser().exists():
        config["model"]["encoder"] = Path(encoder).name
    return config


class SyncResult(BaseModel):
    """What a sync did: rounds logged now, before, and still open; where the files went."""

    run: str
    mode: TrackingMode
    project: str | None = None
    entity: str | None = None
    wandb_run_id: str | None = None
    logged: list[int] = []
    done: list[int] = []
    pending: list[int] = []
    batches: int = 0
    figures: int = 0
    folder: str | None = None
    """The offline folder this sync wrote, relative to the run."""
    url: str | None = None

    def summary(self) -> str:
        if self.mode == "off":
            return f"W&B tracking is off for run {self.run} (`alloop track {self.run} --wandb offline` turns it on)."
        where = f"{self.entity}/{self.project}" if self.entity else f"project {self.project}"
        lines = []
        if self.logged:
            line = (
                f"W&B {self.mode} ({where}): logged round(s) {_rounds(self.logged)} with {self.batches} batch "
                f"table(s) and {self.figures} figure(s)"
            )
            if self.folder:
                line += f" to {self.folder}; upload from the run folder with `wandb sync wandb/offline-run-*`"
            if self.url:
                line += f" at {self.url}"
            lines.append(line + ".")
        else:
            before = f" (round(s) {_rounds(self.done)} logged before)" if self.done else ""
            lines.append(f"W&B {self.mode} ({where}): nothing new to log{before}.")
        if self.pending:
            lines.append(
                f"Round {_rounds(self.pending)} waits until the next round begins or check_convergence says stop."
            )
        return "\n".join(lines)


def sync(run: RunDir, baseline: RunDir | None = None) -> SyncResult:
    """Log every settled round not logged yet to this run's W&B run; nothing when tracking is off.

    Holds the run's lock, so two syncs never log the same round; `baseline` is drawn in the
    learning-curve figure as the report draws it.
    """
    mode = ready(run.spec())
    if mode == "off":
        return SyncResult(run=run.name, mode=mode)
    with run.lock():
        spec = run.spec()
        record = ledger.load(run, wandb_run_id(spec))
        destination = record.destination(mode, spec.tracking)
        steps = plan(run, destination.steps)
        result = SyncResult(
            run=run.name,
            mode=mode,
            project=spec.tracking.project,
            entity=spec.tracking.entity,
            wandb_run_id=record.wandb_run_id,
            done=steps.done,
            pending=steps.pending,
        )
        if not steps.ready:
            return result
        found = contents(run, spec, steps.ready, baseline)
        folder, url = _log(run, spec, record.wandb_run_id, mode, found)
        destination.syncs.append(ledger.Sync(steps=steps.ready, folder=folder))
        ledger.save(run, record)
    return result.model_copy(
        update={
            "logged": steps.ready,
            "batches": sum(c.batch is not None for c in found),
            "figures": sum(len(c.figures) for c in found),
            "folder": folder,
            "url": url,
        }
    )


def _log(
    run: RunDir, spec: TaskSpec, run_id: str, mode: TrackingMode, found: list[Content]
) -> tuple[str | None, str | None]:
    """One W&B session that logs each step in order; returns the offline folder (run-relative) and the URL."""
    home = ledger.folder(run)
    home.mkdir(exist_ok=True)
    with _SESSION, _environment(run):
        import wandb  # here: W&B reads the environment set just above when it first starts

        session = None
        try:
            session = wandb.init(
                project=spec.tracking.project,
                entity=spec.tracking.entity,
                id=run_id,
                name=spec.run,
                resume="allow",
                dir=str(home.parent),
                config=_public_config(spec),
                tags=["alloop", spec.task_type],
                job_type="active-learning",
                reinit="create_new",
                settings=_settings(wandb, mode),
            )
            written = Path(session.settings.sync_dir).resolve()
            if not written.is_relative_to(home):
                raise RuntimeError(f"W&B chose {written} for its files, outside {home}; make {home} writable")
            for content in found:
                session.log(_payload(wandb, content), step=content.step)
            session.finish()
        except Exception as exc:
            if session is not None:
                _abandon(wandb, session, mode, home)
            raise ServiceError(
                scrub(
                    f"W&B sync of run {run.name!r} failed, nothing was recorded as logged: {exc}; fix that and "
                    f"run `alloop track {run.name}` to try again"
                )
            ) from None
        finally:
            wandb.teardown()
            _drop_links(home)
    relative = written.relative_to(home.parent).as_posix() if mode == "offline" else None
    return relative, session.url if mode == "online" else None


def _settings(wandb: Any, mode: TrackingMode) -> Any:
    return wandb.Settings(
        mode=mode,
        console="off",
        silent=True,
        symlink=False,
        disable_git=True,
        save_code=False,
        disable_code=True,
        disable_job_creation=True,
        x_disable_stats=True,
        x_disable_meta=True,
        x_disable_machine_info=True,
        x_save_requirements=False,
    )


def _payload(wandb: Any, content: Content) -> dict[str, Any]:
    data: dict[str, Any] = dict(content.metrics)
    if content.batch is not None:
        data["selection/batch"] = wandb.Table(columns=content.batch.columns, data=content.batch.rows)
    for figure in content.figures:
        data[figure.key] = _media(wandb, figure)
    return data


def _media(wandb: Any, figure: Figure) -> Any:
    if figure.kind == "svg":
        return wandb.Html(figure.data.decode("utf-8"), inject=False)
    from PIL import Image

    return wandb.Image(Image.open(io.BytesIO(figure.data)), caption=figure.caption)


def _abandon(wandb: Any, session: Any, mode: TrackingMode, home: Path) -> None:
    """End a failed session; offline, remove the folder it began so a later sync logs its rounds once."""
    with contextlib.suppress(Exception):
        session.finish(exit_code=1)
    started = Path(session.settings.sync_dir).resolve()
    if mode == "offline" and started.is_relative_to(home) and started != home:
        shutil.rmtree(started, ignore_errors=True)


@contextlib.contextmanager
def _environment(run: RunDir) -> Iterator[None]:
    """W&B's cache and staging folders inside the run for the session, and its error reporting off."""
    wanted = {
        "WANDB_CACHE_DIR": str(run.inside(f"{ledger.FOLDER}/.cache")),
        "WANDB_DATA_DIR": str(run.inside(f"{ledger.FOLDER}/.data")),
        "WANDB_ERROR_REPORTING": os.environ.get("WANDB_ERROR_REPORTING", "false"),
    }
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _drop_links(home: Path) -> None:
    """W&B's convenience links (latest-run, debug logs): a run folder holds no symbolic links."""
    for folder, dirs, files in os.walk(home):
        for name in dirs + files:
            path = Path(folder, name)
            if path.is_symlink():
                path.unlink()


def _rounds(steps: list[int]) -> str:
    """[0, 1, 2, 5] → '0–2, 5'."""
    spans: list[list[int]] = []
    for step in steps:
        if spans and step == spans[-1][1] + 1:
            spans[-1][1] = step
        else:
            spans.append([step, step])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in spans)
