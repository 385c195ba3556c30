"""llm_judge: a stronger model labels, scores, ranks or explains items, and never passes for a human."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Literal

from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import InputError, StateError
from alloop.tools.judge.backends import (
    BackendConfig,
    make_backend,
    pick_backend_name,
)
from alloop.tools.judge.cache import JudgeCache
from alloop.tools.judge.engine import (
    Budget,
    FatalJudgeError,
    JudgeItem,
    JudgeJob,
    RetryPolicy,
    SamplingRequest,
    judge_items,
    plan_requests,
)
from alloop.tools.judge.figures import judge_figures
from alloop.tools.judge.records import USES_WITH_LABELS, JudgeKind, JudgeRecord
from alloop.tools.judge.rubrics import Rubric, builtin_rubric
from alloop.tools.run.labels import HUMAN_SOURCES, answered_items, live_events
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import JudgeBackend, JudgeUse, LabelEvent, TaskSpec

ItemSource = Literal["selection", "unlabeled", "heldout", "disagreements"]
DEFAULT_SOURCE: dict[str, str] = {
    "evaluation": "heldout",
    "prioritization": "unlabeled",
    "adjudication": "disagreements",
    "pseudo_labeling": "unlabeled",
}


class LlmJudgeInput(RunArgs):
    use: JudgeUse = Field(
        description="evaluation (weak interim check; with held-out items, calibrates the judge against gold), "
        "prioritization (which items people should label next), adjudication (settle human disagreements), "
        "pseudo_labeling (labels for unlabeled items). Must be among spec.judge.uses."
    )
    kind: JudgeKind = Field(
        "label",
        description="label (in the schema), score (0-1: how much a human label would be worth), ranking "
        "(order a group of items), rationale (an explanation). adjudication and pseudo_labeling need 'label'.",
    )
    round: int | None = Field(None, ge=0, le=99, description="Round to log under (default: the latest round).")
    items: list[str] | None = Field(None, description="Item ids to judge (default: from `source`).")
    source: ItemSource | None = Field(
        None,
        description="Where items come from when `items` is not given: the round's selection, unlabeled pool "
        "items, held-out items, or pool items whose human labels disagree. Default by use: evaluation→heldout, "
        "prioritization→unlabeled, adjudication→disagreements, pseudo_labeling→unlabeled.",
    )
    limit: int = Field(20, ge=1, le=1000, description="At most this many items.")
    backend: JudgeBackend | None = Field(
        None, description="Default: spec.judge.backend, else anthropic with a key, else sampling, else local."
    )
    model: str | None = Field(None, description="Judge model (default: spec.judge.model, else the backend's default).")
    rubric: str | None = Field(
        None, description="A rubric template file inside the run folder (default: the built-in one for the task type)."
    )
    local_model: str | None = Field(
        None, description="Backend local: a .gguf file or Hugging Face model folder, or 'smollm2'."
    )
    local_constrained: bool = Field(
        True, description="Backend local, kind label: choose among the schema's labels by likelihood."
    )
    max_tokens: int = Field(400, ge=16, le=8192)
    concurrency: int = Field(4, ge=1, le=32, description="Requests in flight at once.")
    max_retries: int = Field(4, ge=0, le=10, description="Retries of a rate-limited, overloaded or timed-out request.")
    backoff_s: float = Field(
        1.0, ge=0, le=60, description="First backoff (doubles per retry) when the server gives none."
    )
    timeout_s: float = Field(60.0, gt=0, le=600, description="Per request.")
    price_input_per_mtok: float | None = Field(
        None, ge=0, description="USD per million input tokens (unlisted models)."
    )
    price_output_per_mtok: float | None = Field(None, ge=0, description="USD per million output tokens.")
    use_cache: bool = Field(True, description="Reuse answers cached for the same item, rubric version and model.")


class ItemJudgment(BaseModel):
    item_id: str
    status: str
    label: str | float | list[str] | None = None
    score: float | None = None
    rank: int | None = None
    rationale: str | None = None
    refusal: str | None = None
    error: str | None = None
    cached: bool = False


class LlmJudgeOutput(BaseModel):
    run: str
    round: int
    use: str
    kind: str
    backend: str
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


def _check_permission(spec: TaskSpec, args: LlmJudgeInput) -> None:
    if not spec.judge.allowed:
        raise InputError(
            f"spec.json of run {spec.run!r} does not allow an LLM judge (judge.allowed is false); if the study's "
            "owner agrees, revise the spec with interview_spec (judge allowed, and the uses) first"
        )
    if args.use not in spec.judge.uses:
        raise InputError(
            f"spec.json allows the judge only for {spec.judge.uses or 'no use'}, not {args.use!r}; revise "
            "spec.judge.uses with interview_spec if the study's owner agrees"
        )
    if args.use in USES_WITH_LABELS and args.kind != "label":
        raise InputError(f"use {args.use!r} writes labels: ask for kind 'label', not {args.kind!r}")


def _latest_round(run: RunDir) -> int:
    from alloop.tools.run.models import model_rounds

    rounds = [0, *run.selection_rounds(), *model_rounds(run), *(r.round for r in run.results())]
    return max(rounds)


def _human_labels(events: list[LabelEvent]) -> dict[str, list[LabelEvent]]:
    by_item: dict[str, list[LabelEvent]] = defaultdict(list)
    for event in live_events(events):
        if event.source in HUMAN_SOURCES and event.status == "submitted":
            by_item[event.item_id].append(event)
    return by_item


def _choose_items(
    run: RunDir, spec: TaskSpec, args: LlmJudgeInput, round_: int, events: list[LabelEvent]
) -> list[tuple[str, str]]:
    """(item id, 'pool' | 'heldout') pairs to judge."""
    pool = run.pool()
    heldout = run.heldout()
    heldout_ids = set(heldout.ids) if heldout is not None else set()
    if args.items is not None:
        pool_ids = pool.index_of()
        unknown = [i for i in args.items if i not in pool_ids and i not in heldout_ids]
        if unknown:
            raise InputError(f"items {unknown[:5]} are in neither the pool nor the held-out set of run {run.name!r}")
        chosen = [(i, "heldout" if i in heldout_ids else "pool") for i in dict.fromkeys(args.items)]
        return chosen[: args.limit]
    source = args.source or DEFAULT_SOURCE[args.use]
    rng = random.Random(spec.selection.seed + round_)
    if source == "selection":
        return [(row.item_id, "pool") for row in run.selection(round_)][: args.limit]
    if source == "heldout":
        if heldout is None:
            raise StateError(f"run {run.name!r} has no held-out set; pick source 'selection' or 'unlabeled'")
        ids = list(heldout.ids)
        return [(i, "heldout") for i in (rng.sample(ids, args.limit) if len(ids) > args.limit else ids)]
    if source == "unlabeled":  # no answer from people (and, for pseudo-labeling, none from a judge yet)
        answered = answered_items(events)
        if args.use == "pseudo_labeling":
            answered |= {e.item_id for e in events if e.source == "judge"}
        ids = [i for i in pool.ids if i not in answered]
        if not ids:
            raise StateError(f"run {run.name!r} has no unlabeled pool items left")
        return [(i, "pool") for i in (rng.sample(ids, args.limit) if len(ids) > args.limit else ids)]
    human = _human_labels(events)
    split = [i for i in pool.ids if len({str(e.label) for e in human.get(i, [])}) > 1]
    if not split:
        raise StateError(f"run {run.name!r} has no pool items whose human labels disagree; nothing to adjudicate")
    return [(i, "pool") for i in split[: args.limit]]


def _judge_items(
    run: RunDir, spec: TaskSpec, chosen: list[tuple[str, str]], use: str, events: list[LabelEvent]
) -> list[JudgeItem]:
    """Items as the judge sees them: spec.text_fields only (never a gold label), plus answers to adjudicate."""
    human = _human_labels(events) if use == "adjudication" else {}
    tables = {"pool": run.pool(), "heldout": run.heldout()}
    items = []
    for set_name in ("pool", "heldout"):
        ids = [i for i, s in chosen if s == set_name]
        if not ids:
            continue
        table = tables[set_name]
        assert table is not None
        missing = [f for f in spec.text_fields if not table.has(f)]
        if missing:
            raise InputError(f"{table.source}: text field(s) {missing} not found; fix spec.text_fields")
        for row in table.rows(table.positions(ids)):
            fields = {f: "" if row.get(f) is None else str(row[f]) for f in spec.text_fields}
            annotations = None
            if use == "adjudication":
                annotations = [
                    {"annotator": f"annotator {n}", "label": e.label}
                    for n, e in enumerate(human.get(str(row["id"]), []), start=1)
                ]
            items.append(JudgeItem(item_id=str(row["id"]), fields=fields, item_set=set_name, annotations=annotations))
    order = {item_id: n for n, (item_id, _) in enumerate(chosen)}
    return sorted(items, key=lambda item: order[item.item_id])


def _load_rubric(run: RunDir, spec: TaskSpec, path: str | None) -> Rubric:
    if path is None:
        return builtin_rubric(spec.task_type)
    file = run.inside(path)
    if not file.is_file():
        raise InputError(f"rubric file {path!r} not found in run {run.name!r}; put the template inside the run folder")
    relative = file.relative_to(run.path.resolve()).as_posix()
    return Rubric.from_text(f"run:{relative}", file.read_text(encoding="utf-8"), str(file))


def _spent(run: RunDir) -> float:
    total = 0.0
    for round_ in run.judge_rounds():
        for row in run.judge_rows(round_):
            cost = row.get("cost_usd")
            if isinstance(cost, int | float):
                total += float(cost)
    return total


def _predictions(run: RunDir, round_: int) -> dict[str, str]:
    """The round model's predicted labels (pool and held-out), where score_pool saved them."""
    from alloop.tools.run.models import load_predictions

    try:
        preds = load_predictions(run, round_)
    except (StateError, OSError, KeyError):
        return {}
    out = dict(zip(preds.pool_ids.tolist(), preds.pool_pred.tolist(), strict=True))
    out.update(zip(preds.heldout_ids.tolist(), preds.heldout_pred.tolist(), strict=True))
    return out


