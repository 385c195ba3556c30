"""Tool build_jspsych: turn a selected batch into a jsPsych 8 study folder inside the run.

Build a jsPsych 8 experiment for a selected batch (or any item set of the pool).

Writes runs/<run>/experiments/<round_XX or name>/: index.html, jsPsych and plugins (pinned, copied
from the npm cache so the study runs offline, or linked on a CDN), css, and data files (config,
items, lists, distribution). The config sets the trial per task type (ordinal_scale likert|slider,
binary buttons|keys, forced_choice, categorical buttons|multiple_choice, multi_select, magnitude
slider|number|spr, free_text, cloze), instructions, consent, demographics, practice, attention
checks, ordering constraints, minimum trial time, completion page and Prolific code, lists (all,
split, latin_square) and the list distribution strategy run in the browser over the JATOS batch
session. `include_heldout` adds held-out overlap items to every list (the human ceiling; answers
come back under their held-out ids). Everything is checked before writing. Next: export_jzip.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, model_validator

from alloop.tools.base import ToolContext, ToolSpec
from alloop.tools.jspsych.build import build_study
from alloop.tools.jspsych.config import ExperimentConfig
from alloop.tools.jspsych.experiments import ExperimentArgs, batch_items, heldout_items, load_config
from alloop.tools.jspsych.jzip import study_uuids


class BuildJspsychInput(ExperimentArgs):
    item_ids: list[str] | None = Field(None, description="Or these pool items (any item set); needs `name`.")
    config: ExperimentConfig = Field(default_factory=ExperimentConfig, description="The study's configuration.")
    config_file: str | None = Field(None, description="Or a JSON file in the run folder holding the configuration.")
    include_heldout: int = Field(0, ge=0, description="Held-out items every participant also judges (human ceiling).")

    @model_validator(mode="after")
    def _one_experiment(self) -> Self:
        """A build reads a selection round or an item set; `name` may rename a round's folder."""
        if (self.round is None) == (self.item_ids is None):
            raise ValueError("give either round (a selection round) or item_ids (an item set), not both or neither")
        if self.item_ids is not None and not self.name:
            raise ValueError("an item set needs a name for its experiment folder")
        if self.config_file and "config" in self.model_fields_set:
            raise ValueError("give config or config_file, not both")
        return self


class BuildJspsychOutput(BaseModel):
    run: str
    experiment: str
    path: str = Field(description="The study folder (index.html at its root).")
    n_items: int
    n_heldout: int = Field(0, description="Held-out items among n_items, in every list.")
    list_sizes: list[int]
    n_files: int
    study_key: str
    next_step: str


def build_jspsych(args: BuildJspsychInput, ctx: ToolContext) -> BuildJspsychOutput:
    """Build a jsPsych 8 study for a selection round (or any item set) under experiments/.

    `config` sets trials, pages, lists and their distribution. Next: export_jzip.
    """
    run = ctx.root.run(args.run)
    spec = run.spec()
    name = args.experiment
    config = load_config(run, args.config, args.config_file)
    items, provenance = batch_items(run, args.round, args.item_ids)
    shared = heldout_items(run, spec, args.include_heldout)
    key = study_uuids(run.name, name)["study"]
    ctx.progress(0, 1, f"building {name} ({len(items) + len(shared)} items)")
    with run.lock():
        out_dir = run.experiment_dir(name)
        built = build_study(
            items,
            spec,
            config,
            out_dir,
            study_key=key,
            provenance={
                "run": run.name,
                "experiment": name,
                "spec_version": spec.spec_version,
                **provenance,
                "heldout_ids": [str(row["id"]) for row in shared],
            },
            shared=shared,
        )
        run.append_note(
            f"build_jspsych: experiments/{name} with {built.n_items} items ({len(shared)} held-out, in every list) "
            f"in {len(built.list_sizes)} list(s), distribution {config.distribution.strategy}"
        )
    ctx.progress(1, 1, "built")
    return BuildJspsychOutput(
        run=run.name,
        experiment=name,
        path=str(built.path),
        n_items=built.n_items,
        n_heldout=len(shared),
        list_sizes=built.list_sizes,
        n_files=len(built.files),
        study_key=key,
        next_step=f"export_jzip run={run.name} experiment={name}, then import the .jzip into JATOS",
    )


SPEC = ToolSpec(
    name="build_jspsych",
    fn=build_jspsych,
    input_model=BuildJspsychInput,
    output_model=BuildJspsychOutput,
    behaviour="writes",
    idempotent=True,
)
