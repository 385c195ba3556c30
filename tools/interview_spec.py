"""interview_spec: ask the minimum questions, then write a validated, versioned spec.json.

The same function serves every way of answering: arguments, MCP elicitation (the server fills
the answers from the form), or the agent asking the returned open questions itself. Answers
given before the run exists are kept as a draft under the root, and the run (its pool and
held-out set, which can never be replaced) is made only once the held-out question is answered,
so no order of answering can create a run without the held-out set the person meant.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, Field, ValidationError

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import AlloopError, InputError, describe_validation
from alloop.tools.run.item_files import ItemFile, LabeledRow, read_item_file
from alloop.tools.run.items import ItemTable
from alloop.tools.run.labels import check_label, row_text, vote_text
from alloop.tools.run.rundir import RunDir, RunRoot
from alloop.tools.run.schema import (
    LABELED_TASKS,
    Destination,
    EffectsMode,
    EncoderTrainingSpec,
    JudgeUse,
    LabeledState,
    LabelEvent,
    Metric,
    PredictionUnit,
    TaskSpec,
    TaskType,
)


class Question(BaseModel):
    key: str
    question: str
    choices: list[str] = Field(default_factory=list)
    default: Any = None


QUESTIONS: list[Question] = [
    Question(key="data_source", question='Which pool of items? (a JSONL file of {"id", "text", ...} rows)'),
    Question(
        key="labeled_state",
        question="Are some pool items labeled already?",
        choices=list(get_args(LabeledState)),
        default="none",
    ),
    Question(key="task_type", question="What kind of judgment is collected?", choices=list(get_args(TaskType))),
    Question(
        key="prediction_unit",
        question="Predict one answer per item, or per participant response?",
        choices=list(get_args(PredictionUnit)),
        default="item",
    ),
    Question(
        key="labels", question="The label schema: the classes, options or scale points, in order (comma-separated)"
    ),
    Question(
        key="metric",
        question="Which metric decides how good the model is?",
        choices=list(get_args(Metric)),
        default="macro_f1",
    ),
    Question(
        key="heldout",
        question="Which held-out set with gold labels? (a JSONL file, 'split:0.2' of labeled pool rows, "
        "or 'none': no gold figures). The run is created once this is answered.",
    ),
    Question(
        key="budget",
        question="Annotation budget: batch size, and max rounds / labels / hours / money",
        default={"batch_size": 20, "max_rounds": 10},
    ),
    Question(
        key="stopping",
        question="Stopping rule: plateau ε and rounds, prediction stability κ, or agreement with humans",
        default={"plateau_epsilon": 0.005, "plateau_rounds": 3},
    ),
    Question(
        key="destination",
        question="Where do people label?",
        choices=list(get_args(Destination)),
        default="file",
    ),
    Question(
        key="judge",
        question="May an LLM judge help, and for what?",
        choices=["no", *get_args(JudgeUse)],
        default="no",
    ),
]


class InterviewInput(RunArgs):
    """Answers so far; any left out become open questions (or keep their current value)."""

    pool: str | None = Field(None, description="Pool JSONL file. Rows: id, text fields, optional label.")
    heldout: str | None = Field(
        None,
        description="Held-out JSONL with gold 'label', 'split:FRACTION' of labeled pool rows, or 'none'.",
    )
    task_type: TaskType | None = None
    labels: list[str] | None = Field(None, description="Label schema, in order.")
    data_source: str | None = None
    labeled_state: LabeledState | None = None
    prediction_unit: PredictionUnit | None = None
    text_fields: list[str] | None = None
    metric: Metric | None = None
    batch_size: int | None = Field(None, ge=1)
    max_rounds: int | None = Field(None, ge=1)
    max_examples: int | None = Field(None, ge=1)
    max_hours: float | None = Field(None, gt=0)
    max_cost: float | None = Field(None, gt=0)
    cost_per_label: float | None = Field(None, ge=0)
    plateau_epsilon: float | None = Field(None, gt=0)
    plateau_rounds: int | None = Field(None, ge=1)
    stability_kappa: float | None = Field(None, gt=0, le=1)
    agreement_threshold: float | None = None
    agreement_margin: float | None = Field(None, ge=0)
    destination: Destination | None = None
    annotators_per_item: int | None = Field(None, ge=1)
    judge_uses: list[JudgeUse] | None = Field(None, description="Empty list: no judge.")
    guidelines: str | None = None
    encoder: str | None = None
    embeddings: str | None = Field(None, description="New run: Parquet of id, embedding made by `encoder`.")
    encoder_training: EncoderTrainingSpec | None = Field(
        None,
        description="{kind: frozen|full|lora|contrastive, ...}; unset fields default.",
    )
    strategy: str | None = None
    effects: EffectsMode | None = None
    head: str | None = Field(None, description="Model head: logistic (default) or glmm.")
    predictors: list[str] | None = Field(None, description="Numeric pool fields that enter as design predictors.")
    seed: int | None = None


class InterviewOutput(BaseModel):
    run: str
    created: bool = False
    spec_version: int | None = None
    written: bool = False
    complete: bool
    open_questions: list[Question]
    spec: dict[str, Any] | None = None
    pool_size: int | None = None
    heldout_size: int | None = None
    imported_labels: int = 0
    next_step: str | None = None


_NESTED = {
    "budget": ("batch_size", "max_rounds", "max_examples", "max_hours", "max_cost", "cost_per_label"),
    "stopping": ("plateau_epsilon", "plateau_rounds", "stability_kappa", "agreement_threshold", "agreement_margin"),
}
_TOP = (
    "task_type",
    "labels",
    "data_source",
    "labeled_state",
    "prediction_unit",
    "text_fields",
    "metric",
    "destination",
    "annotators_per_item",
    "guidelines",
)
_MODEL = {
    "encoder": "encoder",
    "encoder_training": "encoder_training",
    "effects": "effects",
    "head": "head",
    "predictors": "predictors",
}
_SELECTION = {"strategy": "strategy", "seed": "seed"}


def _answered_keys(args: InterviewInput) -> set[str]:
    given = {k for k, v in args.model_dump(exclude={"run"}).items() if v is not None}
    keys = {k for k in given if k in {q.key for q in QUESTIONS}}
    if args.pool:
        keys.add("data_source")
    if args.heldout:
        keys.add("heldout")
    for question, fields in _NESTED.items():
        if given & set(fields):
            keys.add(question)
    if args.judge_uses is not None:
        keys.add("judge")
    return keys


def _merge(base: dict[str, Any], args: InterviewInput) -> dict[str, Any]:
    spec = json.loads(json.dumps(base))
    values = args.model_dump(exclude={"run"})
    for key in _TOP:
        if values[key] is not None:
            spec[key] = values[key]
    for section, fields in _NESTED.items():
        for field in fields:
            if values[field] is not None:
                spec.setdefault(section, {})[field] = values[field]
    for arg, field in _MODEL.items():
        if values[arg] is not None:
            spec.setdefault("model", {})[field] = values[arg]
    for arg, field in _SELECTION.items():
        if values[arg] is not None:
            spec.setdefault("selection", {})[field] = values[arg]
    if args.judge_uses is not None:
        spec["judge"] = {**spec.get("judge", {}), "allowed": bool(args.judge_uses), "uses": args.judge_uses}
    return spec


def _validated(spec: dict[str, Any]) -> TaskSpec:
    try:
        return TaskSpec.model_validate(spec)
    except ValidationError as exc:
        raise InputError(describe_validation(exc, "the answers do not make a valid spec")) from exc


def _open_questions(spec: dict[str, Any], answered: set[str]) -> list[Question]:
    open_ = [q for q in QUESTIONS if q.key not in answered]
    task = spec.get("task_type")
    if task and task not in LABELED_TASKS:
        open_ = [q for q in open_ if q.key != "labels"]
    return open_


def preview_open_questions(args: InterviewInput, root: RunRoot) -> list[Question]:
    """The questions still open after these answers (and any kept from earlier calls), without writing anything."""
    if root.exists(args.run):
        current = root.run(args.run).spec()
        answered = _answered_keys(args) | set(current.answered)
        return _open_questions(_merge(current.model_dump(mode="json"), args), answered)
    answers = _with_draft(args, root)
    return _open_questions(_merge({"run": args.run}, answers), _answered_keys(answers))


def interview_spec(args: InterviewInput, ctx: ToolContext) -> InterviewOutput:
    """Set up or revise a run's spec.json from the interview answers.

    Give what you know as arguments; the output lists the questions still open (with choices and
    defaults) to ask the person. Answers are kept between calls; the run is created once `pool`,
    `task_type`, `labels` and `heldout` ('none' if there is none) are answered. The same answers
    again change nothing; a revision writes a new spec version. Pool and held-out set are fixed.
    """
    if ctx.root.exists(args.run):
        return _revise(args, ctx)
    return _gather(args, ctx)


def _revise(args: InterviewInput, ctx: ToolContext) -> InterviewOutput:
    """A new spec version from the answers that changed; the same answers again write nothing."""
    run = ctx.root.run(args.run)
    if args.embeddings is not None:
        _refuse_new_embeddings(ctx, args.embeddings, run)
    with run.lock():
        current = run.spec()
        _refuse_new_items(ctx, args, current)
        answered = _answered_keys(args) | set(current.answered)
        merged = _merge(current.model_dump(mode="json"), args)
        merged["answered"] = sorted(answered)
        new = _validated(merged)
        events = run.labels()
        if new.labels != current.labels and events:
            raise InputError("labels already exist under the current schema; change the schema in a new run")
        if new.labeled_state == "none" and any(e.source == "import" for e in events):
            new = new.model_copy(update={"labeled_state": "partial"})  # as at creation: imported labels exist
        written = new.model_dump(exclude={"spec_version", "updated"}) != current.model_dump(
            exclude={"spec_version", "updated"}
        )
        if written:
            changed = sorted(k for k in answered - set(current.answered)) or ["settings"]
            new = run.write_spec(new, reason=f"interview answers: {', '.join(changed)}")
    open_ = _open_questions(new.model_dump(), answered)
    return InterviewOutput(
        run=args.run,
        spec_version=new.spec_version,
        written=written,
        complete=not open_,
        open_questions=open_,
        spec=new.model_dump(mode="json"),
    )


def _refuse_new_items(ctx: ToolContext, args: InterviewInput, spec: TaskSpec) -> None:
    """A run's pool and held-out set are fixed; naming the same ones again (a repeated create) is fine."""
    pool_from = spec.pool_file or spec.data_source
    new_pool = args.pool is not None and not _same_input(ctx, args.pool, pool_from)
    new_heldout = args.heldout is not None and not _same_input(ctx, args.heldout, spec.heldout)
    if new_pool or new_heldout:
        raise InputError(
            f"run {spec.run!r} was made from pool {pool_from!r} with held-out {spec.heldout!r}, and a run's items "
            "cannot be replaced: archive it (archive_run) and create it again under the same name, or use a new name"
        )