def _label_events(spec: TaskSpec, records: list[JudgeRecord], use: str) -> list[LabelEvent]:
    events = []
    if use not in USES_WITH_LABELS:
        return events
    enters = use == "pseudo_labeling" and spec.judge.pseudo_labels_in_training
    for record in records:
        if record.status != "ok" or record.label is None or record.item_set != "pool":
            continue
        event = LabelEvent(
            item_id=record.item_id,
            label=record.label,
            source="judge",
            annotator=f"judge:{record.backend}:{record.judge_model}",
            round=record.round,
            destination="judge",
            external_id=f"judge:{use}:{record.judge_model}:{record.prompt_hash[:32]}",
            extra={
                "use": use,
                "judge_record": record.record_id,
                "judge_model": record.judge_model,
                "rubric": record.rubric,
                "rubric_version": record.rubric_version,
                "rubric_hash": record.rubric_hash,
                "prompt_hash": record.prompt_hash,
                "enters_training": enters,
            },
        )
        record.label_event_id = event.event_id
        events.append(event)
    return events


def _disagreements(run: RunDir, records: list[JudgeRecord], events: list[LabelEvent]) -> list[dict[str, Any]]:
    heldout = run.heldout()
    gold = (
        dict(zip(heldout.ids, heldout.column("label"), strict=True))
        if heldout is not None and heldout.has("label")
        else {}
    )
    human = _human_labels(events)
    out = []
    for record in records:
        if record.status != "ok" or record.label is None:
            continue
        if record.item_id in gold:
            reference, source = [gold[record.item_id]], "gold"
        elif record.item_id in human:
            reference, source = sorted({str(e.label) for e in human[record.item_id]}), "human"
        else:
            continue
        if [str(record.label)] != [str(r) for r in reference]:
            out.append(
                {
                    "item_id": record.item_id,
                    "judge_label": record.label,
                    "reference": reference,
                    "reference_source": source,
                    "rationale": record.rationale,
                }
            )
    return out[:100]


