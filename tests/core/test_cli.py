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
    assert commands == tools | {"serve", "version", "demo", "agreement", "glmm"}
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
    alloop("init", "lists", "--pool", str(pool), "--heldout", "none", "--task-type", "categorical",
           "--labels", "red,green", "--labels", "blue", root=tmp_path / "runs")
    spec = json.loads((tmp_path / "runs" / "lists" / "spec.json").read_text())
    assert spec["labels"] == ["red", "green", "blue"]
