"""A run's experiments (experiments/<round_XX or name>): their names, the input that picks one,
and what a build reads (the batch's items and the study's configuration).

The four experiment tools (build_jspsych, export_jzip, jatos_import, pull_jatos) share these, so
one tool never imports another.
"""

from __future__ import annotations

import re
from typing import Self

from pydantic import Field, ValidationError, model_validator

from alloop.tools.base import RunArgs
from alloop.tools.errors import InputError, describe_validation
from alloop.tools.jspsych.config import ExperimentConfig
from alloop.tools.people.overlap import heldout_overlap, still_open
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import TaskSpec

EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def experiment_name(round_: int | None, name: str | None) -> str:
    """The experiment's folder name: `name`, else round_XX; checked because it becomes a path."""
    result = name or f"round_{round_:02d}"
    if not EXPERIMENT_NAME.match(result):
        raise InputError(f"experiment name {result!r} is not allowed: use letters, digits, '_' or '-' (≤64)")
    return result


class ExperimentArgs(RunArgs):
    """Base input of a tool that works on one experiment of a run, named by its round or its name."""

    round: int | None = Field(None, ge=0, le=99, description="Selection round of the experiment.")
    name: str | None = Field(None, description="Or the experiment's folder under experiments/.")

    @model_validator(mode="after")
    def _one_experiment(self) -> Self:
        """Round or name, not both (build_jspsych overrides this: it may also build an item set)."""
        if (self.round is None) == (self.name is None):
            raise ValueError("give either round or name")
        return self

    @property
    def experiment(self) -> str:
        return experiment_name(self.round, self.name)


class JatosArgs(ExperimentArgs):
    """Base input of a tool that talks to JATOS about one experiment."""

    jatos_url: str | None = Field(None, description="Default: $JATOS_URL.")


def load_config(run: RunDir, config: ExperimentConfig, config_file: str | None) -> ExperimentConfig:
    """The study's configuration: `config`, or the JSON file `config_file` inside the run."""
    if not config_file:
        return config
    path = run.inside(config_file)
    if not path.is_file():
        raise InputError(f"config_file {config_file!r} not found in run {run.name!r} ({path})")
    try:
        return ExperimentConfig.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise InputError(describe_validation(exc, str(path), first_only=True)) from exc


def batch_items(run: RunDir, round_: int | None, item_ids: list[str] | None) -> tuple[list[dict], dict]:
    """The items to show (in selection rank order) and where they came from."""
    if round_ is not None:
        rows = sorted(run.selection(round_), key=lambda r: r.rank)
        ids = [r.item_id for r in rows]
        provenance = {"source": f"selection_round_{round_:02d}.jsonl", "round": round_}
    else:
        ids = list(item_ids or [])
        provenance = {"source": "item_ids", "round": None}
    if not ids:
        raise InputError("the batch is empty: nothing to build")
    pool = run.pool()
    return pool.rows(pool.positions(ids)), provenance


def heldout_items(run: RunDir, spec: TaskSpec, n: int) -> list[dict]:
    """The first `n` held-out overlap items that still lack people, for every participant to judge.

    The same items as export_batch and simulate_annotator send, so answers from any destination
    add up to the human ceiling. Their gold labels stay behind.
    """
    ids = still_open(run, spec, heldout_overlap(run, n))
    if not ids:
        return []
    heldout = run.heldout()
    assert heldout is not None  # heldout_overlap refused a run without one
    return [{k: v for k, v in row.items() if k != "label"} for row in heldout.rows(heldout.positions(ids))]
