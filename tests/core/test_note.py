"""The note tool: the agent's line in notes.md, which the report shows; and the CLI's one line for a bug."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from alloop import cli
from alloop.tools.errors import InputError
from alloop.tools.registry import tool_named
from alloop.tools.write_report import ReportInput, write_report


def test_a_note_is_one_line_appended_to_notes_md(ctx, bbc_run):
    out = tool_named("note").call({"run": bbc_run, "text": "  tech is never predicted;\n  ask for more tech  "}, ctx)
    notes = ctx.root.run(bbc_run).notes_path.read_text().splitlines()
    assert out.note == "tech is never predicted; ask for more tech" and out.file == "notes.md"
    assert notes[-1].startswith("- ") and notes[-1].endswith(" tech is never predicted; ask for more tech")


def test_the_report_shows_the_notes(ctx, bbc_run):
    tool_named("note").call({"run": bbc_run, "text": "stopped early: the annotators disagree on politics"}, ctx)
    write_report(ReportInput(run=bbc_run), ctx)
    assert "stopped early: the annotators disagree on politics" in ctx.root.run(bbc_run).report_path.read_text()


def test_a_blank_note_is_refused(ctx, bbc_run):
    with pytest.raises(InputError, match="blank"):
        tool_named("note").call({"run": bbc_run, "text": " \n "}, ctx)


def test_the_cli_writes_notes_too(root, bbc_run):
    done = CliRunner().invoke(cli.app, ["note", bbc_run, "seed looks balanced", "--root", str(root.path)])
    assert done.exit_code == 0, done.output
    assert root.run(bbc_run).notes_path.read_text().rstrip().endswith("seed looks balanced")


def test_a_bug_at_the_cli_is_one_line_naming_the_command_and_no_traceback(root, bbc_run, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("label")

    monkeypatch.setattr(cli, "run_tool", broken)
    done = CliRunner().invoke(cli.app, ["status", bbc_run, "--root", str(root.path)])
    assert done.exit_code == 2
    assert "error: status failed unexpectedly (KeyError: 'label')" in done.output
    assert "ALLOOP_LOG_LEVEL=DEBUG" in done.output and "Traceback" not in done.output
