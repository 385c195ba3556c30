"""Running a judge over items: prompts, cache, budget, bounded concurrency, retries, parsing.

`judge_items` returns one `JudgeRecord` per item and writes nothing but cache lines; the tool
writes the records, the label events and the figures under the run's lock. The same path serves
every backend, so a retry, a timeout or a budget stop behaves the same whoever answers.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from alloop.tools.base import ProgressFn, no_progress
from alloop.tools.errors import AlloopError
from alloop.tools.judge.answers import AnswerSpace, answer_space
from alloop.tools.judge.backends import (
    BackendError,
    Completion,
    JudgeBackend,
    TransientBackendError,
    scrub,
)
from alloop.tools.judge.cache import JudgeCache, cache_key
from alloop.tools.judge.parsing import ANSWER_FORMAT_VERSION, parse_answer
from alloop.tools.judge.records import JudgeRecord
from alloop.tools.judge.rubrics import Prompt, Rubric, build_prompt, system_prompt
from alloop.tools.run.schema import TaskSpec

log = logging.getLogger("alloop.judge")
RAW_ANSWER_MAX_CHARS = 4000


@dataclass
class JudgeItem:
    """An item as the judge sees it: its id, its text fields, and (adjudication) the answers given."""

    item_id: str
    fields: dict[str, str]
    item_set: str = "pool"
    annotations: list[Any] | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.item_id, **self.fields}
        if self.annotations is not None:
            data["annotations"] = self.annotations
        return data


@dataclass
class RetryPolicy:
    """How often and how long to retry a transient failure (the server's retry-after wins)."""

    max_retries: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    timeout_s: float = 60.0
    seed: int = 0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s)
        return min(self.backoff_base_s * 2 ** (attempt - 1), self.backoff_max_s) * rng.uniform(0.5, 1.0)


class Budget:
    """The run's judge budget in USD: reserve an upper estimate before a call, settle after."""

    def __init__(self, limit_usd: float | None, spent_usd: float) -> None:
        self.limit = limit_usd
        self.spent = spent_usd
        self._reserved = 0.0
        self._lock = threading.Lock()

    def reserve(self, estimate: float | None) -> bool:
        if self.limit is None or estimate is None:
            return True
        with self._lock:
            if self.spent + self._reserved + estimate > self.limit:
                return False
            self._reserved += estimate
            return True

    def settle(self, estimate: float | None, actual: float | None) -> None:
        with self._lock:
            if self.limit is not None and estimate is not None:
                self._reserved -= estimate
            if actual is not None:
                self.spent += actual
            elif estimate is not None:
                self.spent += estimate  # no usage reported: count what it may have cost

    @property
    def left(self) -> float | None:
        return None if self.limit is None else max(0.0, self.limit - self.spent)


@dataclass
class JudgeJob:
    """Everything one judging call needs."""

    spec: TaskSpec
    round: int
    use: str
    kind: str
    rubric: Rubric
    backend: JudgeBackend
    backend_name: str
    cache: JudgeCache
    budget: Budget
    max_tokens: int = 512
    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    ranking_group_size: int = 20
    progress: ProgressFn = no_progress
    backend_reason: str = ""
    """Why this backend answers (asked for, or the default), for the output and the log."""


@dataclass
class _Unit:
    """One request: one item, or a group of items ranked together."""

    items: list[JudgeItem]
    prompt: Prompt
    key: str
    choices: AnswerSpace | None


@dataclass
class _Outcome:
    completion: Completion | None = None
    status: str | None = None  # "error" / "over_budget" when no completion
    error: str | None = None
    attempts: int = 0
    cached: bool = False


def _call(job: JudgeJob, unit: _Unit, rng: random.Random) -> _Outcome:
    """One request with retries and backoff; fatal errors (AlloopError but not BackendError) propagate."""
    cached = job.cache.get(unit.key)
    if cached is not None:
        return _Outcome(completion=cached, cached=True)
    estimate = job.backend.estimate_cost(unit.prompt)
    if not job.budget.reserve(estimate):
        return _Outcome(status="over_budget", error=f"the run's judge budget of ${job.budget.limit:.4f} is spent")
    attempt = 0
    spent: float | None = 0.0  # what to settle the reservation with; a failed request costs nothing
    try:
        while True:
            attempt += 1
            try:
                completion = job.backend.complete(unit.prompt, timeout_s=job.retry.timeout_s, choices=unit.choices)
            except TransientBackendError as exc:
                if attempt > job.retry.max_retries:
                    return _Outcome(status="error", error=f"gave up after {attempt} attempts: {exc}", attempts=attempt)
                wait = job.retry.delay(attempt, exc.retry_after, rng)
                log.warning("judge: %s; retry %d in %.1fs", scrub(str(exc)), attempt, wait)
                time.sleep(wait)
                continue
            except BackendError as exc:
                return _Outcome(status="error", error=scrub(str(exc)), attempts=attempt)
            spent = completion.cost_usd
            job.cache.put(unit.key, completion)
            return _Outcome(completion=completion, attempts=attempt)
    finally:
        job.budget.settle(estimate, spent)


def _units(job: JudgeJob, system: str, items: Sequence[JudgeItem]) -> list[_Unit]:
    choices = answer_space(job.spec, job.kind)
    groups: list[list[JudgeItem]]
    if job.kind == "ranking":
        size = job.ranking_group_size
        groups = [list(items[i : i + size]) for i in range(0, len(items), size)]
    else:
        groups = [[item] for item in items]
    units = []
    for group in groups:
        payload = {"items": [i.payload() for i in group]} if job.kind == "ranking" else {"item": group[0].payload()}
        prompt = build_prompt(system, payload, job.kind, job.max_tokens)
        key = cache_key(
            [i.item_id for i in group],
            job.rubric.name,
            job.rubric.version,
            job.backend_name,
            job.backend.model,
            job.kind,
            prompt.hash,
            getattr(job.backend, "decoding", ""),
        )
        units.append(_Unit(items=group, prompt=prompt, key=key, choices=choices))
    return units


