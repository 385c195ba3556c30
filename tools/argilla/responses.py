"""The pull: Argilla responses back as label events, exactly once.

The pull lists every record with its responses through the REST API (the SDK drops response
ids and times, and fails on a discarded response that has no values): each submitted or
discarded response becomes a `LabelEvent` (source human, annotator = Argilla username,
destination argilla, external id = response id @ its update time). Drafts stay in Argilla.
A response changed after an earlier pull becomes a new event that supersedes the old one;
pulling twice adds nothing. Turning responses into events is pure; `pull_responses` talks to
the server and writes labels.jsonl.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from alloop.tools.argilla.client import DESTINATION, Argilla, Target, target_for
from alloop.tools.argilla.progress import _item_rounds, progress_from_records
from alloop.tools.argilla.settings import QUESTION, DatasetPlan, QuestionPlan, _as_number, dataset_plan, mismatches
from alloop.tools.base import ProgressFn, no_progress
from alloop.tools.errors import InputError, StateError
from alloop.tools.run.labels import label_problem
from alloop.tools.run.schema import LabelEvent, utc_now

if TYPE_CHECKING:  # pragma: no cover
    from alloop.tools.run.rundir import RunDir

log = logging.getLogger("alloop.argilla")


# --------------------------------------------------------------------------------------------
# Responses back to label events (pure)
# --------------------------------------------------------------------------------------------


@dataclass
class PullBatch:
    """What one pass over the dataset's records found."""

    events: list[LabelEvent] = field(default_factory=list)
    drafts: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[dict[str, Any]] = field(default_factory=list)
    responses_seen: int = 0


def server_time(raw: str | None) -> str:
    """Argilla's naive UTC timestamps as the run's ISO-8601 UTC format."""
    if not raw:
        return utc_now()
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return utc_now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def answer_label(plan: QuestionPlan, labels: Sequence[str], value: Any) -> str | float | list[str]:
    """A response value as the run's label; ValueError says why it is not one."""
    if plan.kind == "label_selection":
        if not isinstance(value, str) or value not in labels:
            raise ValueError(f"{value!r} is not one of the labels {list(labels)}")
        return value
    if plan.kind == "multi_label_selection":
        if not isinstance(value, list) or any(v not in labels for v in value):
            raise ValueError(f"{value!r} is not a list of labels from {list(labels)}")
        return [str(v) for v in value]
    if plan.kind == "rating":
        if value not in plan.value_to_label:
            raise ValueError(f"{value!r} is not a point of the scale {list(plan.value_to_label)}")
        return plan.value_to_label[value]
    if plan.numeric:
        number = _as_number(value)
        if number is None:
            raise ValueError(f"{value!r} is not a number")
        return number
    if not isinstance(value, str) or not value.strip():
        raise ValueError("the answer is empty")
    return value


