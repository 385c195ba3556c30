"""What a judging call adds to the run's books: label events for its labels, and its spending.

Pure where it can be: the label events and the record → event links are returned, and the
caller writes them (the judge log first, so no judge label exists without its logged judgment).
"""

from __future__ import annotations

from alloop.tools.judge.records import USES_WITH_LABELS, JudgeRecord
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import LabelEvent, TaskSpec


def label_events(
    spec: TaskSpec, records: list[JudgeRecord], use: str, recorded: list[LabelEvent]
) -> tuple[list[LabelEvent], dict[str, str]]:
    """The new label events for these judgments, and record id → the id of the event carrying its label.

    Only a use that writes labels gives events, and only for valid labels of pool items. A judgment
    already in `recorded` (a cached answer judged again) links to its earlier event, not a new one.
    """
    if use not in USES_WITH_LABELS:
        return [], {}
    earlier = {(e.destination, e.external_id): e.event_id for e in recorded if e.external_id}
    enters = use == "pseudo_labeling" and spec.judge.pseudo_labels_in_training
    fresh: list[LabelEvent] = []
    event_ids: dict[str, str] = {}
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
        known = earlier.get((event.destination, event.external_id))
        if known is None:
            fresh.append(event)
        event_ids[record.record_id] = event.event_id if known is None else known
    return fresh, event_ids


def linked(records: list[JudgeRecord], event_ids: dict[str, str]) -> list[JudgeRecord]:
    """The records with `label_event_id` set from `event_ids` (copies; the inputs stay as they were)."""
    return [
        r.model_copy(update={"label_event_id": event_ids[r.record_id]}) if r.record_id in event_ids else r
        for r in records
    ]


def spent(run: RunDir) -> float:
    """USD the run's judge log says its calls cost so far."""
    total = 0.0
    for round_ in run.judge_rounds():
        for row in run.judge_rows(round_):
            cost = row.get("cost_usd")
            if isinstance(cost, int | float):
                total += float(cost)
    return total
