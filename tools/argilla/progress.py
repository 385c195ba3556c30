"""Annotation progress in Argilla: records done and pending, per round and per annotator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alloop.tools.argilla.client import DESTINATION, Argilla, target_for
from alloop.tools.errors import StateError
from alloop.tools.run.schema import LabelEvent

if TYPE_CHECKING:  # pragma: no cover
    from alloop.tools.run.rundir import RunDir


# --------------------------------------------------------------------------------------------
# Progress (pure)
# --------------------------------------------------------------------------------------------


def progress_from_records(
    records: Sequence[dict[str, Any]],
    usernames: dict[str, str],
    min_submitted: int,
    pulled: Sequence[LabelEvent] = (),
    annotators: Sequence[str] = (),
    item_rounds: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Records done and pending, per round and per annotator.

    A record is done when it has `min_submitted` submitted responses (Argilla's own rule with
    task distribution). For each annotator: submitted, discarded, draft, and `to_do` (records
    not done that they have not answered). `not_pulled` counts answers not yet in labels.jsonl.
    """
    item_rounds = item_rounds or {}
    pulled_responses = {e.extra.get("argilla_response_id") for e in pulled if e.destination == DESTINATION}
    rounds: dict[int, dict[str, Any]] = {}
    names = set(annotators)
    for record in records:
        metadata = record.get("metadata") or {}
        round_ = metadata.get("round")
        if not isinstance(round_, int):
            round_ = item_rounds.get(record.get("external_id") or "", -1)
        entry = rounds.setdefault(
            round_,
            {
                "records": 0,
                "done": 0,
                "pending": 0,
                "submitted": 0,
                "discarded": 0,
                "drafts": 0,
                "not_pulled": 0,
                "per_annotator": {},
                "_answered_by": [],
            },
        )
        responses = record.get("responses") or []
        submitted = [r for r in responses if r.get("status") == "submitted"]
        done = record.get("status") == "completed" or len(submitted) >= min_submitted
        entry["records"] += 1
        entry["done" if done else "pending"] += 1
        answered_by = set()
        for response in responses:
            status = response.get("status")
            user = usernames.get(str(response.get("user_id")), f"argilla-user-{response.get('user_id')}")
            names.add(user)
            per = entry["per_annotator"].setdefault(user, {"submitted": 0, "discarded": 0, "draft": 0})
            key = "draft" if status == "draft" else status
            if key in per:
                per[key] += 1
            if status == "submitted":
                entry["submitted"] += 1
            elif status == "discarded":
                entry["discarded"] += 1
            elif status == "draft":
                entry["drafts"] += 1
            if status in ("submitted", "discarded"):
                answered_by.add(user)
                if str(response.get("id")) not in pulled_responses:
                    entry["not_pulled"] += 1
        entry["_answered_by"].append((done, answered_by))
    for entry in rounds.values():
        for user in names:
            per = entry["per_annotator"].setdefault(user, {"submitted": 0, "discarded": 0, "draft": 0})
            per["to_do"] = sum(1 for done, by in entry["_answered_by"] if not done and user not in by)
        del entry["_answered_by"]
    totals = {
        key: sum(entry[key] for entry in rounds.values())
        for key in ("records", "done", "pending", "submitted", "discarded", "drafts", "not_pulled")
    }
    return {
        "annotators_per_item": min_submitted,
        "rounds": {str(r): rounds[r] for r in sorted(rounds)},
        "totals": totals,
    }


def _item_rounds(run: RunDir) -> dict[str, int]:
    rounds: dict[str, int] = {}
    for round_ in run.selection_rounds():
        for row in run.selection(round_):
            rounds[row.item_id] = round_
    return rounds


# --------------------------------------------------------------------------------------------
# Progress, for the status tool
# --------------------------------------------------------------------------------------------


def argilla_progress(run: RunDir, dataset: str | None = None, workspace: str | None = None) -> dict[str, Any] | None:
    """Annotation progress of a run in Argilla: records done and pending, per round, per annotator.

    Returns None when the run never pushed to Argilla (and no dataset is named). Raises
    ServiceError when the server cannot be reached or refuses the key: a caller such as `status`
    should catch AlloopError and show its message. Reads only; writes nothing.
    """
    before = run.destinations().get(DESTINATION)
    if before is None and dataset is None:
        return None
    target = target_for(run, dataset, workspace)
    item_rounds = _item_rounds(run)
    with Argilla.from_env() as client:
        ds = client.dataset(target)
        if ds is None:
            raise StateError(f"no Argilla dataset {target.dataset!r} in workspace {target.workspace!r} at {client.url}")
        records = client.list_records(ds["id"])
        user_ids = {str(r.get("user_id")) for rec in records for r in rec.get("responses") or []}
        usernames, members = client.usernames(str(ds["workspace_id"]), user_ids)
    min_submitted = (ds.get("distribution") or {}).get("min_submitted") or run.spec().annotators_per_item
    summary = progress_from_records(records, usernames, min_submitted, run.labels(), members, item_rounds)
    return {"dataset": target.dataset, "workspace": target.workspace, "dataset_id": str(ds["id"]), **summary}
