"""The `alloop` command as people and scripts use it (a real subprocess, a real BBC slice)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "COLUMNS": "200"}


def alloop(*args: str, root=None, check=True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "alloop", *args]
    env = {**ENV, "ALLOOP_ROOT": str(root)} if root is not None else ENV
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(done.stderr)
    return done


def test_help_lists_one_subcommand_per_tool():
    text = alloop("--help").stdout
    for command in [
        "init",
        "interview-spec",
        "seed-set",
        "train-glmm",
        "score-pool",
        "select-batch",
        "import-labels",
        "export-batch",
        "simulate",
        "status",
        "serve",
        "demo",
    ]:
        assert command in text, command


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
    alloop("init", "lists", "--pool", str(pool), "--task-type", "categorical",
           "--labels", "red,green", "--labels", "blue", root=tmp_path / "runs")
    spec = json.loads((tmp_path / "runs" / "lists" / "spec.json").read_text())
    assert spec["labels"] == ["red", "green", "blue"]
