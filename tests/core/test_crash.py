"""Kill each step of a small loop at every fsync and rename; the next command brings the run back, whole.

The reliability review (2026-11, §1) killed alloop with `kill -9` and strace at every fsync and
rename. Here the same points are hit in process: the run package's `fsync` and `rename` raise
`Killed` (a BaseException, as a signal would end the process) at their k-th call, for k = 1..N of
each step. Then `status` opens the run, the step is run again, and the review's invariants are
checked: no label event lost or doubled, every annotation file in step with labels.jsonl, no
results round doubled or lost, every selection file whole, no stale lock, no temp, staging or
journal file left, and the run in the very state an uninterrupted step leaves (so the loop goes
on to completion as it would have). benchmarks/kill_campaign.py does the same with real SIGKILLs.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.check_convergence import CheckConvergenceInput, check_convergence
from alloop.tools.errors import InputError
from alloop.tools.import_labels import ImportInput, import_labels
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.report.datasets import BBC_LABELS
from alloop.tools.run import files
from alloop.tools.run.items import ItemTable
from alloop.tools.run.models import ModelDir, model_rounds
from alloop.tools.run.rundir import RunRoot, read_jsonl
from alloop.tools.run.schema import TaskSpec
from alloop.tools.score_pool import ScoreInput, score_pool
from alloop.tools.seed_set import SeedInput, seed_set
from alloop.tools.select_batch import SelectInput, select_batch
from alloop.tools.simulate import SimulateInput, simulate
from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
from alloop.tools.status import StatusInput, status
from alloop.tools.train_glmm import TrainInput, train_glmm
from alloop.tools.write_report import ReportInput, write_report

RUN = "c"
LEFTOVER_MARKS = (".tmp", ".journal", "_encoder.", ".creating-")


class Killed(BaseException):
    """What a SIGKILL is to the process: nothing after it runs but the unwinding."""


class KillAt:
    """Counts the run package's fsyncs and renames; raises Killed instead of the k-th (0: never)."""

    def __init__(self, k: int) -> None:
        self.k, self.calls = k, 0

    def hit(self) -> None:
        self.calls += 1
        if self.calls == self.k:
            raise Killed(f"killed at write point {self.k}")


@pytest.fixture
def kill_at(monkeypatch) -> Iterator[Callable[[int], KillAt]]:
    real_fsync, real_rename = files.fsync, files.rename

    def install(k: int) -> KillAt:
        killer = KillAt(k)

        def fsync(fd: int) -> None:
            killer.hit()
            real_fsync(fd)

        def rename(*args: Any, **kwargs: Any) -> None:
            killer.hit()
            real_rename(*args, **kwargs)

        monkeypatch.setattr(files, "fsync", fsync)
        monkeypatch.setattr(files, "rename", rename)
        return killer

    yield install
    monkeypatch.setattr(files, "fsync", real_fsync)
    monkeypatch.setattr(files, "rename", real_rename)


# -- the small loop: 60 pool items, 20 held-out, batches of 5, 2 rounds ------------------------


@dataclass
class Inputs:
    pool: Path
    labeled_pool: Path
    heldout: Path
    gold: Path
    answers_csv: Path


@pytest.fixture(scope="module")
def inputs(bbc_slice, tmp_path_factory) -> Inputs:
    folder = tmp_path_factory.mktemp("crash-inputs")
    pool = [r for i, r in enumerate(read_jsonl(bbc_slice["pool"])) if i % 48 < 12]
    heldout = [r for i, r in enumerate(read_jsonl(bbc_slice["heldout"])) if i % 20 < 4]
    gold = {r["id"]: r["label"] for r in read_jsonl(bbc_slice["gold"])}

    def dump(name: str, rows: list[dict]) -> Path:
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return folder / name

    labeled = [r | {"label": gold[r["id"]]} if i % 6 == 0 else r for i, r in enumerate(pool)]
    answers = folder / "answers.csv"
    with answers.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label"])
        writer.writerows([r["id"], gold[r["id"]]] for r in pool)
    return Inputs(
        pool=dump("pool.jsonl", pool),
        labeled_pool=dump("labeled_pool.jsonl", labeled),
        heldout=dump("heldout.jsonl", heldout),
        gold=dump("gold.jsonl", [{"id": r["id"], "label": gold[r["id"]]} for r in pool]),
        answers_csv=answers,
    )


def answers(inputs: Inputs, encoder: Path, pool: Path | None = None) -> InterviewInput:
    return InterviewInput(
        run=RUN,
        pool=str(pool or inputs.pool),
        heldout=str(inputs.heldout),
        task_type="categorical",
        labels=BBC_LABELS,
        batch_size=5,
        max_rounds=2,
        encoder=str(encoder),
    )


