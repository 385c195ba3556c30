"""Where the judge's label differs from a reference: held-out gold, else the human answers.

These are what a person should look at before trusting the judge (the review prompt walks
through them); they never change a label.
"""

from __future__ import annotations

from typing import Any

from alloop.tools.judge.items import human_labels
from alloop.tools.judge.records import JudgeRecord
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import LabelEvent

MAX_LISTED = 100


def disagreements(run: RunDir, records: list[JudgeRecord], events: list[LabelEvent]) -> list[dict[str, Any]]:
    """The judged items whose valid label differs from their reference (at most MAX_LISTED)."""
    gold = run.heldout_gold()
    human = human_labels(events)
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
    return out[:MAX_LISTED]
