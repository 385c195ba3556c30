"""Bad answers for the task types beyond classes: each is refused where it enters, naming the file
and line, and nothing is written.

The items are real BBC titles; the runs are made by the interview as a person would make them. The
paths labels enter by: import_labels (JSONL and CSV), simulate_annotator's gold file, the
interview's held-out gold, and JATOS results (whose bad answers are listed and left out, one
participant never blocking the rest).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.errors import InputError
from alloop.tools.import_labels import ImportInput, import_labels
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.jspsych.results import trials_to_events
from alloop.tools.run.labels import check_label
from alloop.tools.run.rundir import read_jsonl
from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_run(ctx: ToolContext, bbc_slice: dict[str, Path], tmp: Path, name: str, label, text=None, **answers) -> list:
    """A run over 30 BBC titles (`text(title)` as each item's text) whose held-out gold is `label(row)`."""
    text = text or (lambda title: title)
    pool = [r | {"text": text(r["text"])} for r in read_jsonl(bbc_slice["pool"])[:30]]
    heldout = [r | {"text": text(r["text"]), "label": label(r)} for r in read_jsonl(bbc_slice["heldout"])[:10]]
    interview_spec(
        InterviewInput(
            run=name,
            pool=str(write(tmp / f"{name}-pool.jsonl", pool)),
            heldout=str(write(tmp / f"{name}-heldout.jsonl", heldout)),
            **answers,
        ),
        ctx,
    )
    return pool


def refused_and_nothing_written(ctx: ToolContext, name: str, call, match: str) -> None:
    labels = ctx.root.run(name).labels_path
    before = labels.read_bytes() if labels.exists() else b""
    with pytest.raises(InputError, match=match):
        call()
    assert (labels.read_bytes() if labels.exists() else b"") == before


def blank_first_word(title: str) -> str:
    return " ".join(["___", *title.split()[1:]])


def test_a_magnitude_that_is_not_a_number_names_the_csv_line(ctx, bbc_slice, tmp_path):
    pool = make_run(ctx, bbc_slice, tmp_path, "rt", lambda r: 300.0, task_type="magnitude", metric="rmse")
    csv = tmp_path / "answers.csv"
    csv.write_text(f"id,label\n{pool[0]['id']},412.5\n{pool[1]['id']},380 ms\n", encoding="utf-8")
    call = lambda: import_labels(ImportInput(run="rt", file=str(csv), round=0), ctx)  # noqa: E731
    refused_and_nothing_written(ctx, "rt", call, r"answers\.csv:3: magnitude '380 ms' is not a number")


def test_a_magnitude_that_is_not_positive_on_a_log_scale_names_the_gold_line(ctx, bbc_slice, tmp_path):
    pool = make_run(
        ctx, bbc_slice, tmp_path, "rt", lambda r: 300.0, task_type="magnitude", metric="rmse", head="lognormal"
    )
    gold = write(
        tmp_path / "gold.jsonl", [{"id": r["id"], "label": 0 if i == 4 else 250.0} for i, r in enumerate(pool)]
    )
    call = lambda: simulate_annotator(SimulateAnnotatorInput(run="rt", gold=str(gold), round=0), ctx)  # noqa: E731
    refused_and_nothing_written(ctx, "rt", call, r"gold\.jsonl:5: magnitude 0 is not positive.*log scale")
    with pytest.raises(InputError, match=r"heldout\.jsonl:1: magnitude -3 is not positive"):
        make_run(ctx, bbc_slice, tmp_path, "rt2", lambda r: -3, task_type="magnitude", head="lognormal")
    assert not ctx.root.exists("rt2")  # the interview wrote no run


def test_an_ordinal_value_off_the_scale_names_the_jsonl_line(ctx, bbc_slice, tmp_path):
    pool = make_run(ctx, bbc_slice, tmp_path, "hard", lambda r: "2", task_type="ordinal_scale", labels=["1", "2", "3"])
    answers = write(
        tmp_path / "answers.jsonl", [{"id": pool[0]["id"], "label": "3"}, {"id": pool[1]["id"], "label": 4}]
    )
    call = lambda: import_labels(ImportInput(run="hard", file=str(answers), round=0), ctx)  # noqa: E731
    refused_and_nothing_written(ctx, "hard", call, r"answers\.jsonl:2: ordinal value 4 is off the scale 1\.\.3")


def test_a_multi_select_answer_naming_an_unknown_option_names_the_line(ctx, bbc_slice, tmp_path):
    options = ["business", "politics", "numbers"]
    pool = make_run(ctx, bbc_slice, tmp_path, "tags", lambda r: ["numbers"], task_type="multi_select", labels=options)
    rows = [{"id": pool[0]["id"], "label": ["business"]}, {"id": pool[1]["id"], "label": ["politics", "weather"]}]
    answers = write(tmp_path / "answers.jsonl", rows)
    call = lambda: import_labels(ImportInput(run="tags", file=str(answers), round=0), ctx)  # noqa: E731
    refused_and_nothing_written(ctx, "tags", call, r"answers\.jsonl:2: option\(s\) \['weather'\] are not among")


def test_an_empty_free_text_answer_names_the_line(ctx, bbc_slice, tmp_path):
    pool = make_run(ctx, bbc_slice, tmp_path, "para", lambda r: "a headline", task_type="free_text")
    rows = [{"id": pool[0]["id"], "label": "Shares rise"}, {"id": pool[1]["id"], "label": "   "}]
    answers = write(tmp_path / "answers.jsonl", rows)
    call = lambda: import_labels(ImportInput(run="para", file=str(answers), round=0), ctx)  # noqa: E731
    refused_and_nothing_written(ctx, "para", call, r"answers\.jsonl:2: the free-text answer is empty")
    gold = write(tmp_path / "gold.jsonl", [{"id": r["id"], "label": ""} for r in pool])
    call = lambda: simulate_annotator(SimulateAnnotatorInput(run="para", gold=str(gold), round=0), ctx)  # noqa: E731
    refused_and_nothing_written(ctx, "para", call, r"gold\.jsonl:1: the free-text answer is empty")


def test_a_cloze_answer_for_a_blank_that_does_not_exist_names_the_line(ctx, bbc_slice, tmp_path):
    pool = make_run(
        ctx, bbc_slice, tmp_path, "blanks", lambda r: r["text"].split()[0], text=blank_first_word, task_type="cloze"
    )
    rows = [{"id": pool[0]["id"], "label": "Ad"}, {"id": pool[1]["id"], "label": ["Shares", "rise"]}]
    answers = write(tmp_path / "answers.jsonl", rows)
    call = lambda: import_labels(ImportInput(run="blanks", file=str(answers), round=0), ctx)  # noqa: E731
    refused_and_nothing_written(
        ctx, "blanks", call, r"answers\.jsonl:2: the answer fills 2 blank\(s\) but the item has 1 blank.*blank 2 does"
    )
    ok = write(tmp_path / "ok.jsonl", [{"id": pool[0]["id"], "label": "Ad"}])
    assert import_labels(ImportInput(run="blanks", file=str(ok), round=0), ctx).n_added == 1


def test_two_blanks_take_a_list_or_a_bar_separated_text_and_vote_as_one_answer():
    from alloop.tools.run.schema import TaskSpec

    spec = TaskSpec(run="c", task_type="cloze")
    text = "The cat ___ on the ___."
    assert check_label(spec, ["sat", "mat"], "f:1", text) == ["sat", "mat"]
    assert check_label(spec, "sat | mat", "f:1", text) == ["sat", "mat"]
    with pytest.raises(InputError, match="f:1: the answer fills 1 of the item's 2 blanks"):
        check_label(spec, "sat", "f:1", text)
    with pytest.raises(InputError, match="f:1: the answer for blank 2 is empty"):
        check_label(spec, ["sat", " "], "f:1", text)


def test_jatos_answers_that_do_not_fit_are_left_out_with_the_reason(ctx, bbc_slice, tmp_path):
    pool = make_run(
        ctx, bbc_slice, tmp_path, "rt", lambda r: 300.0, task_type="magnitude", metric="rmse", head="lognormal"
    )
    spec = ctx.root.run("rt").spec()
    trials = [
        {"alloop_role": "item", "item_id": pool[0]["id"], "label": 412.0, "trial_index": 3},
        {"alloop_role": "item", "item_id": pool[1]["id"], "label": -20.0, "trial_index": 4},
    ]
    converted = trials_to_events(trials, spec, round_=0, annotator="jatos:7", external_prefix="9:1")
    assert [e.label for e in converted.events] == [412.0]
    assert len(converted.skipped) == 1 and converted.skipped[0].startswith("9:1:4 item")
    assert "magnitude -20.0 is not positive" in converted.skipped[0]


def test_cloze_gold_for_one_blank_and_for_two_is_kept_in_one_form(ctx, bbc_slice, tmp_path):
    """A held-out set whose items have one or two blanks: each gold answer is kept as "a | b" text."""

    def blanks(title: str) -> str:
        words = title.split()
        return " ".join(["___", *words[1:-1], "___"]) if len(title) % 2 else " ".join(["___", *words[1:]])

    def gold(row: dict) -> object:
        words = row["text"].split()
        return [words[0], words[-1]] if len(row["text"]) % 2 else words[0]

    make_run(ctx, bbc_slice, tmp_path, "gaps", gold, blanks, task_type="cloze")
    kept = ctx.root.run("gaps").heldout_gold()
    assert all(isinstance(v, str) for v in kept.values())
    assert any(" | " in v for v in kept.values()) and any(" | " not in v for v in kept.values())
