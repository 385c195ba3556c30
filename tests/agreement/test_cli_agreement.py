"""`alloop agreement` and `alloop check-convergence`, through the `alloop` command itself."""

from __future__ import annotations

import json

from nltk.metrics.distance import masi_distance
from typer.testing import CliRunner

from alloop.cli import app

from .agreement_data import KRIPPENDORFF_2011, matrix_rows
from .test_set_and_text_agreement import EMOTIONS, TAGS, nltk_alpha

runner = CliRunner()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_agreement_json_reproduces_the_worked_example(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", matrix_rows(KRIPPENDORFF_2011))
    result = runner.invoke(
        app,
        [
            "agreement",
            "--annotations",
            str(path),
            "--metric",
            "krippendorff_alpha",
            "--level",
            "ordinal",
            "--bootstrap",
            "200",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"metric", "level", "value", "ci_low", "ci_high", "n_units", "n_coders"} <= set(out)
    assert (out["metric"], out["level"], round(out["value"], 3)) == ("krippendorff_alpha", "ordinal", 0.815)
    assert (out["n_units"], out["n_coders"]) == (12, 4)
    assert out["ci_low"] <= out["value"] <= out["ci_high"]


def test_agreement_reads_label_events_and_a_schema(tmp_path):
    rows = [
        {"item_id": u, "annotator": a, "label": v}
        for u, a, v in [
            (1, "ann", "lo"),
            (1, "bob", "lo"),
            (2, "ann", "hi"),
            (2, "bob", "mid"),
            (3, "ann", "mid"),
            (3, "bob", "mid"),
        ]
    ]
    path = write_jsonl(tmp_path / "labels.jsonl", rows)
    result = runner.invoke(app, ["agreement", "--annotations", str(path), "--metric", "percent", "--json"])
    assert json.loads(result.stdout)["value"] == 2 / 3
    plain = runner.invoke(
        app,
        [
            "agreement",
            "--annotations",
            str(path),
            "--metric",
            "cohens_kappa",
            "--level",
            "ordinal",
            "--labels",
            "lo,mid,hi",
        ],
    )
    assert plain.exit_code == 0 and "ann × bob" in plain.stdout


def test_agreement_bad_input_exits_2_with_the_reason(tmp_path):
    path = write_jsonl(tmp_path / "one.jsonl", [{"unit": 1, "coder": "ann", "value": "x"}])
    result = runner.invoke(app, ["agreement", "--annotations", str(path), "--json"])
    assert result.exit_code == 2
    assert "only one coder ('ann')" in result.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "the file is empty" in runner.invoke(app, ["agreement", "--annotations", str(empty)]).output


def test_check_convergence_over_a_run(tmp_path):
    from .test_check_convergence import make_run  # the run those tests build

    root, _ = make_run(tmp_path)
    command = ["check-convergence", "demo", "--root", str(root.path)]
    result = runner.invoke(app, [*command, "--bootstrap", "50", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["decision"] == "stop" and out["recorded"]
    assert out["rules"][0]["rule"] == "max_rounds"
    text = runner.invoke(app, [*command, "--no-record", "--bootstrap", "0"])
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith("run demo, round 3: STOP") and "human ceiling" in text.stdout
    missing = runner.invoke(app, ["check-convergence", "nope", "--root", str(root.path)])
    assert missing.exit_code == 2 and "no run 'nope'" in missing.output


def test_agreement_on_option_sets_with_masi(tmp_path):
    path = write_jsonl(tmp_path / "tags.jsonl", matrix_rows(TAGS))
    args = ["agreement", "--annotations", str(path), "--level", "masi", "--labels", ",".join(EMOTIONS), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["level"] == "masi" and abs(out["value"] - nltk_alpha(TAGS, masi_distance)) < 1e-12