def _refuse_new_embeddings(ctx: ToolContext, given: str, run: RunDir) -> None:
    """Vectors come with a run's creation; naming the same file again (a repeated create) is fine."""
    from alloop.tools.model.encoders import run_encoder
    from alloop.tools.model.imported_embeddings import imported_from

    recorded = imported_from(run, run_encoder(run))
    if recorded is None or not _same_input(ctx, given, recorded):
        raise InputError(
            f"run {run.name!r} exists; embeddings are imported when a run is created (archive_run it and create "
            "it again with `embeddings`)"
        )


def _same_input(ctx: ToolContext, given: str, recorded: str) -> bool:
    if given == recorded:
        return True
    try:
        return ctx.input_path(given) == ctx.input_path(recorded)
    except AlloopError:
        return False


def _with_draft(args: InterviewInput, root: RunRoot) -> InterviewInput:
    """The answers kept from earlier calls for a run not created yet, with this call's answers on top."""
    saved = root.draft(args.run) or {}
    try:
        return InterviewInput.model_validate({**saved, **args.model_dump(mode="json", exclude_none=True)})
    except ValidationError as exc:
        raise InputError(describe_validation(exc, f"the kept interview answers of {args.run!r}")) from exc


def _missing(answers: InterviewInput) -> list[str]:
    """What a new run still needs before it can be created."""
    missing = [key for key in ("pool", "task_type") if getattr(answers, key) is None]
    if answers.task_type in LABELED_TASKS and not answers.labels:
        missing.append("labels")
    if answers.heldout is None:
        missing.append("heldout")
    return missing


