"""export_batch: write a round's batch as a JSONL or CSV file for annotators (the file destination)."""

from __future__ import annotations

import csv
import io
import json
from typing import Literal

from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.people.overlap import heldout_overlap, people_needed, still_open
from alloop.tools.run.models import resolve_round
from alloop.tools.run.rundir import RunDir, atomic_write_text
from alloop.tools.run.schema import TaskSpec


class ExportInput(RunArgs):
    round: int | None = Field(None, ge=0, description="Selection round; default the latest.")
    format: Literal["jsonl", "csv"] = "jsonl"
    include_heldout: int = Field(
        0, ge=0, description="Also ask every annotator for this many held-out items (the human ceiling)."
    )


class ExportOutput(BaseModel):
    run: str
    round: int
    file: str
    n_items: int
    n_heldout: int = Field(0, description="Held-out rows among n_items, each for every annotator.")
    columns: list[str]


def export_batch(args: ExportInput, ctx: ToolContext) -> ExportOutput:
    """Write annotation_request_round_XX.{jsonl,csv} in the run: one row per selected item with its
    text, the model's suggestion and an empty `label` column to fill in, then import_labels it.

    include_heldout adds held-out items for every annotator (no suggestion; the same ones until
    enough people answered), so check_convergence can measure the human ceiling."""
    run = ctx.root.run(args.run)
    spec = run.spec()
    round_ = resolve_round(args.round, run.latest_selection_round())
    rows = run.selection(round_)
    pool = run.pool()
    texts = dict(zip(pool.ids, pool.texts(spec.text_fields), strict=True))
    records = [
        {
            "id": r.item_id,
            "text": texts[r.item_id],
            "suggestion": r.prediction or "",
            "confidence": "" if r.confidence is None else round(r.confidence, 4),
            "reason": r.reason,
            "round": round_,
            "label": "",
            "annotator": "",
        }
        for r in rows
    ]
    records += _heldout_records(run, spec, round_, args.include_heldout)
    columns = list(records[0]) if records else ["id", "label"]
    if args.format == "jsonl":
        body = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)
    else:
        handle = io.StringIO()
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)
        body = handle.getvalue()
    path = run.round_file("annotation_request", round_, args.format)
    atomic_write_text(path, body)
    n_heldout = len(records) - len(rows)
    return ExportOutput(
        run=args.run, round=round_, file=path.name, n_items=len(records), n_heldout=n_heldout, columns=columns
    )


def _heldout_records(run: RunDir, spec: TaskSpec, round_: int, n: int) -> list[dict[str, object]]:
    """Rows for the overlap items that still lack people; no suggestion, so nobody copies the model."""
    ids = still_open(run, spec, heldout_overlap(run, n))
    if not ids:
        return []
    heldout = run.heldout()
    assert heldout is not None  # heldout_overlap refused a run without one
    texts = dict(zip(heldout.ids, heldout.texts(spec.text_fields), strict=True))
    reason = f"held-out overlap: every annotator labels it ({people_needed(spec)}+ people, for the human ceiling)"
    return [
        {
            "id": i,
            "text": texts[i],
            "suggestion": "",
            "confidence": "",
            "reason": reason,
            "round": round_,
            "label": "",
            "annotator": "",
        }
        for i in ids
    ]


SPEC = ToolSpec(
    name="export_batch",
    fn=export_batch,
    input_model=ExportInput,
    output_model=ExportOutput,
    behaviour="writes",
    idempotent=True,
)
