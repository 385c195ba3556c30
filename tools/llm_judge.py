"""llm_judge: a stronger model labels, scores, ranks or explains items, and never passes for a human.

Every judgment is logged per item in judge_round_XX.jsonl: judge backend and model, rubric version
and hash, prompt hash, output kind, use, the raw answer, how it parsed, tokens and cost. Answers are
parsed strictly into the label schema: an unparseable or out-of-schema answer, or a refusal, is
recorded as such and never becomes a label. Labels from adjudication and pseudo_labeling go to
labels.jsonl with source 'judge' (held-out items never get one); they enter training only where
spec.judge.pseudo_labels_in_training, and never a gold_* figure. The round's judge_* figures in
results.tsv (judge_n, judge κ with held-out gold, model accuracy against judge labels) are filled
when the round has a row. Answers are cached per item, rubric version and judge model;
spec.judge.budget_usd caps the run's spending. Item text is passed as data, so an item cannot change
the rubric. Backends: anthropic (ANTHROPIC_API_KEY), sampling (the MCP client's model), local (a
model path or 'smollm2'). Each item is a model call, so many items take minutes (the local model:
seconds per item).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from alloop.tools.base import ToolContext, ToolSpec
from alloop.tools.errors import StateError
from alloop.tools.judge.disagreements import disagreements
from alloop.tools.judge.engine import FatalJudgeError, judge_items
from alloop.tools.judge.figures import judge_figures, round_predictions
from alloop.tools.judge.ledger import label_events, linked
from alloop.tools.judge.plan import JudgeArgs, check_permission, prepare
from alloop.tools.judge.records import JudgeRecord


class LlmJudgeInput(JudgeArgs):
    """llm_judge's arguments (declared with the judge package, which plans the job from them)."""


# What the caller sees of each JudgeRecord (the log keeps the rest): a projection, built by `of`.
class ItemJudgment(BaseModel):
    item_id: str
    status: str
    label: str | float | list[str] | None = None
    score: float | None = None
    rank: int | None = None
    rationale: str | None = None
    refusal: str | None = None
    confidence: float | None = None
    error: str | None = None
    cached: bool = False

    @classmethod
    def of(cls, record: JudgeRecord) -> ItemJudgment:
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))


class LlmJudgeOutput(BaseModel):
    run: str
    round: int
    use: str
    kind: str
    backend: str
    backend_reason: str = Field("", description="Why this backend answered: asked for, or the default.")
    judge_model: str
    rubric: str
    rubric_version: str
    rubric_hash: str
    judge_file: str = Field(description="The log, relative to the run folder.")
    n_items: int
    counts: dict[str, int] = Field(
        description="Items by status: ok, refused, unparseable, out_of_schema, error, over_budget."
    )
    n_cached: int
    labels_written: int = Field(description="Label events with source 'judge' added to labels.jsonl.")
    labels_enter_training: bool = Field(
        description="Whether those labels may enter training (spec.judge.pseudo_labels_in_training)."
    )
    cost_usd: float | None = Field(description="This call's cost, where the backend reports one.")
    budget_usd: float | None
    budget_left_usd: float | None
    figures: dict[str, Any] = Field(description="judge_* figures of the round (never gold).")
    results_updated: bool
    disagreements: list[dict[str, Any]] = Field(
        default_factory=list, description="Items where the judge's label differs from held-out gold or the human label."
    )
    judgments: list[ItemJudgment]
    note: str = ""


def llm_judge(args: LlmJudgeInput, ctx: ToolContext) -> LlmJudgeOutput:
    """Have an LLM judge label, score, rank or explain items where spec.json allows it; never human gold.

    Logged in judge_round_XX.jsonl. Backends: anthropic (ANTHROPIC_API_KEY), sampling (the
    client's model), local. Each item is a model call, so many items take minutes (the local model:
    seconds per item).
    """
    run = ctx.root.run(args.run)
    spec = run.spec()
    check_permission(spec, args)
    with run.lock():
        job, items, events = prepare(run, spec, args, ctx)
        round_ = job.round
        predictions = round_predictions(run, round_)  # an unreadable file fails here, before any spending
        try:
            records = judge_items(job, items)
        except FatalJudgeError as exc:
            if exc.records:  # what was asked and answered before the failure is still logged
                run.append_judge(round_, exc.records)
            raise exc.cause from None
        # The log first, then the labels: no judge label ever exists without its logged judgment.
        fresh, event_ids = label_events(spec, records, args.use, events)
        records = linked(records, event_ids)
        path = run.append_judge(round_, records)
        labels_written = len(run.append_labels(fresh)) if fresh else 0
        figures = judge_figures(run, round_, predictions)
        note = ""
        try:
            run.update_result(
                round_,
                judge_n=figures["judge_n"],
                judge_agreement_with_gold=figures["judge_agreement_with_gold"],
                judge_accuracy=figures["judge_accuracy"],
            )
            results_updated = True
        except StateError:
            results_updated = False
            note = f"results.tsv has no row for round {round_} yet: the judge_* figures are returned, not written"
        listed = disagreements(run, records, events)
    costs = [r.cost_usd for r in records if r.cost_usd is not None]
    first = records[0] if records else None
    return LlmJudgeOutput(
        run=run.name,
        round=round_,
        use=args.use,
        kind=args.kind,
        backend=job.backend_name,
        backend_reason=job.backend_reason,
        judge_model=first.judge_model if first else job.backend.model,
        rubric=job.rubric.name,
        rubric_version=job.rubric.version,
        rubric_hash=job.rubric.hash,
        judge_file=path.name,
        n_items=len(records),
        counts=dict(Counter(r.status for r in records)),
        n_cached=sum(r.cached for r in records),
        labels_written=labels_written,
        labels_enter_training=args.use == "pseudo_labeling" and spec.judge.pseudo_labels_in_training,
        cost_usd=sum(costs) if costs else None,
        budget_usd=job.budget.limit,
        budget_left_usd=job.budget.left,
        figures=figures,
        results_updated=results_updated,
        disagreements=listed,
        judgments=[ItemJudgment.of(r) for r in records],
        note=note,
    )


SPEC = ToolSpec(
    name="llm_judge",
    fn=llm_judge,
    input_model=LlmJudgeInput,
    output_model=LlmJudgeOutput,
    behaviour="remote",
)
