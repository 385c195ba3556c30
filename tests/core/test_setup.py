"""A setup that cannot trap: answers wait for the held-out question, a repeated create is a no-op,
a run can be archived and made again, and a second writer waits for the first (with a bound)."""

from __future__ import annotations

import threading
import time

import pytest
from typer.testing import CliRunner

from alloop.tools.archive_run import ArchiveInput, archive_run
from alloop.tools.errors import InputError, LockedError, RunNotFoundError
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.report.datasets import BBC_LABELS
from alloop.tools.run.rundir import RunDir


def ask(ctx, run: str = "bbc", **answers):
    return interview_spec(InterviewInput(run=run, **answers), ctx)


def test_what_the_agent_knows_first_is_kept_until_the_heldout_question_is_answered(ctx, bbc_slice):
    first = ask(ctx, pool=str(bbc_slice["pool"]), task_type="categorical", labels=BBC_LABELS)

    assert not first.created and not ctx.root.exists("bbc")
    assert first.pool_size == 240  # the pool was read and checked, not committed
    assert "heldout" in [q.key for q in first.open_questions] and first.next_step.startswith("answer heldout")
    with pytest.raises(RunNotFoundError, match=r"not created yet.*held-out question"):
        ctx.root.run("bbc")

    second = ask(ctx, batch_size=5)  # any other answer is kept too
    assert not second.created

    done = ask(ctx, heldout=str(bbc_slice["heldout"]))
    assert done.created and (done.pool_size, done.heldout_size) == (240, 100)
    spec = ctx.root.run("bbc").spec()
    assert spec.labels == BBC_LABELS and spec.budget.batch_size == 5 and spec.heldout == str(bbc_slice["heldout"])
    assert ctx.root.draft("bbc") is None


def test_no_heldout_set_is_an_answer_the_agent_gives_explicitly(ctx, bbc_slice):
    out = ask(ctx, pool=str(bbc_slice["pool"]), task_type="categorical", labels=BBC_LABELS, heldout="none")

    assert out.created and out.heldout_size == 0
    assert ctx.root.run("bbc").heldout() is None


def test_kept_answers_can_still_change_and_a_bad_answer_keeps_nothing(ctx, bbc_slice, tmp_path):
    ask(ctx, pool=str(bbc_slice["pool"]), task_type="categorical", labels=BBC_LABELS)
    with pytest.raises(InputError, match="binary' needs exactly two labels"):
        ask(ctx, task_type="binary")
    assert ctx.root.draft("bbc")["task_type"] == "categorical"

    ask(ctx, labels=[*BBC_LABELS, "weather"])  # a changed mind before the run exists is no trap
    out = ask(ctx, heldout="none")
    assert out.created and ctx.root.run("bbc").spec().labels[-1] == "weather"


def test_a_repeated_create_succeeds_and_changes_nothing(ctx, bbc_slice):
    answers = dict(
        pool=str(bbc_slice["pool"]), heldout=str(bbc_slice["heldout"]), task_type="categorical", labels=BBC_LABELS
    )
    assert ask(ctx, **answers).created

    again = ask(ctx, **answers)

    assert not again.created and not again.written and again.spec_version == 1
    with pytest.raises(InputError, match="cannot be replaced: archive it"):
        ask(ctx, **(answers | {"heldout": "none"}))


def test_archiving_moves_the_run_aside_and_frees_its_name(ctx, bbc_slice, bbc_run):
    out = archive_run(ArchiveInput(run=bbc_run), ctx)

    assert out.archived_to.startswith(f".archive/{bbc_run}-")
    moved = RunDir(ctx.root.path / out.archived_to)
    assert moved.spec().run == bbc_run and len(moved.pool()) == 240  # everything kept, nothing deleted
    assert bbc_run not in ctx.root.names()
    remade = ask(ctx, bbc_run, pool=str(bbc_slice["pool"]), task_type="binary", labels=["a", "b"], heldout="none")
    assert remade.created and ctx.root.run(bbc_run).spec().task_type == "binary"
    assert len(ctx.root.archived()) == 1


def test_an_unfinished_interview_can_be_archived_too(ctx, bbc_slice):
    ask(ctx, "draft", pool=str(bbc_slice["pool"]))

    out = archive_run(ArchiveInput(run="draft"), ctx)

    assert out.archived_to.endswith(".draft.json") and ctx.root.draft("draft") is None
    with pytest.raises(RunNotFoundError, match="no run 'nothing'"):
        archive_run(ArchiveInput(run="nothing"), ctx)


def test_the_cli_archives_a_run(ctx, bbc_run):
    from alloop.cli import app

    done = CliRunner().invoke(app, ["archive-run", bbc_run, "--root", str(ctx.root.path)])

    assert done.exit_code == 0, done.output
    assert "moved to .archive/bbc-" in done.output and not ctx.root.exists(bbc_run)


def test_a_second_writer_waits_for_the_first(ctx, bbc_run, monkeypatch):
    monkeypatch.setenv("ALLOOP_LOCK_WAIT", "10")
    run = ctx.root.run(bbc_run)
    holding = threading.Event()

    def first_writer():
        with run.lock():
            holding.set()
            time.sleep(0.5)

    thread = threading.Thread(target=first_writer)
    thread.start()
    holding.wait()
    started = time.monotonic()

    out = ask(ctx, bbc_run, max_rounds=4)  # takes the lock: waits for the first writer, then works

    thread.join()
    assert out.written and time.monotonic() - started >= 0.3


def test_a_second_writer_gives_up_after_the_bound_and_says_who_holds_the_run(ctx, bbc_run, monkeypatch):
    monkeypatch.setenv("ALLOOP_LOCK_WAIT", "0.3")
    inside, release = threading.Event(), threading.Event()
    write_spec = RunDir.write_spec

    def slow_write_spec(self, spec, reason):
        inside.set()
        release.wait(10)
        return write_spec(self, spec, reason)

    monkeypatch.setattr(RunDir, "write_spec", slow_write_spec)
    revising = threading.Thread(target=ask, args=(ctx, bbc_run), kwargs={"max_rounds": 4})
    revising.start()
    inside.wait(10)
    try:
        with pytest.raises(LockedError, match=r"the interview_spec call in this same process .* waited 0\.\d s"):
            archive_run(ArchiveInput(run=bbc_run), ctx)
    finally:
        release.set()
        revising.join()
    assert ctx.root.run(bbc_run).spec().budget.max_rounds == 4 and archive_run(ArchiveInput(run=bbc_run), ctx)


def test_a_wrong_lock_bound_is_named(ctx, bbc_run, monkeypatch):
    monkeypatch.setenv("ALLOOP_LOCK_WAIT", "soon")
    with pytest.raises(InputError, match="ALLOOP_LOCK_WAIT must be a number of seconds"):
        ask(ctx, bbc_run, max_rounds=4)
