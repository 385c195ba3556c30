"""import_labels: bring labels back from a JSONL or CSV file (the file destination).

Every row is checked first (known item, the round, a label that fits the task: run/labels.py's
check_label); one bad row rejects the file, naming its line, and nothing is written. Importing the
same file again adds nothing. Rows with an empty label are skipped as not yet answered. Ids are
read as every input file's are (run/reader.py): `" p1"` is `p1`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import InputError
from alloop.tools.run.labels import check_label, item_texts
from alloop.tools.run.models import resolve_round
from alloop.tools.run.reader import normalize_id, read_csv_lines, read_jsonl
from alloop.tools.run.schema import LabelEvent, LabelSource


class ImportInput(RunArgs):
    file: str = Field(
        description="JSONL or CSV with columns id, label and optionally annotator; over MCP, under the run root."
    )
    round: int | None = Field(
        None, ge=0, le=99, description="Round the answers belong to; default the latest selection."
    )
    annotator: str = Field("annotator", description="Who labeled, where the file has no annotator column.")
    source: LabelSource = Field("human", description="human for people; import for labels from elsewhere.")


class ImportOutput(BaseModel):
    run: str
    round: int
    n_rows: int
    n_added: int
    n_already_recorded: int
    n_blank: int


def _rows(path: Path, shown: str) -> list[tuple[int, dict]]:
    """(line, row) of a JSONL or CSV file, read by the one input reader."""
    if path.suffix.lower() != ".csv":
        return list(enumerate(read_jsonl(path), start=1))
    rows = read_csv_lines(path)
    if rows and not {"id", "label"} <= set(rows[0][1]):
        raise InputError(f"{shown}:1: the header needs the columns id and label; it has {sorted(rows[0][1])}")
    return rows


def import_labels(args: ImportInput, ctx: ToolContext) -> ImportOutput:
    """Add the labels in a JSONL or CSV file to the run (after export_batch).

    One bad row rejects the file; importing again adds nothing; rows with no label are skipped.
    """
    if args.source == "judge":
        raise InputError("judge labels come from llm_judge, never from a file import")
    path = ctx.input_path(args.file)
    if not path.is_file():
        raise InputError(f"{args.file}: no such file")
    run = ctx.root.run(args.run)
    with run.lock():
        spec = run.spec()
        round_ = resolve_round(args.round, run.latest_selection_round())
        pool, heldout = run.pool(), run.heldout()
        known = set(pool.ids) | (set(heldout.ids) if heldout is not None else set())
        texts = item_texts(spec, pool, heldout)  # cloze: the blanks each answer must fill
        events, blank = [], 0
        for number, row in _rows(path, args.file):
            where = f"{args.file}:{number}"
            if row.get("id") is None:
                raise InputError(f"{where}: missing 'id'")
            item_id = normalize_id(row["id"], where)
            if item_id not in known:
                raise InputError(f"{where}: item {item_id!r} is not in this run's pool or held-out set")
            if row.get("label") in (None, ""):
                blank += 1
                continue
            label = check_label(spec, row["label"], where, texts.get(item_id))
            annotator = str(row.get("annotator") or args.annotator)
            fingerprint = hashlib.sha256(
                f"{path.name}|{item_id}|{annotator}|{label}".encode("utf-8", "surrogatepass")  # refused when written
            ).hexdigest()[:16]
            events.append(
                LabelEvent(
                    item_id=item_id,
                    label=label,
                    source=args.source,
                    annotator=annotator,
                    round=round_,
                    destination="file",
                    external_id=fingerprint,
                    extra={"file": path.name, "line": number},
                )
            )
        added = run.append_labels(events)
    return ImportOutput(
        run=args.run,
        round=round_,
        n_rows=len(events) + blank,
        n_added=len(added),
        n_already_recorded=len(events) - len(added),
        n_blank=blank,
    )


SPEC = ToolSpec(
    name="import_labels",
    fn=import_labels,
    input_model=ImportInput,
    output_model=ImportOutput,
    behaviour="writes",
    idempotent=True,
)