def _prepare(
    run: RunDir, spec: TaskSpec, args: LlmJudgeInput, ctx: ToolContext
) -> tuple[JudgeJob, list[JudgeItem], list[LabelEvent]]:
    """Everything up to the first request: round, rubric, items, backend, budget, cache."""
    round_ = args.round if args.round is not None else _latest_round(run)
    events = run.labels()
    rubric = _load_rubric(run, spec, args.rubric)
    chosen = _choose_items(run, spec, args, round_, events)
    if args.use in USES_WITH_LABELS and any(s == "heldout" for _, s in chosen):
        raise InputError(f"use {args.use!r} writes labels, and held-out items must never get one; judge pool items")
    if args.kind == "ranking" and len(chosen) < 2:
        raise InputError("kind 'ranking' needs at least two items")
    items = _judge_items(run, spec, chosen, args.use, events)
    config = BackendConfig(
        model=args.model or spec.judge.model,
        sampler=ctx.sampler,
        local_model=args.local_model,
        price_input_per_mtok=args.price_input_per_mtok,
        price_output_per_mtok=args.price_output_per_mtok,
        local_constrained=args.local_constrained,
    )
    backend_name = pick_backend_name(args.backend or spec.judge.backend, config)
    backend = make_backend(backend_name, config)
    budget_limit = spec.judge.budget_usd
    if budget_limit is not None and backend_name == "anthropic" and getattr(backend, "prices", None) is None:
        raise InputError(
            f"spec.judge.budget_usd is set but the price of model {backend.model!r} is not known; pass "
            "price_input_per_mtok and price_output_per_mtok (USD per million tokens)"
        )
    job = JudgeJob(
        spec=spec,
        round=round_,
        use=args.use,
        kind=args.kind,
        rubric=rubric,
        backend=backend,
        backend_name=backend_name,
        cache=JudgeCache(run.cache_dir / "judge_cache.jsonl", enabled=args.use_cache),
        budget=Budget(budget_limit, _spent(run)),
        max_tokens=args.max_tokens,
        concurrency=args.concurrency,
        retry=RetryPolicy(
            max_retries=args.max_retries,
            backoff_base_s=args.backoff_s,
            timeout_s=args.timeout_s,
            seed=spec.selection.seed,
        ),
        progress=ctx.progress,
    )
    return job, items, events


