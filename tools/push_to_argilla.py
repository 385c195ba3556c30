"""push_to_argilla: send a round's selected batch to the run's Argilla dataset.

Makes the run's Argilla dataset on first use (fields from spec.text_fields, one question fitting the
task type, guidelines from the spec, overlap of spec.annotators_per_item annotators per record) and
checks it on later pushes. Each selected item becomes a record keyed by its item id, with the round,
strategy, selection reason, uncertainty scores, prediction, confidence and model version as metadata
that only owners and admins see. The model's prediction is pre-filled as a suggestion only when
spec.argilla_suggestions is on (off by default: the batch holds the items the model is least sure of,
where its guess anchors people most). `include_heldout` adds held-out overlap items (no
suggestion) for two or more people each, the human ceiling; it needs annotators_per_item ≥ 2, since
Argilla completes a record after that many answers. Pushing the same round again updates records,
never duplicates them. The server comes from ARGILLA_API_URL and ARGILLA_API_KEY in the environment. Bring
the answers back with pull_from_argilla.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from alloop.tools.argilla import push_round
from alloop.tools.base import RunArgs, ToolContext, ToolSpec


class PushToArgillaInput(RunArgs):
    round: int = Field(ge=0, le=99, description="Selection round to send.")
    dataset: str | None = Field(None, description="Default: the run's earlier one, else the run name.")
    workspace: str | None = Field(None, description="Default: the run's earlier one, else 'alloop'.")
    annotators: list[str] = Field(default_factory=list, description="Argilla users to give the dataset to.")
    include_heldout: int = Field(0, ge=0, description="Held-out items for every annotator too (human ceiling).")


class PushToArgillaOutput(BaseModel):
    dataset: str
    workspace: str
    dataset_id: str
    round: int
    records: int = Field(description="Records sent (one per selected or held-out item, keyed by item id).")
    created: int = Field(description="Records new to the dataset.")
    updated: int = Field(description="Records already there, updated in place (a re-push).")
    suggestions: int = Field(description="Records carrying the model's prediction as a suggestion.")
    suggest: bool = Field(False, description="Suggestions on (spec.argilla_suggestions); off by default.")
    created_dataset: bool
    question: str = Field(description="Argilla question type used for the task.")
    annotators_per_item: int = Field(description="Submitted answers needed before a record counts as done.")
    warnings: list[str] = Field(default_factory=list)
    heldout: int = Field(0, description="Held-out records among them, with no suggestion.")


def push_to_argilla(args: PushToArgillaInput, ctx: ToolContext) -> PushToArgillaOutput:
    """Send a round's selection to Argilla for people to label; a re-push updates its records.

    Needs ARGILLA_API_URL and ARGILLA_API_KEY. Next: pull_from_argilla.
    """
    result = push_round(
        ctx.root.run(args.run),
        args.round,
        dataset=args.dataset,
        workspace=args.workspace,
        annotators=args.annotators,
        progress=ctx.progress,
        include_heldout=args.include_heldout,
    )
    return PushToArgillaOutput(**vars(result))


SPEC = ToolSpec(
    name="push_to_argilla",
    fn=push_to_argilla,
    input_model=PushToArgillaInput,
    output_model=PushToArgillaOutput,
    behaviour="remote",
    idempotent=True,
    positional=("run", "round"),
)