def events_from_records(
    plan: DatasetPlan,
    records: Sequence[dict[str, Any]],
    usernames: dict[str, str],
    known_items: set[str],
    item_rounds: dict[str, int],
    dataset: str,
    workspace: str,
    round_filter: int | None = None,
    problem: Callable[[str, Any], str | None] | None = None,
) -> PullBatch:
    """Every submitted or discarded response of these records as a candidate LabelEvent.

    `records` are GET /datasets/{id}/records items with responses; `usernames` maps user id to
    username; `item_rounds` gives the round an item was selected in, for records without
    round metadata. Drafts are counted, never turned into events. `problem(item, label)` says why a
    label does not fit the spec (the run's own check), and such answers are listed as invalid.
    """
    batch = PullBatch()
    for record in records:
        item_id = record.get("external_id")
        metadata = record.get("metadata") or {}
        round_ = metadata.get("round")
        if not isinstance(round_, int):
            round_ = item_rounds.get(item_id or "")
        if round_filter is not None and round_ != round_filter:
            continue
        answered = [r for r in record.get("responses") or [] if r.get("status") in ("submitted", "discarded")]
        batch.drafts += sum(1 for r in record.get("responses") or [] if r.get("status") == "draft")
        if not answered:
            continue
        if item_id is None or item_id not in known_items:
            batch.unknown.append({"record_id": record.get("id"), "item_id": item_id, "responses": len(answered)})
            continue
        if round_ is None:
            batch.unknown.append(
                {
                    "record_id": record.get("id"),
                    "item_id": item_id,
                    "responses": len(answered),
                    "why": "no round: the record has no round metadata and no selection names the item",
                }
            )
            continue
        for response in answered:
            batch.responses_seen += 1
            user_id = str(response.get("user_id"))
            annotator = usernames.get(user_id, f"argilla-user-{user_id}")
            status = response["status"]
            values = response.get("values") or {}
            label: Any = None
            if status == "submitted":
                raw = (values.get(QUESTION) or {}).get("value")
                try:
                    label = answer_label(plan.question, plan.labels, raw)
                    why = problem(item_id, label) if problem is not None else None
                    if why is not None:
                        raise ValueError(why)
                except ValueError as exc:
                    batch.invalid.append(
                        {
                            "item_id": item_id,
                            "annotator": annotator,
                            "value": raw,
                            "why": str(exc),
                            "response_id": response.get("id"),
                        }
                    )
                    continue
            updated = response.get("updated_at") or response.get("inserted_at") or ""
            batch.events.append(
                LabelEvent(
                    item_id=item_id,
                    label=label,
                    source="human",
                    annotator=annotator,
                    round=round_,
                    time=server_time(updated),
                    destination=DESTINATION,
                    status=status,
                    external_id=f"{response.get('id')}@{updated}",
                    extra={
                        "argilla_dataset": dataset,
                        "argilla_workspace": workspace,
                        "argilla_record_id": record.get("id"),
                        "argilla_response_id": str(response.get("id")),
                        "argilla_user_id": user_id,
                        "question": QUESTION,
                    },
                )
            )
    return batch


def new_events(candidates: Sequence[LabelEvent], existing: Sequence[LabelEvent]) -> tuple[list[LabelEvent], int]:
    """The candidates not yet in labels.jsonl, and how many were already there.

    A response seen before with the same status and label adds nothing (a re-save of the same
    answer); one that changed becomes a new event that supersedes the last one recorded.
    """
    seen_external = {e.external_id for e in existing if e.destination == DESTINATION and e.external_id}
    last_by_response: dict[str, LabelEvent] = {}
    for event in existing:
        response_id = event.extra.get("argilla_response_id") if event.destination == DESTINATION else None
        if response_id:
            last_by_response[response_id] = event
    fresh: list[LabelEvent] = []
    already = 0
    for event in candidates:
        response_id = event.extra.get("argilla_response_id")
        previous = last_by_response.get(response_id or "")
        if event.external_id in seen_external or (
            previous is not None and previous.status == event.status and previous.label == event.label
        ):
            already += 1
            continue
        if previous is not None:
            event = event.model_copy(update={"supersedes": previous.event_id})
        fresh.append(event)
        if response_id:
            last_by_response[response_id] = event
        seen_external.add(event.external_id)
    return fresh, already


# --------------------------------------------------------------------------------------------
# Pull
# --------------------------------------------------------------------------------------------


@dataclass
class PullResult:
    dataset: str
    workspace: str
    new_events: int
    submitted: int
    discarded: int
    corrections: int
    already_pulled: int
    drafts_left: int
    by_round: dict[str, int]
    by_annotator: dict[str, int]
    invalid: list[dict[str, Any]]
    skipped_unknown: list[dict[str, Any]]
    progress: dict[str, Any]


def _open_dataset(client: Argilla, run: RunDir, target: Target) -> tuple[dict[str, Any], DatasetPlan]:
    ds = client.dataset(target)
    if ds is None:
        raise StateError(
            f"no Argilla dataset {target.dataset!r} in workspace {target.workspace!r} at {client.url}; "
            "push a round first (push_to_argilla), or name the dataset and workspace it went to"
        )
    spec = run.spec()
    plan = dataset_plan(spec)
    questions = client.request("GET", f"/api/v1/datasets/{ds['id']}/questions", "read the dataset's questions")["items"]
    fields = client.request("GET", f"/api/v1/datasets/{ds['id']}/fields", "read the dataset's fields")["items"]
    problems = mismatches(plan, questions, fields)
    if problems:
        raise StateError(
            f"Argilla dataset {target.dataset!r} (workspace {target.workspace!r}) no longer matches spec.json "
            f"v{spec.spec_version}: "
            + "; ".join(problems)
            + ". Its answers cannot be read as labels of this spec; nothing was pulled. Bring spec.json back "
            "(spec_history.jsonl has the earlier versions) or pull from a dataset made for this spec"
        )
    return ds, plan


