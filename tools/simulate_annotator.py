"""simulate_annotator: answer a batch from gold labels, for demos and benchmarks.

Its labels are marked `simulated` in their provenance; they stand in for a person's answers,
never for held-out gold (held-out items are never selected).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import InputError
from alloop.tools.run.labels import check_label
from alloop.tools.run.models import resolve_round
from alloop.tools.run.rundir import read_jsonl
from alloop.tools.run.schema import LabelEvent


class SimulateAnnotatorInput(RunArgs):
    gold: str = Field(description='JSONL of {"id", "label"} rows covering the pool.')
    round: int | None = Field(None, ge=0, description="Selection round to answer; default the latest.")


class SimulateAnnotatorOutput(BaseModel):
    run: str
    round: int
    n_answered: int
    n_missing_gold: int


def load_gold(path, spec) -> dict[str, object]:
    gold = {}
    for number, row in enumerate(read_jsonl(path), start=1):
        if "id" not in row or "label" not in row:
            raise InputError(f"{path}:{number}: gold rows need 'id' and 'label'")
        gold[str(row["id"])] = check_label(spec, row["label"], f"{path}:{number}")
    return gold


def simulate_annotator(args: SimulateAnnotatorInput, ctx: ToolContext) -> SimulateAnnotatorOutput:
    """Answer a selection round from a gold file, as a perfect simulated annotator would."""
    run = ctx.root.run(args.run)
    with run.lock():
        spec = run.spec()
        gold = load_gold(ctx.input_path(args.gold), spec)
        round_ = resolve_round(args.round, run.latest_selection_round())
        rows = run.selection(round_)
        events = [
            LabelEvent(
                item_id=row.item_id,
                label=gold[row.item_id],
                source="simulated",
                annotator="simulator",
                round=round_,
                destination="simulated",
                external_id=f"simulated:{round_}:{row.item_id}",
                extra={"simulated": True, "gold_file": args.gold.rsplit("/", 1)[-1]},
            )
            for row in rows
            if row.item_id in gold
        ]
        added = run.append_labels(events)
    return SimulateAnnotatorOutput(
        run=args.run, round=round_, n_answered=len(added), n_missing_gold=len(rows) - len(events)
    )


SPEC = ToolSpec(
    name="simulate_annotator",
    fn=simulate_annotator,
    input_model=SimulateAnnotatorInput,
    output_model=SimulateAnnotatorOutput,
    behaviour="writes",
    idempotent=True,
)
