"""Bad input gives a clear error or a flagged warning, never a silent wrong answer."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.tools.errors import InputError
from alloop.tools.glmm.design import GLMMSpec, build_frame
from alloop.tools.glmm.model import fit


def _with(data: dict, **columns: object) -> dict:
    out = dict(data)
    out.update({k: np.asarray(v, dtype=object) for k, v in columns.items()})
    return out


def test_binary_response_outside_0_1_names_the_row(binary_data: dict) -> None:
    y = binary_data["y"].copy()
    y[4] = "2"
    with pytest.raises(InputError, match=r"binary family needs 'y' in \{0, 1\}.*data row 5 has '2'"):
        build_frame(_with(binary_data, y=y), GLMMSpec("binary", predictors=("x",)))


def test_ordinal_response_must_be_integer_points(ordinal_data: dict) -> None:
    y = ordinal_data["y"].copy()
    y[0] = "2.5"
    with pytest.raises(InputError, match="integer scale points"):
        build_frame(_with(ordinal_data, y=y), GLMMSpec("ordinal", predictors=("x",)))


def test_gaussian_response_must_be_numeric(gaussian_data: dict) -> None:
    y = gaussian_data["y"].copy()
    y[2] = "fast"
    with pytest.raises(InputError, match="'y' must be numeric, data row 3 has 'fast'"):
        build_frame(_with(gaussian_data, y=y), GLMMSpec("gaussian"))


def test_log_magnitude_needs_positive_values(gaussian_data: dict) -> None:
    with pytest.raises(InputError, match="needs y > 0"):
        build_frame(gaussian_data, GLMMSpec("magnitude", log_response=True))


def test_constant_predictor_is_refused(binary_data: dict) -> None:
    data = _with(binary_data, z=["1.0"] * len(binary_data["y"]))
    with pytest.raises(InputError, match="predictor 'z' is constant"):
        build_frame(data, GLMMSpec("binary", predictors=("x", "z")))


def test_missing_participant_column_lists_the_columns(binary_data: dict) -> None:
    with pytest.raises(InputError, match=r"participant column 'subject' is missing; the columns are \[.*'participant'"):
        build_frame(binary_data, GLMMSpec("binary", participant="subject", predictors=("x",)))


def test_grouping_factor_with_one_level_is_refused(binary_data: dict) -> None:
    data = _with(binary_data, item=["i01"] * len(binary_data["y"]))
    with pytest.raises(InputError, match="item column 'item' has 1 level"):
        build_frame(data, GLMMSpec("binary", predictors=("x",)))


def test_reml_only_for_gaussian() -> None:
    with pytest.raises(InputError, match="REML is defined for the gaussian family only"):
        GLMMSpec("binary", reml=True)


def test_non_convergence_is_flagged(binary_data: dict) -> None:
    result = fit(build_frame(binary_data, GLMMSpec("binary", mode="random_slopes", predictors=("x",))), max_iter=3)
    report = result.to_json()
    assert report["converged"] is False
    assert any("did not converge" in w for w in report["warnings"])


def test_singular_fit_is_flagged(gaussian_data: dict) -> None:
    """Participant means made identical: the participant variance is estimated at 0."""
    rng = np.random.default_rng(1)
    part = gaussian_data["participant"]
    y = rng.normal(size=len(part))
    for p in np.unique(part):
        y[part == p] -= y[part == p].mean()
    result = fit(build_frame(_with(gaussian_data, y=y.round(6)), GLMMSpec("gaussian")))
    report = result.to_json()
    assert report["singular"] is True
    assert report["sd"]["participant:(Intercept)"] < 1e-3
    assert any("singular fit" in w for w in report["warnings"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a,b\n1,\xff\n", "not valid UTF-8"),
        (b"a,b\n1," + b"x" * 200_000 + b"\n", "not a readable CSV row"),
    ],
)
def test_a_glmm_data_file_that_cannot_be_read_names_file_and_line(tmp_path, content, message):
    from alloop.tools.glmm.design import read_csv

    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=rf"data.csv:2: {message}"):
        read_csv(path)
