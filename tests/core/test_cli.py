"""The `alloop` command as people and scripts use it (a real subprocess, a real BBC slice)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest
from pydantic import BaseModel
from typer.main import get_command

ENV = {**os.environ, "COLUMNS": "200"}


def alloop(*args: str, root=None, check=True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "alloop", *args]
    env = {**ENV, "ALLOOP_ROOT": str(root)} if root is not None else ENV
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(done.stderr)
    return done


def test_every_tool_is_a_subcommand_and_nothing_else_is():
    from alloop.cli import app
    from alloop.tools.registry import TOOLS

    group = get_command(app)
    commands = set(group.list_commands(click.Context(group)))
    tools = {spec.name.replace("_", "-") for spec in TOOLS} | {a for spec in TOOLS for a in spec.cli_aliases}
    assert commands == tools | {"serve", "version", "demo", "agreement", "glmm", "track"}
    assert "interview-spec" in alloop("--help").stdout  # the installed entry point mounts them too


def test_a_command_s_help_is_help_not_a_failure():
    done = alloop("status", "--help")
    assert "Usage" in done.stdout and done.stderr == ""


def test_an_output_with_a_summary_prints_it_instead_of_its_fields(capsys):
    from alloop.cli import render

    class Counted(BaseModel):
        n: int

        def summary(self) -> str:
            return f"{self.n} items counted"

    render(Counted(n=3), as_json=False)
    assert capsys.readouterr().out == "3 items counted\n"
    render(Counted(n=3), as_json=True)
    assert json.loads(capsys.readouterr().out) == {"n": 3}


@pytest.mark.slow
def test_init_then_simulate_then_status_over_the_cli(tmp_path, bbc_slice):
    root = tmp_path / "runs"
    alloop(
        "init",
        "cli",
        "--pool",
        str(bbc_slice["pool"]),
        "--heldout",
        str(bbc_slice["heldout"]),
        "--task-type",
        "categorical",
        "--labels",
        "business,entertainment,politics,sports,tech",
        root=root,
    )
    done = alloop(
        "simulate",
        "cli",
        "--gold",
        str(bbc_slice["gold"]),
        "--rounds",
        "2",
        "--batch-size",
        "8",
        "--strategy",
        "margin",
        "--json",
        root=root,
    )
    table = json.loads(done.stdout)["rounds"]
    assert [r["n_labeled"] for r in table] == [8, 16] and table[0]["strategy"] == "margin"
    header = (root / "cli" / "results.tsv").read_text().splitlines()[0].split("\t")
    assert header[:4] == ["round", "model_version", "strategy", "training_strategy"]
    status = json.loads(alloop("status", "cli", "--json", "--root", str(root)).stdout)
    assert status["model_rounds"] == [1, 2]


def test_errors_exit_2_with_a_message_and_no_traceback(tmp_path):
    done = alloop("status", "missing", root=tmp_path, check=False)
    assert done.returncode == 2
    assert "no run 'missing'" in done.stderr and "Traceback" not in done.stderr
    bad = alloop("select-batch", "x", "--batch-size", "0", root=tmp_path, check=False)
    assert bad.returncode == 2 and "batch_size" in bad.stderr


def test_root_confines_run_names(tmp_path):
    done = alloop("status", "../../etc", "--root", str(tmp_path), check=False)
    assert done.returncode == 2 and "not allowed" in done.stderr


def test_list_options_take_commas_and_repeated_flags(tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"id": str(i), "text": f"item {i}"}) + "\n" for i in range(4)))
    alloop(
        "init",
        "lists",
        "--pool",
        str(pool),
        "--heldout",
        "none",
        "--task-type",
        "categorical",
        "--labels",
        "red,green",
        "--labels",
        "blue",
        root=tmp_path / "runs",
    )
    spec = json.loads((tmp_path / "runs" / "lists" / "spec.json").read_text())
    assert spec["labels"] == ["red", "green", "blue"]


def test_the_command_list_imports_no_tool_and_no_heavy_library():
    code = """
import sys
import click
from typer.main import get_command
from alloop.cli import app
group = get_command(app)
ctx = click.Context(group)
listing = [group.get_command(ctx, name).get_short_help_str(200) for name in group.list_commands(ctx)]
heavy = {"numpy", "pyarrow", "torch", "sklearn", "transformers", "pandas", "jinja2", "alloop.tools.base"}
print(len(listing), sorted(heavy & set(sys.modules)), sorted(m for m in sys.modules if m.startswith("alloop.tools.")))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(" ", 1)[1].strip() == "[] ['alloop.tools.registry']"


def test_each_command_s_short_help_is_one_whole_sentence():
    from alloop.cli import app
    from alloop.tools.registry import ENTRIES, first_sentence, tool_named

    group = get_command(app)
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        short = " ".join((command.short_help or command.help.split("\n\n")[0]).split())  # what --help lists
        assert short[0].isupper() and short.endswith(".") and short.count(". ") == 0, (name, short)
    for entry in ENTRIES:  # the listing's sentence is the start of the tool's docstring, word for word
        spec = tool_named(entry.name)
        assert entry.summary == first_sentence(spec.description) and entry.aliases == spec.cli_aliases, entry.name
    help_text = alloop("--help").stdout
    assert all(panel in help_text for panel in ("Setup", "Loop", "Destinations", "Analysis"))


def table_rows(output: str) -> list[list[str]]:
    """The body rows of the first table in `output`, each a list of its cells."""
    body = output.split("┡", 1)[1].split("└", 1)[0].splitlines()[1:]
    return [[cell.strip() for cell in line.strip().strip("│").split("│")] for line in body]


@pytest.mark.slow
def test_at_80_columns_each_round_is_one_line_and_no_number_is_split(tmp_path, looped_run):
    import shutil

    from alloop.tools.run.rundir import RunRoot

    shutil.copytree(looped_run, tmp_path / "looped")
    results = RunRoot(tmp_path).run("looped").results()
    narrow = {**ENV, "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "alloop", "status", "looped", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        env=narrow,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
    rows = table_rows(done.stdout)
    assert len(rows) == len(results)  # a folded number would add a line to its round
    for row, result in zip(rows, results, strict=True):
        assert row[:3] == [str(result.round), str(result.n_labeled), f"{result.gold_macro_f1:.3f}"]
        assert all(float(value) >= 0 for value in row if value.replace(".", "", 1).isdigit())

    wide = subprocess.run(
        [sys.executable, "-m", "alloop", "status", "looped", "--wide", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        env=narrow,
        timeout=120,
    )
    filled = [c for c in results[0].model_dump() if any(getattr(r, c) not in (None, "") for r in results)]
    header = wide.stdout.split("┡", 1)[0]
    assert all(column in header for column in filled), [c for c in filled if c not in header]
    assert len(table_rows(wide.stdout)) == len(results)