def _gather(args: InterviewInput, ctx: ToolContext) -> InterviewOutput:
    """Check and keep the answers of a run not created yet; create it once nothing it needs is missing."""
    answers = _with_draft(args, ctx.root)
    answered = _answered_keys(answers)
    merged = _merge({"run": args.run}, answers)
    if answers.pool and not answers.data_source:
        merged["data_source"] = answers.pool
    open_ = _open_questions(merged, answered)
    missing = _missing(answers)
    items = None
    if answers.task_type is not None and "labels" not in missing:
        merged |= {"answered": sorted(answered), "heldout": answers.heldout or "none", "pool_file": answers.pool or ""}
        spec = _validated(merged)  # inconsistent answers are refused now, not at the last question
        if answers.pool:
            items = _read_items(ctx, answers.pool, answers.heldout, spec)
    elif answers.pool:
        ctx.input_path(answers.pool)  # a pool outside the run root is refused now
    if items is not None and not missing:
        prepare = _embeddings_import(ctx, answers.embeddings, items) if answers.embeddings else None
        ctx.root.create(items.spec, items.pool, items.heldout, items.imported, prepare)  # staged with the run
        return InterviewOutput(
            run=args.run,
            created=True,
            spec_version=items.spec.spec_version,
            written=True,
            complete=not open_,
            open_questions=open_,
            spec=items.spec.model_dump(mode="json"),
            pool_size=len(items.pool),
            heldout_size=len(items.heldout) if items.heldout else 0,
            imported_labels=len(items.imported),
        )
    if args.model_dump(exclude={"run"}, exclude_none=True):
        ctx.root.write_draft(args.run, answers.model_dump(mode="json", exclude={"run"}, exclude_none=True))
    return InterviewOutput(
        run=args.run,
        complete=False,
        open_questions=open_,
        pool_size=len(items.pool) if items else None,
        next_step=_next_step(missing),
    )


