"""export_batch: write a round's batch as a JSONL or CSV file for annotators (the file destination)."""

from __future__ import annotations

import csv
import io
import json
from typing import Literal

from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.run.models import resolve_round
from alloop.tools.run.rundir import atomic_write_text


class ExportInput(RunArgs):
    round: int | None = Field(None, ge=0, description="Selection round; default the latest.")
    format: Literal["jsonl", "csv"] = "jsonl"


class ExportOutput(BaseModel):
    run: str
    round: int
    file: str
    n_items: int
    columns: list[str]


def export_batch(args: ExportInput, ctx: ToolContext) -> ExportOutput:
    """Write annotation_request_round_XX.{jsonl,csv} in the run: one row per selected item with its
    text, the model's suggestion and an empty `label` column to fill in, then import_labels it."""
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
    return ExportOutput(run=args.run, round=round_, file=path.name, n_items=len(records), columns=columns)


SPEC = ToolSpec(
    name="export_batch",
    fn=export_batch,
    input_model=ExportInput,
    output_model=ExportOutput,
    behaviour="writes",
    idempotent=True,
)
