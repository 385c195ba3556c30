"""From llm_judge's arguments to a job ready to run, and the sampling requests that job would send.

Shared by the tool and by the MCP server's batched sampling, so both see the same round, items,
rubric, backend, budget and cache for the same arguments.
"""

from __future__ import annotations

from pydantic import Field

from alloop.tools.base import RunArgs, ToolContext
from alloop.tools.errors import InputError
from alloop.tools.judge.backends import BackendConfig, choose_backend, make_backend
from alloop.tools.judge.cache import JudgeCache
from alloop.tools.judge.engine import Budget, JudgeItem, JudgeJob, RetryPolicy, SamplingRequest, plan_requests
from alloop.tools.judge.items import ItemSource, build_items, choose_items
from alloop.tools.judge.ledger import spent
from alloop.tools.judge.records import USES_WITH_LABELS, JudgeKind
from alloop.tools.judge.rubrics import load_rubric
from alloop.tools.run.models import latest_round, resolve_round
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import JudgeBackendName, JudgeUse, LabelEvent, TaskSpec


class JudgeArgs(RunArgs):
    """The arguments a judging call is planned from: llm_judge's input model."""

    use: JudgeUse = Field(
        description="evaluation (vs held-out gold), prioritization (what people label next), adjudication "
        "(settle disagreements), pseudo_labeling; one of spec.judge.uses."
    )
    kind: JudgeKind = Field(
        "label",
        description="score: 0-1, how much a human label is worth; adjudication and pseudo_labeling need label.",
    )
    round: int | None = Field(None, ge=0, le=99, description="Round to log under; default the latest.")
    items: list[str] | None = Field(None, description="Item ids; default: from `source`.")
    source: ItemSource | None = Field(
        None,
        description="Default by use: evaluation→heldout, adjudication→disagreements (human labels differ), "
        "else unlabeled.",
    )
    limit: int = Field(20, ge=1, le=1000, description="At most this many items.")
    backend: JudgeBackendName | None = Field(
        None, description="Default: spec.judge.backend, else anthropic with a key, else sampling, else local."
    )
    model: str | None = Field(None, description="Judge model; default spec.judge.model, else the backend's.")
    rubric: str | None = Field(None, description="Rubric template file in the run folder; default built in.")
    local_model: str | None = Field(None, description="local: a .gguf file, a Hugging Face model folder, or 'smollm2'.")
    local_constrained: bool = Field(True, description="local: choose labels and scores by likelihood.")
    local_calibrated: bool = Field(True, description="local, labels: against an empty item's label likelihoods.")
    max_tokens: int = Field(400, ge=16, le=8192)
    concurrency: int = Field(4, ge=1, le=32, description="Requests in flight at once.")
    max_retries: int = Field(4, ge=0, le=10)
    backoff_s: float = Field(1.0, ge=0, le=60, description="First backoff; doubles per retry.")
    timeout_s: float = Field(60.0, gt=0, le=600, description="Per request.")
    price_input_per_mtok: float | None = Field(None, ge=0, description="USD, for models without a known price.")
    price_output_per_mtok: float | None = Field(None, ge=0)
    use_cache: bool = True


def check_permission(spec: TaskSpec, args: JudgeArgs) -> None:
    """Refuse what the spec does not allow: no judge, a use not granted, labels of another kind."""
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


def prepare(
    run: RunDir, spec: TaskSpec, args: JudgeArgs, ctx: ToolContext
) -> tuple[JudgeJob, list[JudgeItem], list[LabelEvent]]:
    """Everything up to the first request: round, rubric, items, backend, budget, cache; and the run's labels."""
    round_ = resolve_round(args.round, latest_round(run))
    events = run.labels()
    rubric = load_rubric(run, args.rubric, spec.task_type)
    chosen = choose_items(
        run, spec, events, use=args.use, round_=round_, items=args.items, source=args.source, limit=args.limit
    )
    if args.use in USES_WITH_LABELS and any(s == "heldout" for _, s in chosen):
        raise InputError(f"use {args.use!r} writes labels, and held-out items must never get one; judge pool items")
    if args.kind == "ranking" and len(chosen) < 2:
        raise InputError("kind 'ranking' needs at least two items")
    items = build_items(run, spec, chosen, args.use, events)
    config = BackendConfig(
        model=args.model or spec.judge.model,
        sampler=ctx.sampler,
        local_model=args.local_model,
        price_input_per_mtok=args.price_input_per_mtok,
        price_output_per_mtok=args.price_output_per_mtok,
        local_constrained=args.local_constrained,
        local_calibrated=args.local_calibrated,
    )
    chosen = choose_backend(args.backend or spec.judge.backend, config)
    backend_name = chosen.name
    backend = make_backend(backend_name, chosen.config)
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
        backend_reason=chosen.reason,
        cache=JudgeCache(run.judge_cache_path, enabled=args.use_cache),
        budget=Budget(budget_limit, spent(run)),
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


def sampling_requests(args: JudgeArgs, ctx: ToolContext) -> list[SamplingRequest]:
    """The sampling requests llm_judge would send for these arguments, cached ones left out.

    For an MCP server whose protocol batches client requests up front (InputRequiredResult, the
    2026-07-28 era): ask the client for all of these at once, then call llm_judge with
    `ctx.sampler = answers_sampler(answers)`, `answers` keyed by each request's `key`. Needs a
    `ctx.sampler` set (any callable: it is not called here). Reads the run; writes nothing.
    """
    run = ctx.root.run(args.run)
    spec = run.spec()
    check_permission(spec, args)
    job, items, _ = prepare(run, spec, args, ctx)
    if job.backend_name != "sampling":
        raise InputError(f"sampling_requests is for the sampling backend; these arguments pick {job.backend_name!r}")
    return plan_requests(job, items)
