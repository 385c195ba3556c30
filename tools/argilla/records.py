"""The push: a round's selection as Argilla records, sent in bulk.

Records are keyed by item id (Argilla's `external_id`), so pushing a batch again updates
records, never duplicates. Each record carries the item's text fields and, as metadata hidden
from annotators, its item id and what the selection said about it. The model's prediction is
pre-filled as a suggestion only when spec.argilla_suggestions asks for it: the batch holds the
items the model is least sure of, where a pre-selected guess one Enter from submitted anchors
people most.
Building the records is pure; `upsert_records` and `push_round` talk to the server.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alloop.tools.argilla.client import DESTINATION, Argilla, target_for
from alloop.tools.argilla.settings import (
    QUESTION,
    DatasetPlan,
    QuestionPlan,
    _as_number,
    dataset_plan,
    ensure_dataset,
    score_metadata_name,
)
from alloop.tools.base import ProgressFn, no_progress
from alloop.tools.errors import AlloopError, InputError, StateError
from alloop.tools.people.overlap import heldout_overlap, people_needed, still_open
from alloop.tools.run.schema import SelectionRow, TaskSpec, utc_now

if TYPE_CHECKING:  # pragma: no cover
    from alloop.tools.run.items import ItemTable
    from alloop.tools.run.rundir import RunDir

log = logging.getLogger("alloop.argilla")

UPSERT_BATCH = 256  # records per bulk request (the server takes up to 500; the SDK sends 256)
BULK_TIMEOUT = 300.0  # seconds for one bulk request: the server indexes every record before answering


# --------------------------------------------------------------------------------------------
# Records to push (pure)
# --------------------------------------------------------------------------------------------


def suggestion_value(plan: QuestionPlan, prediction: Any) -> Any:
    """The model's prediction as a value the question accepts, or None when it fits none."""
    if prediction is None or (isinstance(prediction, float) and math.isnan(prediction)):
        return None
    if plan.kind == "label_selection":
        value = str(prediction)
        return value if value in plan.options else None
    if plan.kind == "multi_label_selection":
        values = [str(prediction)] if str(prediction) in plan.options else _as_label_list(prediction)
        if not values or any(v not in plan.options for v in values):
            return None
        return values
    if plan.kind == "rating":
        for value, label in plan.value_to_label.items():
            if str(prediction) == label:
                return value
        return None
    if plan.numeric:
        number = _as_number(prediction)
        return None if number is None else _format_number(number)
    text = str(prediction)
    return text if text.strip() else None


def _as_label_list(prediction: Any) -> list[str] | None:
    if isinstance(prediction, list | tuple):
        return [str(p) for p in prediction]
    text = str(prediction).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return None
        return [str(p) for p in parsed] if isinstance(parsed, list) else None
    separator = "|" if "|" in text else ","
    return [part.strip() for part in text.split(separator) if part.strip()]


def _format_number(number: float) -> str:
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def record_payloads(
    plan: DatasetPlan, rows: Sequence[SelectionRow], items: Sequence[dict[str, Any]], *, suggest: bool = False
) -> tuple[list[dict[str, Any]], list[str]]:
    """The records for a batch: one per selection row, keyed by item id; and warnings.

    `items[i]` is the pool row of `rows[i]`. A record is a dict with `id`, `fields`,
    `metadata` and `suggestion` (value, score, agent), which is None unless `suggest`.
    """
    payloads = []
    warnings_: list[str] = []
    skipped_suggestions = []
    for row, item in zip(rows, items, strict=True):
        fields = {}
        for f in plan.fields:
            value = item.get(f.source)
            fields[f.name] = "" if value is None else str(value)
        metadata: dict[str, Any] = {
            "item_id": row.item_id,
            "round": row.round,
            "rank": row.rank,
            "strategy": row.strategy,
        }
        if row.reason:
            metadata["reason"] = row.reason[:1000]
        if row.prediction is not None:
            metadata["prediction"] = str(row.prediction)[:1000]
        if row.confidence is not None and math.isfinite(row.confidence):
            metadata["confidence"] = float(row.confidence)
        if row.model_version:
            metadata["model_version"] = row.model_version
        for name, score in row.scores.items():
            if score is not None and math.isfinite(score):
                metadata[score_metadata_name(name)] = float(score)
        suggestion = None
        value = suggestion_value(plan.question, row.prediction) if suggest else None
        if value is not None:
            score = row.confidence
            if score is not None and not (math.isfinite(score) and 0.0 <= score <= 1.0):
                score = None
            if isinstance(value, list) and score is not None:
                score = [score] * len(value)  # a multi-label suggestion takes one score per label
            agent = _agent(row.model_version)
            suggestion = {"value": value, "score": score, "agent": agent}
        elif suggest and row.prediction is not None:
            skipped_suggestions.append(row.item_id)
        payloads.append({"id": row.item_id, "fields": fields, "metadata": metadata, "suggestion": suggestion})
    if skipped_suggestions:
        warnings_.append(
            f"{len(skipped_suggestions)} prediction(s) fit no answer of the question and were not "
            f"suggested (items {skipped_suggestions[:5]})"
        )
    return payloads, warnings_


