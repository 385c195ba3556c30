"""simulate_annotator: answer a batch from gold labels, for demos, benchmarks and people-level tests.

Its labels are marked `simulated` in their provenance; they stand in for people's answers, never
for held-out gold (held-out items are never selected). Several participants with a stated noise
model (alloop.tools.people.noise) let GLMM loops and agreement run end to end; held-out overlap
items (alloop.tools.people.overlap) give check_convergence a human ceiling.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import InputError
from alloop.tools.people.noise import SimulatedPeople
from alloop.tools.people.overlap import heldout_overlap
from alloop.tools.run.labels import check_label, item_texts
from alloop.tools.run.models import resolve_round
from alloop.tools.run.reader import normalize_id
from alloop.tools.run.rundir import RunDir, read_jsonl
from alloop.tools.run.schema import LabelEvent, TaskSpec


class SimulateAnnotatorInput(RunArgs):
    gold: str = Field(description='JSONL of {"id", "label"} rows covering the pool; over MCP, under the run root.')
    round: int | None = Field(None, ge=0, description="Selection round to answer; default the latest.")
    participants: int = Field(1, ge=1, le=99, description="Simulated people answering each item (sim-p01, …).")
    noise: float = Field(0.0, ge=0, le=100, description="0 answers gold; more: person bias and item difficulty.")
    include_heldout: int = Field(0, ge=0, description="Also answer this many held-out items, for the human ceiling.")
    seed: int = 0


class SimulateAnnotatorOutput(BaseModel):
    run: str
    round: int
    n_answered: int
    n_missing_gold: int
    n_heldout: int = Field(0, description="Answers on held-out items (counted in n_answered).")
    noise_model: str = ""


def load_gold(path: Path, spec: TaskSpec, texts: dict[str, str] | None = None) -> dict[str, object]:
    """Each gold row's label, checked as an imported label is (a bad row names its line)."""
    gold = {}
    texts = texts or {}
    for number, row in enumerate(read_jsonl(path), start=1):
        where = f"{path}:{number}"
        if "id" not in row or "label" not in row:
            raise InputError(f"{where}: gold rows need 'id' and 'label'")
        item_id = normalize_id(row["id"], where)
        gold[item_id] = check_label(spec, row["label"], where, texts.get(item_id))
    return gold


def heldout_gold(run: RunDir, spec: TaskSpec, n: int) -> dict[str, object]:
    """Gold of the first `n` overlap items, from the run's own held-out set."""
    ids = heldout_overlap(run, n)
    if not ids:
        return {}
    heldout = run.heldout()
    assert heldout is not None  # heldout_overlap refused a run without one
    labels = heldout.column("label")
    index = heldout.index_of()
    texts = item_texts(spec, heldout)
    return {i: check_label(spec, labels[index[i]], f"{heldout.source}: item {i!r}", texts.get(i)) for i in ids}


def simulate_annotator(args: SimulateAnnotatorInput, ctx: ToolContext) -> SimulateAnnotatorOutput:
    """Answer a selection round from a gold file as simulated people (labels marked simulated).

    `participants` people answer every item; with noise each person has a bias and each item a
    difficulty, seeded and recorded in each label (tools/people/noise.py). Noise 0 answers gold.
    """
    run = ctx.root.run(args.run)
    with run.lock():
        spec = run.spec()
        gold = load_gold(ctx.input_path(args.gold), spec, item_texts(spec, run.pool()))
        round_ = resolve_round(args.round, run.latest_selection_round())
        rows = run.selection(round_)
        people = SimulatedPeople(spec.task_type, spec.labels, args.participants, args.noise, args.seed)
        plain = args.participants == 1 and args.noise == 0  # the lone perfect simulator of old
        tasks = [(f"{round_}:{r.item_id}", r.item_id, gold[r.item_id]) for r in rows if r.item_id in gold]
        tasks += [(f"heldout:{i}", i, g) for i, g in heldout_gold(run, spec, args.include_heldout).items()]
        events = []
        for key, item_id, label in tasks:
            for name in people.names:
                answer = people.answer(name, item_id, label)
                source = "heldout set" if key.startswith("heldout:") else args.gold.rsplit("/", 1)[-1]
                extra: dict[str, object] = {"simulated": True, "gold_file": source}
                if not plain:
                    extra |= {"noise": args.noise, "seed": args.seed, **answer.params}
                events.append(
                    LabelEvent(
                        item_id=item_id,
                        label=answer.label,
                        source="simulated",
                        annotator=name,
                        round=round_,
                        destination="simulated",
                        external_id=f"simulated:{key}" if args.participants == 1 else f"simulated:{key}:{name}",
                        extra=extra,
                    )
                )
        added = run.append_labels(events)
        n_heldout = sum(1 for e in added if e.external_id and e.external_id.startswith("simulated:heldout:"))
        if added and not plain:
            run.append_note(
                f"round {round_}: {len(people.names)} simulated participant(s) gave {len(added)} answers "
                f"({n_heldout} on held-out items); {people.describe()}"
            )
    n_items = sum(1 for r in rows if r.item_id in gold)
    return SimulateAnnotatorOutput(
        run=args.run,
        round=round_,
        n_answered=len(added),
        n_missing_gold=len(rows) - n_items,
        n_heldout=n_heldout,
        noise_model="" if plain else people.describe(),
    )


SPEC = ToolSpec(
    name="simulate_annotator",
    fn=simulate_annotator,
    input_model=SimulateAnnotatorInput,
    output_model=SimulateAnnotatorOutput,
    behaviour="writes",
    idempotent=True,
)