@dataclass
class SamplingRequest:
    """One request as a client's sampling would take it; `key` is its prompt hash."""

    key: str
    system: str
    messages: list[dict[str, str]]
    max_tokens: int
    item_ids: list[str]


def plan_requests(job: JudgeJob, items: Sequence[JudgeItem]) -> list[SamplingRequest]:
    """The requests judge_items would send (cached ones left out), without sending any."""
    system = system_prompt(job.rubric, job.spec, job.kind, job.use)
    return [
        SamplingRequest(
            key=unit.prompt.hash,
            system=unit.prompt.system,
            messages=[dict(m) for m in unit.prompt.messages],
            max_tokens=unit.prompt.max_tokens,
            item_ids=[i.item_id for i in unit.items],
        )
        for unit in _units(job, system, items)
        if job.cache.get(unit.key) is None
    ]


def answers_sampler(answers: Mapping[str, Mapping[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A sampler that answers from replies gathered up front, keyed by SamplingRequest.key.

    A request with no gathered reply fails as a BackendError (recorded, never guessed).
    """

    def sampler(system: str, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
        key = Prompt(system=system, messages=messages, max_tokens=max_tokens).hash
        if key not in answers:
            raise BackendError("the MCP client gave no answer for this sampling request")
        return dict(answers[key])

    return sampler


def judge_items(job: JudgeJob, items: Sequence[JudgeItem]) -> list[JudgeRecord]:
    """Judge the items; one record per item, in the order given."""
    system = system_prompt(job.rubric, job.spec, job.kind, job.use)  # a rubric that fails, fails here
    units = _units(job, system, items)
    limit = job.backend.max_concurrency or job.concurrency
    workers = max(1, min(job.concurrency, limit, len(units) or 1))
    outcomes: dict[int, _Outcome] = {}
    done = 0
    job.progress(0, len(units), f"judging {len(items)} item(s) with {job.backend_name}:{job.backend.model}")
    fatal: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alloop-judge") as pool:
        futures = {
            pool.submit(_call, job, unit, random.Random(f"{job.retry.seed}:{unit.key}")): index
            for index, unit in enumerate(units)
        }
        try:
            for future in as_completed(futures):
                index = futures[future]
                if future.cancelled():
                    continue
                try:
                    outcomes[index] = future.result()
                except AlloopError as exc:  # no key, refused key, unknown model: no retry helps
                    fatal = fatal or exc
                    for other in futures:
                        other.cancel()
                    continue
                done += 1
                job.progress(done, len(units), f"judged {done}/{len(units)}")
        except BaseException:  # the call was cancelled (at a progress report): drop the queue, free the run now
            for other in futures:
                other.cancel()
            raise
    records = []
    for index, unit in enumerate(units):
        outcome = outcomes.get(index)
        if outcome is None:
            continue  # cancelled after a fatal error: not asked, not recorded
        records.extend(_records(job, unit, outcome))
    if fatal is not None:
        raise FatalJudgeError(fatal, records)
    return records


class FatalJudgeError(AlloopError):
    """A fatal backend error, carrying the records of the requests that did finish (to be logged)."""

    def __init__(self, cause: BaseException, records: list[JudgeRecord]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.records = records


def _records(job: JudgeJob, unit: _Unit, outcome: _Outcome) -> list[JudgeRecord]:
    completion = outcome.completion
    common: dict[str, Any] = {
        "round": job.round,
        "use": job.use,
        "kind": job.kind,
        "backend": job.backend_name,
        "judge_model": completion.model if completion else job.backend.model,
        "rubric": job.rubric.name,
        "rubric_version": job.rubric.version,
        "rubric_hash": job.rubric.hash,
        "prompt_hash": unit.prompt.hash,
        "answer_format": ANSWER_FORMAT_VERSION,
        "attempts": outcome.attempts,
        "cached": outcome.cached,
        "group": unit.prompt.hash[:16] if job.kind == "ranking" else None,
    }
    if completion is None:
        return [
            JudgeRecord(
                item_id=i.item_id, item_set=i.item_set, status=outcome.status or "error", error=outcome.error, **common
            )  # type: ignore[arg-type]
            for i in unit.items
        ]
    parsed = parse_answer(completion.text, job.kind, job.spec, [i.item_id for i in unit.items])
    records = []
    for position, item in enumerate(unit.items):
        first = position == 0  # a ranked group's tokens and cost are logged once, on its first item
        rank = parsed.ranking.index(item.item_id) + 1 if parsed.ranking else None
        records.append(
            JudgeRecord(
                item_id=item.item_id,
                item_set=item.item_set,  # type: ignore[arg-type]
                status=parsed.status,  # type: ignore[arg-type]
                label=parsed.label,
                score=parsed.score,
                rank=rank,
                rationale=parsed.rationale,
                refusal=parsed.refusal,
                error=parsed.error,
                raw_answer=scrub(completion.text[:RAW_ANSWER_MAX_CHARS]),
                input_tokens=completion.input_tokens if first else None,
                output_tokens=completion.output_tokens if first else None,
                cost_usd=completion.cost_usd if first else (None if completion.cost_usd is None else 0.0),
                confidence=completion.info.get("confidence") if parsed.status == "ok" else None,
                backend_info={k: v for k, v in completion.info.items() if v is not None},
                **common,
            )
        )
    return records