Step = Callable[[ToolContext, Inputs, Path], Any]
STEPS: dict[str, Step] = {
    "init": lambda ctx, i, enc: interview_spec(answers(i, enc, i.labeled_pool), ctx),
    "seed_set": lambda ctx, i, enc: seed_set(SeedInput(run=RUN, strategy="typical"), ctx),
    "simulate_annotator": lambda ctx, i, enc: simulate_annotator(
        SimulateAnnotatorInput(run=RUN, gold=str(i.gold), participants=2, include_heldout=3), ctx
    ),
    "import_labels": lambda ctx, i, enc: import_labels(ImportInput(run=RUN, file=str(i.answers_csv)), ctx),
    "train_glmm": lambda ctx, i, enc: train_glmm(TrainInput(run=RUN), ctx),
    "score_pool": lambda ctx, i, enc: score_pool(ScoreInput(run=RUN), ctx),
    "check_convergence": lambda ctx, i, enc: check_convergence(CheckConvergenceInput(run=RUN, bootstrap=20), ctx),
    "select_batch": lambda ctx, i, enc: select_batch(SelectInput(run=RUN), ctx),
    "write_report": lambda ctx, i, enc: write_report(ReportInput(run=RUN), ctx),
    "simulate": lambda ctx, i, enc: simulate(SimulateInput(run=RUN, gold=str(i.gold), rounds=2), ctx),
}
LOOP = ["seed_set", "simulate_annotator", "train_glmm", "score_pool", "check_convergence", "select_batch"]


@pytest.fixture(scope="module")
def states(inputs, tiny_encoder, tmp_path_factory) -> dict[str, Path]:
    """Run roots as they stand before each step of a round (the tiny encoder keeps embedding quick)."""
    folder = tmp_path_factory.mktemp("crash-states")
    ctx = ToolContext(root=RunRoot(folder / "work"), inputs_anywhere=True)
    saved = {"init": folder / "init"}
    saved["init"].mkdir()
    interview_spec(answers(inputs, tiny_encoder), ctx)
    run = ctx.root.run(RUN)
    spec = run.spec()
    alike = spec.selection.model_copy(update={"near_duplicate_threshold": 1.0})  # random weights: texts look alike
    run.write_spec(spec.model_copy(update={"selection": alike}), "crash test: a random-weight encoder")
    for step in [*LOOP, "write_report"]:
        saved[step] = folder / step
        shutil.copytree(ctx.root.path, saved[step])
        if step in LOOP:
            STEPS[step](ctx, inputs, tiny_encoder)
    saved["import_labels"] = saved["simulate_annotator"]
    saved["simulate"] = saved["seed_set"]
    return saved


# -- what must hold after a kill and the next command --------------------------------------------


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if any(m in p.name for m in LEFTOVER_MARKS))


