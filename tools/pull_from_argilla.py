"""pull_from_argilla: bring people's answers back from Argilla as label events.

Every submitted answer becomes a line of labels.jsonl and annotation_round_XX.jsonl (source human,
annotator = the Argilla username, the time it was given, the Argilla response id); a discarded
record is recorded with status 'discarded'; drafts stay in Argilla. With several annotators per
record every answer is kept. Pulling twice adds nothing; an answer changed in Argilla since the last
pull is added as a correction that supersedes the earlier event. Stops without writing anything if
the dataset no longer matches spec.json or holds answers for items the run does not know (see
skip_unknown). Also returns progress: records done and pending per round and per annotator. The
server comes from ARGILLA_API_URL and ARGILLA_API_KEY in the environment.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from alloop.tools.argilla import pull_responses
from alloop.tools.base import RunArgs, ToolContext, ToolSpec


class PullFromArgillaInput(RunArgs):
    round: int | None = Field(None, ge=0, le=99, description="Only records of this round; default: every round.")
    dataset: str | None = Field(None, description="Default: push_to_argilla's.")
    workspace: str | None = Field(None, description="Default: push_to_argilla's.")
    skip_unknown: bool = Field(False, description="Skip answers on items the run does not know, instead of stopping.")


class PullFromArgillaOutput(BaseModel):
    dataset: str
    workspace: str
    new_events: int = Field(description="Label events added to labels.jsonl and annotation_round_XX.jsonl.")
    submitted: int = Field(description="New submitted answers.")
    discarded: int = Field(description="New discarded records (recorded with status 'discarded', no label).")
    corrections: int = Field(description="Answers changed in Argilla since the last pull (new events that supersede).")
    already_pulled: int = Field(description="Answers already in labels.jsonl: nothing added for them.")
    drafts_left: int = Field(description="Draft answers, left in Argilla until submitted.")
    by_round: dict[str, int] = Field(default_factory=dict)
    by_annotator: dict[str, int] = Field(default_factory=dict)
    invalid: list[dict[str, Any]] = Field(
        default_factory=list, description="Answers that are not a label of the spec (not written; fix them in Argilla)."
    )
    skipped_unknown: list[dict[str, Any]] = Field(default_factory=list)
    progress: dict[str, Any] = Field(default_factory=dict, description="Records done/pending per round and annotator.")


def pull_from_argilla(args: PullFromArgillaInput, ctx: ToolContext) -> PullFromArgillaOutput:
    """Bring people's answers back from Argilla as labels, with progress per annotator.

    Pulling twice adds nothing. Needs ARGILLA_API_URL and ARGILLA_API_KEY.
    """
    result = pull_responses(
        ctx.root.run(args.run),
        dataset=args.dataset,
        workspace=args.workspace,
        round_=args.round,
        skip_unknown=args.skip_unknown,
        progress=ctx.progress,
    )
    return PullFromArgillaOutput(**vars(result))


SPEC = ToolSpec(
    name="pull_from_argilla",
    fn=pull_from_argilla,
    input_model=PullFromArgillaInput,
    output_model=PullFromArgillaOutput,
    behaviour="remote",
    idempotent=True,
)
