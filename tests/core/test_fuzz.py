"""Hostile input files and arguments: a clear AlloopError or success, never a traceback, never a partial write.

The reliability review (2026-11, §3) fed 1,137 malformed inputs to alloop and got 124 tracebacks
from 6 causes: invalid UTF-8, lone surrogates, 5,000-digit integers, deep nesting, CSV fields over
128 KiB and a gaussian GLMM with a constant response (plus a categorical GLMM that ran for
minutes). Each of those is an explicit example below; hypothesis adds mutated and random files
around them, for every file reader (pool and held-out JSONL, gold, labels import as JSONL and CSV,
JATOS result data, spec.json) and every tool's input model. After an error the run's files must
be exactly as they were.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alloop.tools.base import ToolContext
from alloop.tools.errors import AlloopError, InputError
from alloop.tools.glmm.api import fit_csv
from alloop.tools.import_labels import SPEC as import_labels_tool
from alloop.tools.import_labels import ImportInput, import_labels
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.jspsych.results import parse_result_data
from alloop.tools.registry import TOOLS
from alloop.tools.run.items import ItemTable
from alloop.tools.run.rundir import RunRoot
from alloop.tools.run.schema import SelectionRow, TaskSpec
from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
from alloop.tools.status import StatusInput, status

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
LABELS = ["no", "yes"]

# -- the review's six traceback causes, as bytes ------------------------------------------------
INVALID_UTF8 = b'{"id": "p1", "text": "caf\xe9"}\n'
LONE_SURROGATE = b'{"id": "p1", "text": "\\ud800"}\n'
HUGE_INT = b'{"id": 1' + b"0" * 5000 + b', "text": "x"}\n'
DEEP = b'{"id": "p1", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
LONG_CSV_FIELD = b"id,label\np1," + b"y" * (130 * 1024) + b"\n"
NUL_CSV = b"id,label\np1,y\x00es\n"
SPACED_IDS = b'{"id": "p1", "text": "a"}\n{"id": " p1", "text": "b"}\n'
CAUSES = [INVALID_UTF8, LONE_SURROGATE, HUGE_INT, DEEP, SPACED_IDS]

# -- strategies ----------------------------------------------------------------------------------
ODD_TEXT = st.sampled_from(
    ["", " ", "p1", " p1", "p1 ", "\x00", "\ud800", "\u202e", "\ufeff", "\u200b", "yes", "no", "x" * 70_000, "😀"]
)
TEXT = st.one_of(st.text(max_size=20), ODD_TEXT)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8
)
ROW = st.fixed_dictionaries(
    {"id": st.one_of(st.sampled_from(["p0", "p1", "p2", "h0"]), SCALARS)},
    optional={"text": SCALARS, "label": st.one_of(st.sampled_from(LABELS), SCALARS), "annotator": SCALARS},
).map(lambda row: row | {"extra": None} if len(row) > 3 else row)


def jsonl(rows: list[Any]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8", "surrogatepass")


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "label", "annotator"])
    writer.writerows([r.get("id"), r.get("label"), r.get("annotator")] for r in rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


@st.composite
def mutated(draw: st.DrawFn, encode: Callable[[list[Any]], bytes]) -> bytes:
    """A file of plausible rows, then maybe cut, flipped or spliced with one of the review's causes."""
    data = encode(draw(st.lists(ROW, max_size=6)))
    how = draw(st.sampled_from(["keep", "truncate", "flip", "splice", "random"]))
    if how == "truncate" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    elif how == "splice":
        data += draw(st.sampled_from([*CAUSES, b"\r\n", b"\xef\xbb\xbf", b"NaN\n", b"[1, 2]\n", b'{"id": ']))
    elif how == "random":
        data = draw(st.binary(max_size=200))
    return data


def unexpected(call: Callable[[], Any]) -> BaseException | None:
    """Run it: None if it succeeded or failed with an AlloopError; else the exception (a traceback)."""
    try:
        call()
    except AlloopError:
        return None
    except Exception as exc:
        return exc
    return None


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a run but its lock (whose holder line is cleared on release)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


# -- a small run the fuzzed files are fed to ------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A binary run of three pool items and one held-out item, its seed batch selected."""
    root = RunRoot(tmp_path_factory.mktemp("fuzz") / "runs")
    pool = ItemTable.from_rows([{"id": f"p{i}", "text": f"item {i}"} for i in range(3)])
    heldout = ItemTable.from_rows([{"id": "h0", "text": "held", "label": "yes"}])
    run = root.create(TaskSpec(run="f", task_type="binary", labels=LABELS), pool, heldout)
    run.write_selection(
        0, [SelectionRow(round=0, rank=i + 1, item_id=f"p{i}", strategy="seed:random", reason="r") for i in range(3)]
    )
    return root.path