def check_invariants(root: Path) -> None:
    """The review's invariants, read from the files alone."""
    run = root / RUN
    lines = [line for line in (run / "labels.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]
    assert len({e["event_id"] for e in events}) == len(events), "a label event is doubled"
    external = [(e["destination"], e["external_id"]) for e in events if e.get("external_id")]
    assert len(set(external)) == len(external), "an answer is recorded twice"
    by_round: dict[int, list[str]] = {}
    for line, event in zip(lines, events, strict=True):
        by_round.setdefault(event["round"], []).append(line)
    for path in run.glob("annotation_round_[0-9][0-9].jsonl"):
        round_ = int(path.stem[-2:])
        assert path.read_text(encoding="utf-8").splitlines() == by_round.pop(round_), f"{path.name} out of step"
    assert not by_round, f"rounds {sorted(by_round)} have labels but no annotation file"
    for path in run.glob("selection_round_[0-9][0-9].jsonl"):
        rows = read_jsonl(path)
        assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1)), f"{path.name} is not whole"
        assert len({r["item_id"] for r in rows}) == len(rows)
    with (run / "results.tsv").open(encoding="utf-8", newline="") as handle:
        results = list(csv.DictReader(handle, delimiter="\t"))
    rounds = [int(r["round"]) for r in results]
    assert len(set(rounds)) == len(rounds), "a results round is doubled"
    for round_ in model_rounds(RunRoot(root).run(RUN)):
        card = json.loads((run / "models" / f"round_{round_:02d}" / "card.json").read_text())
        assert any(int(r["round"]) == round_ and r["model_version"] == card["model_version"] for r in results), (
            f"round {round_} has a model but no results row"
        )
    with (run / ".lock").open("a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a lock stayed held
        assert lock.tell() == 0, "the lock still names a holder"
    assert leftovers(root) == []


def state_of(root: Path) -> dict[str, Any]:
    """What the run holds, minus what differs between any two runs (event ids, times)."""
    run = RunRoot(root).run(RUN)
    keep = ("item_id", "label", "source", "annotator", "round", "destination", "external_id")
    return {
        "labels": Counter(tuple(str(getattr(e, k)) for k in keep) for e in run.labels()),
        "selections": {r: [row.item_id for row in run.selection(r)] for r in run.selection_rounds()},
        "results": [(r.round, r.model_version, r.strategy, r.n_batch, r.stop_decision) for r in run.results()],
        "predictions": {r: ModelDir(run, r).predictions().model_version for r in model_rounds(run, "predictions")},
        "report": run.report_path.is_file(),
        "spec_version": run.spec().spec_version,
    }


def kill_points(step: str, states: dict[str, Path], inputs: Inputs, encoder: Path, kill_at, tmp_path: Path) -> int:
    """How many fsyncs and renames the step makes, uninterrupted; its end state is the reference."""
    root = tmp_path / "reference"
    shutil.copytree(states[step], root)
    killer = kill_at(0)
    STEPS[step](ToolContext(root=RunRoot(root), inputs_anywhere=True), inputs, encoder)
    return killer.calls


def killed_and_resumed(step: str, k: int, states, inputs, encoder, kill_at, tmp_path: Path) -> Path:
    """Kill the step at its k-th write point, then open the run (killing that repair once too) and rerun it."""
    root = tmp_path / f"{step}-{k}"
    shutil.copytree(states[step], root)
    ctx = ToolContext(root=RunRoot(root), inputs_anywhere=True)
    killer = kill_at(k)
    with pytest.raises(Killed):
        STEPS[step](ctx, inputs, encoder)
    assert killer.calls == k
    if ctx.root.exists(RUN):
        kill_at(1)
        with contextlib.suppress(Killed):  # a kill during the repair itself: the next open repairs again
            status(StatusInput(run=RUN), ctx)
        kill_at(0)
        status(StatusInput(run=RUN), ctx)
    kill_at(0)
    STEPS[step](ctx, inputs, encoder)
    return root


EVERY_POINT = ["init", *LOOP, "import_labels", "write_report"]


@pytest.mark.parametrize("step", EVERY_POINT)
def test_a_kill_at_any_write_of_a_step_is_repaired_by_the_next_command(
    step, states, inputs, tiny_encoder, kill_at, tmp_path
):
    points = kill_points(step, states, inputs, tiny_encoder, kill_at, tmp_path)
    reference = tmp_path / "reference"
    check_invariants(reference)
    expected = state_of(reference)
    assert points >= 3

    for k in range(1, points + 1):
        root = killed_and_resumed(step, k, states, inputs, tiny_encoder, kill_at, tmp_path)
        check_invariants(root)
        assert state_of(root) == expected, f"{step} killed at write point {k} of {points}"


def test_simulate_resumes_a_loop_killed_anywhere(states, inputs, tiny_encoder, kill_at, tmp_path):
    """The whole loop, killed at points spread over its writes, then simply run again: it ends where it would have."""
    points = kill_points("simulate", states, inputs, tiny_encoder, kill_at, tmp_path)
    expected = state_of(tmp_path / "reference")
    assert len(expected["results"]) == 2

    for k in sorted({1, points // 3, 2 * points // 3, points}):
        root = killed_and_resumed("simulate", k, states, inputs, tiny_encoder, kill_at, tmp_path)
        check_invariants(root)
        assert state_of(root) == expected, f"simulate killed at write point {k} of {points}"


# -- what an older alloop's kills left behind, repaired when the run is next opened --------------


@pytest.fixture
def crashed(states, tmp_path) -> tuple[ToolContext, Path]:
    """A copy of the run after round 1's selection, to damage as a kill of an older alloop did."""
    shutil.copytree(states["write_report"], tmp_path / "root")
    return ToolContext(root=RunRoot(tmp_path / "root"), inputs_anywhere=True), tmp_path / "root" / RUN


def test_an_annotation_file_short_of_labels_jsonl_is_rebuilt(crashed):
    """Review F2: killed between labels.jsonl and annotation_round_XX.jsonl, the round file stayed short."""
    ctx, run = crashed
    round_file = run / "annotation_round_00.jsonl"
    lines = round_file.read_text(encoding="utf-8").splitlines(keepends=True)
    round_file.write_text("".join(lines[:-3]), encoding="utf-8")

    status(StatusInput(run=RUN), ctx)

    assert round_file.read_text(encoding="utf-8").splitlines(keepends=True) == lines
    assert "annotation_round files of rounds [0] rebuilt from labels.jsonl" in (run / "notes.md").read_text()


def test_a_model_without_its_results_row_gets_it_back_before_status_answers(crashed):
    """Review F3: killed between card.json and results.tsv, then `status`: round 1 was lost for good."""
    ctx, run = crashed
    header, _row = (run / "results.tsv").read_text(encoding="utf-8").splitlines()
    (run / "results.tsv").write_text(header + "\n", encoding="utf-8")
    card = json.loads((run / "models" / "round_01" / "card.json").read_text())

    out = status(StatusInput(run=RUN), ctx)

    restored = RunRoot(run.parent).run(RUN).results()
    assert [(r.round, r.model_version, r.n_labeled) for r in restored] == [(1, card["model_version"], 5)]
    assert restored[0].gold_macro_f1 == pytest.approx(card["gold"]["gold_macro_f1"], abs=1e-6)
    assert out.last_result is not None and out.last_result["round"] == 1


def test_a_torn_last_label_line_is_set_aside_with_a_note(crashed):
    """Review F5: a kill mid-append left half a line, and every command failed until a person edited the file."""
    ctx, run = crashed
    before = (run / "labels.jsonl").read_bytes()
    with (run / "labels.jsonl").open("ab") as handle:
        handle.write(b'{"event_id": "cut-off-by-a-ki')

    out = status(StatusInput(run=RUN), ctx)

    assert (run / "labels.jsonl").read_bytes() == before
    (aside,) = run.glob("labels.jsonl.torn-*")
    assert aside.read_bytes() == b'{"event_id": "cut-off-by-a-ki'
    assert f"set aside in {aside.name}" in (run / "notes.md").read_text()
    assert sum(out.labels_by_source.values()) == before.count(b"\n")


def test_temp_and_staging_files_of_a_dead_writer_are_removed(crashed, tmp_path):
    """Review: 63 of 189 kills left temp files or staging folders that nothing ever cleaned."""
    ctx, run = crashed
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    (run / f".results.tsv.{dead}-0123abcd.tmp").write_text("half")
    (run / "models" / "round_01" / f".card.json.{dead}-89abcdef.tmp").write_text("{")
    (run / "models" / ".round_02_encoder.x1y2z3").mkdir()
    (ctx.root.path / f".other.creating-{dead}-0123abcd").mkdir()
    live = run / f".report.md.{os.getpid()}-0123abcd.tmp"  # a writer of this process still at work
    live.write_text("busy")

    status(StatusInput(run=RUN), ctx)
    ctx.root.remove_stale_staging()

    assert leftovers(ctx.root.path) == [str(live.relative_to(ctx.root.path))]


def test_the_loser_of_two_creates_of_one_name_gets_a_clear_error(tmp_path, monkeypatch):
    """Review: 6 of 20 concurrent `init`s of one name raised `OSError: Directory not empty`."""
    root = RunRoot(tmp_path / "runs")
    spec = TaskSpec(run="race", task_type="binary", labels=["no", "yes"])
    pool = ItemTable.from_rows([{"id": "a", "text": "x"}, {"id": "b", "text": "y"}])
    publish = RunRoot._publish

    def the_other_call_wins(self: RunRoot, staging: Path, path: Path) -> None:
        monkeypatch.setattr(RunRoot, "_publish", publish)
        self.create(spec, pool, None)  # a second init of the name publishes first
        publish(self, staging, path)

    monkeypatch.setattr(RunRoot, "_publish", the_other_call_wins)

    with pytest.raises(InputError, match="'race' was created by another call while this one prepared it"):
        root.create(spec, pool, None)

    assert root.names() == ["race"] and leftovers(root.path) == []


def test_a_kill_halfway_through_an_append_is_undone_whole(states, inputs, tiny_encoder, monkeypatch, tmp_path):
    """Review F5: 1 of 200 kills tore import-labels' one large append; the journal truncates it back."""
    reference = tmp_path / "reference"
    shutil.copytree(states["import_labels"], reference)
    STEPS["import_labels"](ToolContext(root=RunRoot(reference), inputs_anywhere=True), inputs, tiny_encoder)
    shutil.copytree(states["import_labels"], tmp_path / "torn")
    ctx = ToolContext(root=RunRoot(tmp_path / "torn"), inputs_anywhere=True)
    write_all = files._write_all

    def half_then_killed(fd: int, data: bytes) -> None:
        write_all(fd, data[: len(data) // 2])
        raise Killed("killed in the middle of a write")

    monkeypatch.setattr(files, "_write_all", half_then_killed)
    with pytest.raises(Killed):
        STEPS["import_labels"](ctx, inputs, tiny_encoder)
    monkeypatch.setattr(files, "_write_all", write_all)
    assert not (tmp_path / "torn" / RUN / "labels.jsonl").read_bytes().endswith(b"\n")  # torn, as a kill leaves it

    status(StatusInput(run=RUN), ctx)
    STEPS["import_labels"](ctx, inputs, tiny_encoder)

    check_invariants(tmp_path / "torn")
    assert state_of(tmp_path / "torn") == state_of(reference)
    notes = (tmp_path / "torn" / RUN / "notes.md").read_text()
    assert "undid the writes of the interrupted import_labels call" in notes