def heldout_payloads(
    plan: DatasetPlan, items: Sequence[dict[str, Any]], round_: int, first_rank: int, people: int
) -> list[dict[str, Any]]:
    """Records for held-out overlap items: no suggestion and no prediction, so nobody copies the model."""
    reason = f"held-out overlap: every annotator labels it ({people}+ people, for the human ceiling)"
    return [
        {
            "id": str(item["id"]),
            "fields": {f.name: "" if item.get(f.source) is None else str(item[f.source]) for f in plan.fields},
            "metadata": {
                "item_id": str(item["id"]),
                "round": round_,
                "rank": rank,
                "strategy": "heldout-overlap",
                "reason": reason,
            },
            "suggestion": None,
        }
        for rank, item in enumerate(items, start=first_rank)
    ]


def _agent(model_version: str | None) -> str:
    agent = re.sub(r"[^a-zA-Z0-9\-_:./\s]", "-", model_version or "alloop")[:200]
    return agent if re.search(r"[a-zA-Z0-9]", agent) else "alloop"


# --------------------------------------------------------------------------------------------
# Push
# --------------------------------------------------------------------------------------------


@dataclass
class PushResult:
    dataset: str
    workspace: str
    dataset_id: str
    round: int
    records: int
    created: int
    updated: int
    suggestions: int
    created_dataset: bool
    question: str
    annotators_per_item: int
    warnings: list[str]
    heldout: int = 0
    suggest: bool = False


def _heldout_items(run: RunDir, spec: TaskSpec, plan: DatasetPlan, n: int) -> list[dict[str, Any]]:
    """The held-out overlap items still short of people, once the dataset can collect 2+ answers a record."""
    if n <= 0:
        return []
    needed = people_needed(spec)
    if plan.min_submitted < needed:
        raise InputError(
            f"held-out items need {needed} or more people each for the human ceiling, but the run's Argilla "
            f"dataset completes a record after {plan.min_submitted} answer(s) (spec annotators_per_item), and "
            f"a completed record leaves the others' queues: set annotators_per_item to {needed} (interview_spec) "
            "and push again, or send held-out items with export_batch"
        )
    ids = still_open(run, spec, heldout_overlap(run, n))
    heldout = run.heldout()
    if not ids or heldout is None:
        return []
    return heldout.rows(heldout.positions(ids))


def _batch_items(run: RunDir, rows: Sequence[SelectionRow], pool: ItemTable) -> list[dict[str, Any]]:
    ids = [row.item_id for row in rows]
    index = pool.index_of()
    unknown = [i for i in ids if i not in index]
    if unknown:
        raise InputError(
            f"{run.round_file('selection', rows[0].round).name}: item(s) {unknown[:5]} are not in the pool "
            f"of run {run.name!r}; redo select_batch for this round"
        )
    return pool.rows([index[i] for i in ids])


