"""`alloop glmm fit`, `cv` and `curve`, called the way a researcher would."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from typer.testing import CliRunner

from alloop.cli import app

runner = CliRunner()


def glmm(args: list[str]) -> Result:
    return runner.invoke(app, ["glmm", *args])


def test_fit_prints_the_issue_json_shape(oracle_dir: Path) -> None:
    result = glmm(
        [
            "fit",
            "--data",
            str(oracle_dir / "binary.csv"),
            "--response",
            "y",
            "--family",
            "binary",
            "--mode",
            "random_slopes",
            "--participant",
            "participant",
            "--item",
            "item",
            "--predictors",
            "x",
            "--uncorrelated",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["fixed"]) == {"(Intercept)", "x"}
    assert set(out["fixed"]["x"]) == {"estimate", "se"}
    assert set(out["sd"]) == {"participant:(Intercept)", "participant:x", "item:(Intercept)"}
    assert out["cor"] == {}
    assert {"loglik", "converged", "seconds"} <= set(out)
    assert "thresholds" not in out


def test_fit_ordinal_with_plots(oracle_dir: Path, tmp_path: Path) -> None:
    result = glmm(
        [
            "fit",
            "--data",
            str(oracle_dir / "ordinal.csv"),
            "--family",
            "ordinal",
            "--mode",
            "random_intercepts",
            "--predictors",
            "x,c",
            "--plots",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert len(out["thresholds"]) == 6 and out["levels"] == [str(k) for k in range(1, 8)]
    assert set(out["fixed"]) == {"x", "c"}
    for png in out["plots"]:
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_gaussian_reml_summary_table(oracle_dir: Path) -> None:
    result = glmm(
        [
            "fit",
            "--data",
            str(oracle_dir / "gaussian.csv"),
            "--family",
            "gaussian",
            "--mode",
            "random_slopes",
            "--predictors",
            "x",
            "--reml",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "fit by REML" in result.stdout
    assert "Random effects:" in result.stdout and "residual" in result.stdout


def test_missing_column_is_a_clear_error(oracle_dir: Path) -> None:
    result = glmm(
        [
            "fit",
            "--data",
            str(oracle_dir / "binary.csv"),
            "--family",
            "binary",
            "--participant",
            "subject",
            "--predictors",
            "x",
            "--json",
        ],
    )
    assert result.exit_code == 2
    assert "participant column 'subject' is missing" in result.output


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = glmm(["fit", "--data", str(tmp_path / "nope.csv"), "--json"])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_cv_groups_folds_by_participant(oracle_dir: Path) -> None:
    result = glmm(
        [
            "cv",
            "--data",
            str(oracle_dir / "binary.csv"),
            "--family",
            "binary",
            "--predictors",
            "x,c",
            "--folds",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["grouped_by"] == "participant" and out["n"] == 864
    assert 0.5 < out["metrics"]["accuracy"] <= 1


def test_magnitude_on_the_log_scale_is_the_gaussian_fit_of_log_y(oracle_dir: Path, tmp_path: Path) -> None:
    """Magnitude estimates (say, reading times) modelled on the log scale: exp(y) with --log
    gives exactly the Gaussian fit of y."""
    lines = (oracle_dir / "gaussian.csv").read_text().splitlines()
    header = lines[0].split(",")
    k = header.index("y")
    rows = [r.split(",") for r in lines[1:]]
    for r in rows:
        r[k] = repr(float(np.exp(float(r[k]))))
    data = tmp_path / "magnitude.csv"
    data.write_text("\n".join([lines[0]] + [",".join(r) for r in rows]) + "\n")
    common = ["--mode", "random_intercepts", "--predictors", "x", "--reml", "--json"]
    mag = glmm(["fit", "--data", str(data), "--family", "magnitude", "--log", *common])
    gau = glmm(["fit", "--data", str(oracle_dir / "gaussian.csv"), "--family", "gaussian", *common])
    assert mag.exit_code == 0 and gau.exit_code == 0, mag.output + gau.output
    m, g = json.loads(mag.stdout), json.loads(gau.stdout)
    assert m["fixed"]["x"]["estimate"] == pytest.approx(g["fixed"]["x"]["estimate"], abs=1e-6)
    assert m["sd"]["residual"] == pytest.approx(g["sd"]["residual"], rel=1e-6)


def test_learning_curve_command(oracle_dir: Path) -> None:
    result = glmm(
        [
            "curve",
            "--data",
            str(oracle_dir / "gaussian.csv"),
            "--family",
            "gaussian",
            "--predictors",
            "x",
            "--fractions",
            "0.5,1",
            "--folds",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["fraction"] for r in rows] == [0.5, 1.0] and rows[0]["participants"] == 9


def test_multi_select_fits_one_logit_per_option(oracle_dir: Path, tmp_path: Path) -> None:
    lines = (oracle_dir / "binary.csv").read_text().splitlines()
    k = lines[0].split(",").index("c")
    rows = [r + ("," + ("a" if r.split(",")[k] == "0.5" else "b")) for r in lines[1:]]
    data = tmp_path / "multi.csv"
    data.write_text("\n".join([lines[0] + ",option", *rows]) + "\n")
    result = glmm(
        [
            "fit",
            "--data",
            str(data),
            "--family",
            "multi_select",
            "--option",
            "option",
            "--predictors",
            "x",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)["options"]
    assert set(out) == {"a", "b"} and all(o["n"] == 432 for o in out.values())
    assert set(out["a"]["sd"]) == {"participant:(Intercept)", "item:(Intercept)"}
    missing = glmm(["fit", "--data", str(data), "--family", "multi_select", "--json"])
    assert missing.exit_code == 2 and "needs --option" in missing.output


def test_forced_choice_command(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lines = ["trial,participant,item,x,y"]
    for t in range(150):
        x = rng.normal(size=2)
        chosen = int(rng.random() < 1 / (1 + np.exp(-(x[1] - x[0]))))
        lines += [f"t{t},p{t % 10},i{(2 * t + j) % 40},{x[j]:.5f},{int(j == chosen)}" for j in range(2)]
    data = tmp_path / "choices.csv"
    data.write_text("\n".join(lines) + "\n")
    result = glmm(
        [
            "fit",
            "--data",
            str(data),
            "--family",
            "forced_choice",
            "--trial",
            "trial",
            "--mode",
            "fixed",
            "--predictors",
            "x",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["fixed"]) == {"x"} and out["fixed"]["x"]["estimate"] > 0.3
