"""interview_spec: open questions, a validated versioned spec, and bad input that writes nothing."""

from __future__ import annotations

import json

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.errors import InputError, PathEscapeError
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.report.datasets import BBC_LABELS


def test_a_bare_call_returns_every_question_and_writes_nothing(ctx):
    out = interview_spec(InterviewInput(run="new"), ctx)
    assert not out.created and not out.complete
    keys = [q.key for q in out.open_questions]
    assert keys == [
        "data_source",
        "labeled_state",
        "task_type",
        "prediction_unit",
        "labels",
        "metric",
        "heldout",
        "budget",
        "stopping",
        "destination",
        "judge",
    ]
    assert not ctx.root.path.exists() or not any(ctx.root.path.iterdir())


def test_answers_create_the_run_and_later_answers_bump_the_version(bbc_run, ctx):
    run = ctx.root.run(bbc_run)
    spec = run.spec()
    assert spec.spec_version == 1 and spec.labels[0] == "business"
    out = interview_spec(InterviewInput(run=bbc_run, judge_uses=["evaluation"], max_rounds=5), ctx)
    assert out.written and out.spec_version == 2
    assert run.spec().judge.allowed and run.spec().budget.max_rounds == 5
    assert "judge" not in [q.key for q in out.open_questions]
    same = interview_spec(InterviewInput(run=bbc_run, max_rounds=5), ctx)
    assert not same.written and same.spec_version == 2


def test_spec_rejects_inconsistent_answers_with_the_field(bbc_run, ctx):
    with pytest.raises(InputError, match="binary' needs exactly two labels"):
        interview_spec(InterviewInput(run=bbc_run, task_type="binary"), ctx)
    assert ctx.root.run(bbc_run).spec().spec_version == 1


@pytest.mark.parametrize(
    ("pool_rows", "message"),
    [
        ([], "has no rows"),
        ([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], "duplicate ids"),
        ([{"id": "a", "text": "x", "label": "weather"}], "label .weather. is not in the label schema"),
        ([{"id": "a", "body": "x"}], "text field"),
        ([{"text": "no id"}], "missing 'id'"),
    ],
)
def test_bad_pools_are_refused_and_nothing_is_written(ctx, tmp_path, bbc_slice, pool_rows, message):
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in pool_rows))
    with pytest.raises(InputError, match=message):
        interview_spec(
            InterviewInput(
                run="bad", pool=str(pool), heldout=str(bbc_slice["heldout"]), task_type="categorical", labels=BBC_LABELS
            ),
            ctx,
        )
    assert not (ctx.root.path / "bad").exists()


def test_malformed_line_is_named(ctx, tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": \n')
    with pytest.raises(InputError, match=r"pool.jsonl:2: not valid JSON"):
        interview_spec(InterviewInput(run="bad", pool=str(pool), task_type="binary", labels=["n", "y"]), ctx)


def test_heldout_split_from_labeled_pool_rows(ctx, tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text(
        "".join(json.dumps({"id": str(i), "text": f"t{i}", "label": "yn"[i % 2]}) + "\n" for i in range(40))
    )
    out = interview_spec(
        InterviewInput(run="split", pool=str(pool), heldout="split:0.25", task_type="binary", labels=["y", "n"]), ctx
    )
    assert (out.pool_size, out.heldout_size, out.imported_labels) == (30, 10, 30)


def test_over_mcp_input_files_must_lie_under_the_root(root, bbc_slice):
    agent = ToolContext(root=root)
    with pytest.raises(PathEscapeError, match="outside the run root"):
        interview_spec(
            InterviewInput(run="x", pool=str(bbc_slice["pool"]), task_type="binary", labels=["a", "b"]), agent
        )
    with pytest.raises(PathEscapeError):
        interview_spec(InterviewInput(run="x", pool="../../etc/passwd", task_type="binary", labels=["a", "b"]), agent)


def test_the_interview_sets_how_the_encoder_learns(ctx, new_run):
    name = new_run("lora-run", encoder_training={"kind": "lora", "epochs": 2, "lora_rank": 4})

    training = ctx.root.run(name).spec().model.encoder_training
    assert (training.kind, training.epochs, training.lora_rank, training.lora_alpha) == ("lora", 2, 4, 16)