def upsert_records(
    client: Argilla,
    dataset: dict[str, Any],
    payloads: Sequence[dict[str, Any]],
    progress: ProgressFn = no_progress,
) -> tuple[int, int]:
    """Send records in bulk, keyed by item id (Argilla's external_id); returns (created, updated).

    This is the endpoint the SDK's `records.log` calls (PUT /datasets/{id}/records/bulk), sent
    directly: the SDK reads an `updated_item_ids` key that the 2.8 server never returns (so it
    counts every update as new), and re-parses every returned record into models, which costs
    more than building the request. The dataset's record count before and after tells new
    records from updated ones.
    """
    dataset_id = str(dataset["id"])
    questions = client.request("GET", f"/api/v1/datasets/{dataset_id}/questions", "read the dataset's questions")
    question_id = next(q["id"] for q in questions["items"] if q["name"] == QUESTION)
    before = _record_count(client, dataset_id)
    total = len(payloads)
    for start in range(0, total, UPSERT_BATCH):
        chunk = payloads[start : start + UPSERT_BATCH]
        items = []
        for payload in chunk:
            item: dict[str, Any] = {
                "external_id": payload["id"],
                "fields": payload["fields"],
                "metadata": payload["metadata"],
            }
            if payload["suggestion"] is not None:
                item["suggestions"] = [{"question_id": question_id, "type": "model", **payload["suggestion"]}]
            items.append(item)
        try:
            client.request(
                "PUT",
                f"/api/v1/datasets/{dataset_id}/records/bulk",
                f"send records {start + 1}-{start + len(chunk)} of {total}",
                json={"items": items},
                timeout=BULK_TIMEOUT,
            )
        except AlloopError as exc:
            raise type(exc)(
                f"{exc}. {start} of {total} records were sent before this; push again to send the rest "
                "(records are keyed by item id: nothing duplicates)"
            ) from exc
        progress(start + len(chunk), total, f"sent {start + len(chunk)}/{total} records to Argilla")
    created = max(0, min(total, _record_count(client, dataset_id) - before))
    return created, total - created


def _record_count(client: Argilla, dataset_id: str) -> int:
    reply = client.request("GET", f"/api/v1/datasets/{dataset_id}/progress", "count the dataset's records")
    return int(reply.get("total", 0))


def push_round(
    run: RunDir,
    round_: int,
    dataset: str | None = None,
    workspace: str | None = None,
    annotators: Sequence[str] = (),
    progress: ProgressFn = no_progress,
    include_heldout: int = 0,
) -> PushResult:
    """Send a round's selection to the run's Argilla dataset (made or checked first), with the
    first `include_heldout` held-out overlap items that still lack people."""
    spec = run.spec()
    rows = sorted(run.selection(round_), key=lambda r: r.rank)
    if not rows:
        raise StateError(f"selection_round_{round_:02d}.jsonl of run {run.name!r} is empty: nothing to push")
    items = _batch_items(run, rows, run.pool())
    plan = dataset_plan(spec, [name for row in rows for name in row.scores])
    payloads, notes = record_payloads(plan, rows, items, suggest=spec.argilla_suggestions)
    shared = _heldout_items(run, spec, plan, include_heldout)
    payloads += heldout_payloads(plan, shared, round_, len(rows) + 1, people_needed(spec))
    target = target_for(run, dataset, workspace)
    with Argilla.from_env() as client:
        ds, made, more_notes = ensure_dataset(client, target, plan, annotators)
        created, updated = upsert_records(client, ds, payloads, progress)
    notes.extend(more_notes)
    log.info(
        "round %d: %d records to Argilla dataset %r (%d new, %d updated)",
        round_,
        len(payloads),
        target.dataset,
        created,
        updated,
    )
    with run.lock():
        before = run.destinations().get(DESTINATION) or {}
        rounds = dict(before.get("rounds") or {})
        rounds[str(round_)] = {
            "pushed_at": utc_now(),
            "records": len(payloads),
            "heldout": len(shared),
            "suggestions": spec.argilla_suggestions,
        }
        run.write_destination(
            DESTINATION,
            {"dataset": target.dataset, "workspace": target.workspace, "dataset_id": str(ds["id"]), "rounds": rounds},
        )
        run.append_note(
            f"round {round_}: pushed {len(payloads)} records ({len(shared)} held-out) to Argilla dataset "
            f"{target.dataset!r} (workspace {target.workspace!r}; {created} new, {updated} updated; model "
            f"suggestions {'shown' if spec.argilla_suggestions else 'off'})"
        )
    return PushResult(
        dataset=target.dataset,
        workspace=target.workspace,
        dataset_id=str(ds["id"]),
        round=round_,
        records=len(payloads),
        created=created,
        updated=updated,
        suggestions=sum(1 for p in payloads if p["suggestion"] is not None),
        created_dataset=made,
        question=plan.question.kind,
        annotators_per_item=plan.min_submitted,
        warnings=notes,
        heldout=len(shared),
        suggest=spec.argilla_suggestions,
    )