def _embeddings_import(ctx: ToolContext, given: str, items: _Items) -> Callable[[RunDir], None]:
    """Fills the staged run's cache from the file; a bad file stops the create and nothing is left."""
    from alloop.tools.model.encoders import HFEncoder
    from alloop.tools.model.imported_embeddings import import_embeddings

    source = ctx.input_path(given)
    ids = [*items.pool.ids, *(items.heldout.ids if items.heldout is not None else [])]
    if not source.is_file():
        raise InputError(f"embeddings file {given} does not exist")
    encoder = HFEncoder(items.spec.model.encoder, items.spec.model.max_length)

    def fill(run: RunDir) -> None:
        import_embeddings(source, run, ids, encoder, where=given)

    return fill


def _next_step(missing: list[str]) -> str:
    if missing == ["heldout"]:
        return (
            "answer heldout to create the run: a gold JSONL file, 'split:0.2' of labeled pool rows, or 'none' "
            "(then no gold figures); the other answers are kept"
        )
    return f"answer {', '.join(missing)} (see open_questions); the answers so far are kept"


@dataclass
class _Items:
    """A new run's checked items: what `RunRoot.create` writes."""

    spec: TaskSpec
    pool: ItemTable
    heldout: ItemTable | None
    imported: list[LabelEvent]


def _read_items(ctx: ToolContext, pool_file: str, heldout_from: str | None, spec: TaskSpec) -> _Items:
    """Read and check the pool and held-out set against the spec; nothing is written."""
    pool_file_items = read_item_file(ctx.input_path(pool_file), pool_file)
    pool, labeled, heldout = _split_heldout(ctx, heldout_from, pool_file_items, spec)
    existing = _existing_labels(spec, labeled, pool_file)
    pool.texts(spec.text_fields)
    pool.numeric(spec.model.predictors)  # a design predictor must be a number in every row, checked now
    if heldout is not None:
        heldout.numeric(spec.model.predictors)  # evaluation predicts held-out items from them too
        overlap = set(pool.ids) & set(heldout.ids)
        if overlap:
            raise InputError(
                f"ids in both the pool and the held-out set: {sorted(overlap)[:5]}; held-out items must be apart"
            )
        heldout.texts(spec.text_fields)
    if existing and spec.labeled_state == "none":
        spec = spec.model_copy(update={"labeled_state": "partial"})
    return _Items(spec, pool, heldout, existing)


