"""Tool pull_jatos: bring a JATOS study's results back as label events.

Each item response becomes a LabelEvent with source "human", the JATOS worker as the annotator
(`jatos:<workerId>`), destination "jatos" and external_id
`<studyResultId>:<componentResultId>:<trial>`; they go to labels.jsonl and annotation_round_XX.jsonl
through the run, and pulling twice adds nothing. Practice trials and attention checks are not
labels; a participant's attention pass rate is kept with each label. Needs JATOS_TOKEN (and
JATOS_URL) in the environment.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from alloop.tools.base import ToolContext, ToolSpec
from alloop.tools.errors import InputError
from alloop.tools.jspsych.build import read_manifest
from alloop.tools.jspsych.experiments import JatosArgs
from alloop.tools.jspsych.jatos import results_to_events
from alloop.tools.jspsych.jzip import study_uuids


class PullJatosInput(JatosArgs):
    label_round: int | None = Field(None, ge=0, le=99, description="Round of the labels; default the experiment's.")
    study: str | None = Field(None, description="JATOS study id or UUID; default export_jzip's.")
    only_finished: bool = Field(True, description="Only study runs that reached the end.")
    min_attention_pass: float | None = Field(
        None, ge=0, le=1, description="Leave out participants below this attention-check pass rate."
    )


class PullJatosOutput(BaseModel):
    run: str
    study: str
    n_component_results: int
    n_participants: int
    n_events: int
    n_new: int = Field(description="Label events appended (a second pull of the same results adds none).")
    notes: list[str]


def pull_jatos(args: PullJatosInput, ctx: ToolContext) -> PullJatosOutput:
    """Bring a JATOS study's results back as labels; pulling twice adds nothing.

    Needs JATOS_TOKEN (and JATOS_URL).
    """
    run = ctx.root.run(args.run)
    spec = run.spec()
    name = args.experiment
    label_round = args.label_round if args.label_round is not None else args.round
    if label_round is None:
        manifest = read_manifest(run.experiment_dir(name))
        label_round = manifest.get("round")
    if label_round is None:
        raise InputError(f"experiment {name!r} has no round: pass label_round")
    study = args.study or study_uuids(run.name, name)["study"]
    with ctx.jatos_client(args.jatos_url) as client:
        ctx.progress(0, 2, "fetching results from JATOS")
        results = client.component_results(study)
    ctx.progress(1, 2, f"{len(results)} component results")
    events, notes = results_to_events(
        results, spec, round_=label_round, only_finished=args.only_finished, min_attention_pass=args.min_attention_pass
    )
    with run.lock():
        fresh = run.append_labels(events)
        if fresh:
            run.append_note(f"pull_jatos: {len(fresh)} new labels from JATOS study {study} ({name})")
    ctx.progress(2, 2, "done")
    return PullJatosOutput(
        run=run.name,
        study=study,
        n_component_results=len(results),
        n_participants=len({e.annotator for e in events}),
        n_events=len(events),
        n_new=len(fresh),
        notes=notes[:50],
    )


SPEC = ToolSpec(
    name="pull_jatos",
    fn=pull_jatos,
    input_model=PullJatosInput,
    output_model=PullJatosOutput,
    behaviour="remote",
    idempotent=True,
)