def _spec_check(run: RunDir) -> Callable[[str, Any], str | None]:
    """The run's label check for pulled answers; a cloze answer is counted against its item's blanks."""
    spec = run.spec()
    texts: dict[str, str] = {}
    if spec.task_type == "cloze":
        for table in (run.pool(), run.heldout()):
            if table is not None:
                texts |= dict(zip(table.ids, table.texts(spec.text_fields), strict=True))
    return lambda item, label: label_problem(spec, label, texts.get(item))


def pull_responses(
    run: RunDir,
    dataset: str | None = None,
    workspace: str | None = None,
    round_: int | None = None,
    skip_unknown: bool = False,
    progress: ProgressFn = no_progress,
) -> PullResult:
    """Bring submitted and discarded responses back as label events (exactly once)."""
    target = target_for(run, dataset, workspace)
    item_rounds = _item_rounds(run)
    with Argilla.from_env() as client:
        ds, plan = _open_dataset(client, run, target)
        records = client.list_records(ds["id"], progress)
        user_ids = {str(r.get("user_id")) for rec in records for r in rec.get("responses") or []}
        usernames, members = client.usernames(str(ds["workspace_id"]), user_ids)
    pool_ids = set(run.pool().ids)
    heldout = run.heldout()
    known = pool_ids | (set(heldout.ids) if heldout is not None else set())
    batch = events_from_records(
        plan,
        records,
        usernames,
        known,
        item_rounds,
        target.dataset,
        target.workspace,
        round_filter=round_,
        problem=_spec_check(run),
    )
    if batch.unknown and not skip_unknown:
        shown = ", ".join(f"{u['item_id']!r} (record {u['record_id']})" for u in batch.unknown[:5])
        raise InputError(
            f"Argilla dataset {target.dataset!r} has answers for {len(batch.unknown)} record(s) whose item "
            f"run {run.name!r} does not know: {shown}. Nothing was pulled. Delete those records in Argilla, "
            "or pull again with skip_unknown=true to take the rest and leave them"
        )
    with run.lock():
        existing = run.labels()
        fresh, already = new_events(batch.events, existing)
        written = run.append_labels(fresh)
        pulled = [*existing, *written]
        by_round: dict[str, int] = {}
        by_annotator: dict[str, int] = {}
        for event in written:
            by_round[str(event.round)] = by_round.get(str(event.round), 0) + 1
            by_annotator[event.annotator] = by_annotator.get(event.annotator, 0) + 1
        if written:
            run.append_note(
                f"pulled {len(written)} answer(s) from Argilla dataset {target.dataset!r}: "
                + ", ".join(f"round {r}: {n}" for r, n in sorted(by_round.items()))
            )
    log.info(
        "pulled %d new answer(s) from Argilla dataset %r (%d already pulled, %d drafts left)",
        len(written),
        target.dataset,
        already,
        batch.drafts,
    )
    min_submitted = (ds.get("distribution") or {}).get("min_submitted") or plan.min_submitted
    summary = progress_from_records(records, usernames, min_submitted, pulled, members, item_rounds)
    return PullResult(
        dataset=target.dataset,
        workspace=target.workspace,
        new_events=len(written),
        submitted=sum(1 for e in written if e.status == "submitted"),
        discarded=sum(1 for e in written if e.status == "discarded"),
        corrections=sum(1 for e in written if e.supersedes),
        already_pulled=already,
        drafts_left=batch.drafts,
        by_round=by_round,
        by_annotator=by_annotator,
        invalid=batch.invalid,
        skipped_unknown=batch.unknown,
        progress=summary,
    )