@pytest.fixture
def fresh(template) -> Iterator[Callable[[], tuple[ToolContext, Path]]]:
    """A fresh copy of the template root per hypothesis example: (context, folder for input files)."""
    made: list[str] = []

    def copy() -> tuple[ToolContext, Path]:
        folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
        made.append(str(folder))
        shutil.copytree(template, folder / "runs")
        return ToolContext(root=RunRoot(folder / "runs"), inputs_anywhere=True), folder

    yield copy
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


def fed_to_the_run(fresh, data: bytes, name: str, call: Callable[[ToolContext, str], Any]) -> None:
    """Write the input file, call the tool; a traceback or a change after an error fails the test."""
    ctx, folder = fresh()
    path = folder / name
    path.write_bytes(data)
    run = ctx.root.path / "f"
    before = snapshot(run)
    try:
        call(ctx, str(path))
    except AlloopError:
        assert snapshot(run) == before, "an error left a partial write"
        return
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- file readers ----------------------------------------------------------------------------------


@given(data=mutated(jsonl))
@example(data=INVALID_UTF8)
@example(data=LONE_SURROGATE)
@example(data=HUGE_INT)
@example(data=DEEP)
@example(data=SPACED_IDS)
@FUZZ
def test_pool_and_heldout_files_give_a_clear_error_or_a_run(data, tmp_path_factory):
    folder = Path(tempfile.mkdtemp(prefix="fuzz-pool-"))
    try:
        good = folder / "good.jsonl"
        good.write_bytes(jsonl([{"id": "h9", "text": "held", "label": "yes"}]))
        bad = folder / "bad.jsonl"
        bad.write_bytes(data)
        for pool, heldout in ((bad, good), (folder / "pool.jsonl", bad)):
            if pool != bad:
                pool.write_bytes(jsonl([{"id": "q1", "text": "one"}, {"id": "q2", "text": "two"}]))
            root = RunRoot(folder / f"runs-{pool.name}")
            args = InterviewInput(
                run="r",
                pool=str(pool),
                heldout=str(heldout),
                task_type="binary",
                labels=LABELS,
                labeled_state="partial",
            )
            failure = unexpected(lambda: interview_spec(args, ToolContext(root=root, inputs_anywhere=True)))  # noqa: B023
            assert failure is None, repr(failure)
            assert (
                root.exists("r")
                or not root.path.exists()
                or not [p for p in root.path.iterdir() if p.name != ".drafts"]
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_ids_differing_only_by_spaces_are_one_id_and_refused_twice(tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_bytes(SPACED_IDS)
    args = InterviewInput(run="r", pool=str(pool), heldout="none", task_type="binary", labels=LABELS)

    with pytest.raises(InputError, match=r"pool.jsonl:2: duplicate ids: .*' p1'.* both 'p1' once surrounding spaces"):
        interview_spec(args, ToolContext(root=RunRoot(tmp_path / "runs"), inputs_anywhere=True))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (INVALID_UTF8, r"bad.jsonl:1: not valid UTF-8 \(byte 0xe9 at column 26\)"),
        (LONE_SURROGATE, r"bad.jsonl:1: a text holds a lone surrogate"),
        (HUGE_INT, r"bad.jsonl:1: a number with too many digits"),
        (DEEP, r"bad.jsonl:1: JSON nested too deeply"),
    ],
)
def test_each_traceback_cause_of_the_review_is_a_clear_error_naming_file_and_line(data, message, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(data)
    args = InterviewInput(run="r", pool=str(bad), heldout="none", task_type="binary", labels=LABELS)

    with pytest.raises(InputError, match=message):
        interview_spec(args, ToolContext(root=RunRoot(tmp_path / "runs"), inputs_anywhere=True))


@given(data=mutated(jsonl))
@example(data=INVALID_UTF8)
@example(data=LONE_SURROGATE)
@example(data=DEEP)
@FUZZ
def test_gold_files_give_a_clear_error_or_answers(data, fresh):
    fed_to_the_run(
        fresh, data, "gold.jsonl", lambda ctx, path: simulate_annotator(SimulateAnnotatorInput(run="f", gold=path), ctx)
    )


@given(data=mutated(jsonl))
@example(data=HUGE_INT)
@example(data=b'{"id": "p1", "label": "yes", "annotator": "\\udfff"}\n')
@FUZZ
def test_label_files_in_jsonl_give_a_clear_error_or_labels(data, fresh):
    fed_to_the_run(fresh, data, "labels.jsonl", lambda ctx, path: import_labels(ImportInput(run="f", file=path), ctx))


@given(data=mutated(csv_bytes))
@example(data=LONG_CSV_FIELD)
@example(data=NUL_CSV)
@example(data=b"id,label,label\np1,yes,no\n")
@example(data=b"id,answer\np1,yes\n")
@FUZZ
def test_label_files_in_csv_give_a_clear_error_or_labels(data, fresh):
    fed_to_the_run(fresh, data, "labels.csv", lambda ctx, path: import_labels(ImportInput(run="f", file=path), ctx))


def test_a_round_out_of_range_writes_no_label(fresh):
    """Review: `import-labels --round 100` printed an error after it had appended the labels."""
    ctx, folder = fresh()
    (folder / "a.csv").write_text("id,label\np1,yes\n")
    before = snapshot(ctx.root.path / "f")

    with pytest.raises(InputError, match="round"):
        import_labels_tool.call({"run": "f", "file": str(folder / "a.csv"), "round": 100}, ctx)

    assert snapshot(ctx.root.path / "f") == before


def test_an_import_row_for_a_spaced_id_lands_on_that_id(fresh):
    ctx, folder = fresh()
    (folder / "a.csv").write_text("id,label\n p1 ,yes\n")

    import_labels(ImportInput(run="f", file=str(folder / "a.csv")), ctx)

    assert [e.item_id for e in ctx.root.run("f").labels()] == ["p1"]


@given(text=st.one_of(st.text(max_size=200), mutated(jsonl).map(lambda b: b.decode("utf-8", "replace"))))
@example(text=DEEP.decode())
@example(text=HUGE_INT.decode())
@example(text='[{"alloop_role": "item", "response": "\\ud800"}]')
@FUZZ
def test_jatos_result_data_gives_a_clear_error_or_trials(text):
    failure = unexpected(lambda: parse_result_data(text, "result 1"))
    assert failure is None, repr(failure)


@given(data=st.one_of(mutated(lambda rows: json.dumps(rows[0] if rows else {}).encode()), st.binary(max_size=100)))
@example(data=INVALID_UTF8)
@example(data=DEEP)
@example(data=b'{"run": "f", "task_type": "binary", "labels": ["no", "yes"], "spec_version": 1' + b"0" * 5000 + b"}")
@FUZZ
def test_a_damaged_spec_gives_a_clear_error(data, fresh):
    ctx, folder = fresh()
    try:
        (ctx.root.path / "f" / "spec.json").write_bytes(data)
        failure = unexpected(lambda: status(StatusInput(run="f"), ctx))
        assert failure is None, repr(failure)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- tool input models -----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", TOOLS, ids=lambda s: s.name)
@given(data=st.data())
@FUZZ
def test_every_tool_input_model_refuses_bad_arguments_clearly(spec, data):
    fields = list(spec.input_model.model_fields)
    keys = st.one_of(st.sampled_from(fields), TEXT)
    arguments = data.draw(st.dictionaries(keys, JSON, max_size=6) | st.fixed_dictionaries({"run": JSON}))
    failure = unexpected(lambda: spec.parse(arguments))
    assert failure is None, repr(failure)


@given(
    annotator=TEXT,
    round_=st.one_of(st.none(), st.integers(-5, 200)),
    participants=st.integers(-1, 120),
    noise=st.one_of(st.floats(), st.integers(-10, 1000)),
)
@example(annotator="\ud800", round_=None, participants=1, noise=0)
@FUZZ
def test_hostile_arguments_to_writing_tools_give_a_clear_error_and_no_partial_write(
    annotator, round_, participants, noise, fresh
):
    ctx, folder = fresh()
    try:
        (folder / "a.csv").write_text("id,label\np1,yes\np2,no\n")
        (folder / "gold.jsonl").write_text('{"id": "p0", "label": "no"}\n{"id": "p1", "label": "yes"}\n')
        run = ctx.root.path / "f"
        calls = [
            ("import_labels", {"run": "f", "file": str(folder / "a.csv"), "annotator": annotator, "round": round_}),
            (
                "simulate_annotator",
                {
                    "run": "f",
                    "gold": str(folder / "gold.jsonl"),
                    "round": round_,
                    "participants": participants,
                    "noise": noise,
                },
            ),
        ]
        for name, arguments in calls:
            spec = next(s for s in TOOLS if s.name == name)
            before = snapshot(run)
            try:
                spec.call(arguments, ctx)
            except AlloopError:
                assert snapshot(run) == before, f"{name}: an error left a partial write"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- GLMM designs the review found -----------------------------------------------------------------


def test_a_gaussian_glmm_of_a_constant_response_is_a_clear_error(tmp_path):
    data = tmp_path / "constant.csv"
    data.write_text("y,x,participant\n" + "".join(f"3,{i % 5},s{i % 4}\n" for i in range(40)))

    with pytest.raises(InputError, match="'y' takes one value only"):
        fit_csv(data, response="y", family="gaussian", predictors=("x",), participant="participant", item=None)


def test_a_categorical_glmm_with_a_level_per_row_is_refused_at_once(tmp_path):
    """Review: 48 rows of 48 response levels ran for minutes."""
    data = tmp_path / "levels.csv"
    data.write_text("y,x,participant\n" + "".join(f"level{i},{i % 5},s{i % 4}\n" for i in range(48)))
    started = time.perf_counter()

    with pytest.raises(InputError, match="48 levels in 48 rows"):
        fit_csv(data, response="y", family="categorical", predictors=("x",), participant="participant", item=None)

    assert time.perf_counter() - started < 5