def sampling_requests(args: LlmJudgeInput, ctx: ToolContext) -> list[SamplingRequest]:
    """The sampling requests llm_judge would send for these arguments, cached ones left out.

    For an MCP server whose protocol batches client requests up front (InputRequiredResult, the
    2026-07-28 era): ask the client for all of these at once, then call llm_judge with
    `ctx.sampler = answers_sampler(answers)`, `answers` keyed by each request's `key`. Needs a
    `ctx.sampler` set (any callable: it is not called here). Reads the run; writes nothing.
    """
    run = ctx.root.run(args.run)
    spec = run.spec()
    _check_permission(spec, args)
    job, items, _ = _prepare(run, spec, args, ctx)
    if job.backend_name != "sampling":
        raise InputError(f"sampling_requests is for the sampling backend; these arguments pick {job.backend_name!r}")
    return plan_requests(job, items)


def llm_judge(args: LlmJudgeInput, ctx: ToolContext) -> LlmJudgeOutput:
    """Ask an LLM judge to label, score, rank or explain items, only where spec.json allows it.

    Every judgment is logged per item in judge_round_XX.jsonl: judge backend and model, rubric
    version and hash, prompt hash, output kind, use, the raw answer, how it parsed, tokens and
    cost. Answers are parsed strictly into the label schema: an unparseable or out-of-schema
    answer, or a refusal, is recorded as such and never becomes a label. Labels from adjudication
    and pseudo_labeling go to labels.jsonl with source 'judge' (held-out items never get one);
    they enter training only where spec.judge.pseudo_labels_in_training, and never a gold_*
    figure. The round's judge_* figures in results.tsv (judge_n, judge κ with held-out gold,
    model accuracy against judge labels) are filled when the round has a row. Answers are cached
    per item, rubric version and judge model; spec.judge.budget_usd caps the run's spending.
    Item text is passed as data, so an item cannot change the rubric. Backends: anthropic
    (ANTHROPIC_API_KEY), sampling (the MCP client's model), local (a model path or 'smollm2').
    """
    run = ctx.root.run(args.run)
    spec = run.spec()
    _check_permission(spec, args)
    with run.lock():
        job, items, events = _prepare(run, spec, args, ctx)
        round_, rubric, backend, backend_name, budget = job.round, job.rubric, job.backend, job.backend_name, job.budget
        budget_limit = budget.limit
        try:
            records = judge_items(job, items)
        except FatalJudgeError as exc:
            if exc.records:  # what was asked and answered before the failure is still logged
                run.append_judge(round_, exc.records)
            raise exc.cause from None
        # The log first, then the labels: no judge label ever exists without its logged judgment.
        recorded = {(e.destination, e.external_id): e.event_id for e in events if e.external_id}
        by_record = {r.record_id: r for r in records}
        fresh = []
        for event in _label_events(spec, records, args.use):
            earlier = recorded.get((event.destination, event.external_id))
            if earlier is not None:  # the same judgment was recorded before (a cached answer)
                by_record[event.extra["judge_record"]].label_event_id = earlier
            else:
                fresh.append(event)
        path = run.append_judge(round_, records)
        labels_written = len(run.append_labels(fresh)) if fresh else 0
        figures = judge_figures(run, round_, _predictions(run, round_))
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
        disagreements = _disagreements(run, records, events)
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        counts[record.status] += 1
    costs = [r.cost_usd for r in records if r.cost_usd is not None]
    first = records[0] if records else None
    return LlmJudgeOutput(
        run=run.name,
        round=round_,
        use=args.use,
        kind=args.kind,
        backend=backend_name,
        judge_model=first.judge_model if first else backend.model,
        rubric=rubric.name,
        rubric_version=rubric.version,
        rubric_hash=rubric.hash,
        judge_file=path.name,
        n_items=len(records),
        counts=dict(counts),
        n_cached=sum(r.cached for r in records),
        labels_written=labels_written,
        labels_enter_training=args.use == "pseudo_labeling" and spec.judge.pseudo_labels_in_training,
        cost_usd=sum(costs) if costs else None,
        budget_usd=budget_limit,
        budget_left_usd=budget.left,
        figures=figures,
        results_updated=results_updated,
        disagreements=disagreements,
        judgments=[
            ItemJudgment(
                item_id=r.item_id,
                status=r.status,
                label=r.label,
                score=r.score,
                rank=r.rank,
                rationale=r.rationale,
                refusal=r.refusal,
                error=r.error,
                cached=r.cached,
            )
            for r in records
        ],
        note=note,
    )


SPEC = ToolSpec(
    name="llm_judge",
    fn=llm_judge,
    input_model=LlmJudgeInput,
    output_model=LlmJudgeOutput,
    behaviour="remote",
)
