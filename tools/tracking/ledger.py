"""The record of what was logged to W&B, so that syncing again never logs a round twice.

`<run>/wandb/alloop-sync.json` holds the W&B run id and, per destination (offline files, or an
online entity/project), the rounds logged and the offline folder each sync wrote. It holds nothing
else: no settings, no environment, so it cannot hold a key.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from alloop.tools.errors import InputError, describe_validation
from alloop.tools.run.reader import read_json
from alloop.tools.run.rundir import RunDir, atomic_write_json
from alloop.tools.run.schema import TrackingMode, TrackingSpec, utc_now

FOLDER = "wandb"
LEDGER = f"{FOLDER}/alloop-sync.json"


class Sync(BaseModel):
    """One sync that logged something: when, which rounds, and (offline) the folder W&B wrote."""

    time: str = Field(default_factory=utc_now)
    steps: list[int]
    folder: str | None = None


class Destination(BaseModel):
    mode: TrackingMode
    project: str
    entity: str | None = None
    syncs: list[Sync] = Field(default_factory=list)

    @property
    def steps(self) -> set[int]:
        return {step for sync in self.syncs for step in sync.steps}


class Ledger(BaseModel):
    wandb_run_id: str
    destinations: dict[str, Destination] = Field(default_factory=dict)

    def destination(self, mode: TrackingMode, tracking: TrackingSpec) -> Destination:
        """Where this sync goes; offline files and each online project keep their own record."""
        key = "offline" if mode == "offline" else f"online:{tracking.entity or '-'}/{tracking.project}"
        return self.destinations.setdefault(
            key, Destination(mode=mode, project=tracking.project, entity=tracking.entity)
        )


def folder(run: RunDir) -> Path:
    """`<run>/wandb/`: every file W&B writes for this run lies under it."""
    return run.inside(FOLDER)


def load(run: RunDir, wandb_run_id: str) -> Ledger:
    """The run's ledger, or a fresh one naming this W&B run id."""
    path = run.inside(LEDGER)
    if not path.is_file():
        return Ledger(wandb_run_id=wandb_run_id)
    try:
        return Ledger.model_validate(read_json(path))
    except ValidationError as exc:
        raise InputError(
            describe_validation(exc, str(path), first_only=True) + "; move the file aside to start the record afresh"
        ) from exc


def save(run: RunDir, ledger: Ledger) -> None:
    atomic_write_json(run.inside(LEDGER), ledger.model_dump(mode="json"))