def _split_heldout(
    ctx: ToolContext, heldout: str | None, pool: ItemFile, spec: TaskSpec
) -> tuple[ItemTable, list[LabeledRow], ItemTable | None]:
    """The pool left for selection, its labeled rows, and the held-out set (gold labels checked, as `label`)."""
    if not heldout or heldout == "none":
        return pool.table, pool.labeled, None
    if heldout.startswith("split:"):
        try:
            fraction = float(heldout.split(":", 1)[1])
        except ValueError:
            raise InputError(f"heldout {heldout!r}: write split:FRACTION, e.g. split:0.2") from None
        if not 0 < fraction < 1:
            raise InputError(f"heldout split fraction must lie between 0 and 1, got {fraction}")
        if len(pool.labeled) < 2:
            raise InputError("heldout split needs pool rows with a 'label'; none have one")
        rng = np.random.default_rng(spec.selection.seed)
        size = max(1, round(fraction * len(pool.labeled)))
        chosen = sorted(rng.choice(len(pool.labeled), size=size, replace=False).tolist())
        held_rows = [pool.labeled[k] for k in chosen]
        taken = np.array([row.index for row in held_rows])
        keep = np.ones(len(pool.table), dtype=bool)
        keep[taken] = False
        rest = pool.table.table.filter(pa.array(keep))
        left = [  # positions in the table that is left
            LabeledRow(row.index - int(np.searchsorted(taken, row.index)), row.line, row.row)
            for row in pool.labeled
            if keep[row.index]
        ]
        held_table = pool.table.table.take(pa.array(taken))
        where, rest_table = pool.table.source, ItemTable(rest, pool.table.source)  # the labels' own file
    else:
        held_file = read_item_file(ctx.input_path(heldout), heldout)
        unlabeled = len(held_file.table) - len(held_file.labeled)
        if unlabeled:
            have = {row.index for row in held_file.labeled}
            missing = next(item for i, item in enumerate(held_file.table.ids) if i not in have)
            raise InputError(
                f"{heldout}:{held_file.lines[missing]}: held-out row {missing!r} has no 'label' ({unlabeled} rows "
                "lack one); every held-out item needs its gold label"
            )
        held_rows, held_table = held_file.labeled, held_file.table.table
        where, rest_table, left = heldout, pool.table, pool.labeled
    gold = [check_label(spec, row.row["label"], f"{where}:{row.line}", row_text(spec, row.row)) for row in held_rows]
    if spec.task_type == "cloze":  # one blank or several: one text form, "a | b", as votes and answers read it
        gold = [vote_text(g) for g in gold]
    try:
        column = pa.array(gold)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{heldout}: the gold labels mix forms ({exc}); give every label in one form") from None
    return rest_table, left, ItemTable(held_table.append_column("label", column), heldout)


def _existing_labels(spec: TaskSpec, rows: list[LabeledRow], source: str) -> list[LabelEvent]:
    """Labels already in the pool file become `import` events of round 0."""
    events = []
    for labeled in rows:
        row = labeled.row
        label = check_label(spec, row["label"], f"{source}:{labeled.line}", row_text(spec, row))
        events.append(
            LabelEvent(
                item_id=row["id"],  # normalized as the pool's ids are
                label=label,
                source="import",
                annotator=str(row.get("annotator", "import")),
                round=0,
                destination="file",
                external_id=f"{Path(source).name}:{row['id']}",
            )
        )
    return events


SPEC = ToolSpec(
    name="interview_spec",
    fn=interview_spec,
    input_model=InterviewInput,
    output_model=InterviewOutput,
    behaviour="writes",
    idempotent=True,
    cli_aliases=("init",),
)
