"""Agreement metrics reproduce published worked examples and scikit-learn."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score

from alloop.tools import agreement as ag
from alloop.tools.agreement.statistics import alpha_statistic, fleiss_statistic, percent_statistic
from alloop.tools.errors import InputError

from .agreement_data import (
    FLEISS_1971,
    FLEISS_CATEGORIES,
    KRIPPENDORFF_2011,
    KRIPPENDORFF_2011_ALPHA,
    matrix_rows,
    reliability_data,
)


@pytest.fixture
def krippendorff_rows():
    return matrix_rows(KRIPPENDORFF_2011)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_2011_example_every_level(krippendorff_rows, level):
    ratings = ag.Ratings.from_rows(krippendorff_rows, level=level)
    assert ratings.n_units == 12 and ratings.n_coders == 4
    assert ratings.pairable().sum() == 11  # unit 12 has one value and carries nothing
    assert round(ag.krippendorff_alpha(ratings), 3) == KRIPPENDORFF_2011_ALPHA[level]


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_vectorized_alpha_equals_the_package(level):
    """The closed form the bootstrap uses gives the package's value to rounding."""
    ratings = ag.Ratings.from_matrix(KRIPPENDORFF_2011, level=level)
    data = np.array([[np.nan if v is None else v for v in row] for row in KRIPPENDORFF_2011], dtype=float)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert alpha_statistic(ratings).value() == pytest.approx(expected, abs=1e-12)


def test_ordinal_text_labels_follow_the_schema_order():
    names = {1: "very low", 2: "low", 3: "mid", 4: "high", 5: "very high"}
    text = [[None if v is None else names[v] for v in row] for row in KRIPPENDORFF_2011]
    ratings = ag.Ratings.from_matrix(text, level="ordinal", labels=list(names.values()))
    assert round(ag.krippendorff_alpha(ratings), 3) == 0.815
    # Without the order, text labels are only nominal, and nominal α ignores the order anyway.
    assert round(ag.krippendorff_alpha(ag.Ratings.from_matrix(text)), 3) == 0.743


def test_fleiss_1971_table():
    rows = [
        {"unit": f"patient{p}", "coder": f"psychiatrist{k}", "value": FLEISS_CATEGORIES[d - 1]}
        for p, diagnoses in enumerate(FLEISS_1971)
        for k, d in enumerate(diagnoses)
    ]
    ratings = ag.Ratings.from_rows(rows, labels=FLEISS_CATEGORIES)
    assert ratings.counts().sum(axis=0).tolist() == [26, 26, 30, 55, 43]
    kappa = ag.agreement(ratings, "fleiss_kappa").value
    assert round(kappa, 3) == 0.430
    assert kappa == pytest.approx(0.4302445, abs=1e-7)  # R irr::kappam.fleiss(diagnoses)


def test_fleiss_wikipedia_example():
    """Wikipedia's Fleiss' κ example: 10 subjects, 14 raters, 5 categories, κ = 0.210."""
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    rows = []
    for subject, counts in enumerate(table):
        values = [category for category, n in enumerate(counts, start=1) for _ in range(n)]
        rows += [{"unit": subject, "coder": rater, "value": v} for rater, v in enumerate(values)]
    assert round(ag.agreement(ag.Ratings.from_rows(rows), "fleiss_kappa").value, 3) == 0.210


@pytest.mark.parametrize(("level", "weights"), [("nominal", None), ("ordinal", "linear"), ("interval", "quadratic")])
def test_cohens_kappa_matches_scikit_learn(level, weights):
    rng = np.random.default_rng(7)
    truth = rng.integers(1, 6, size=200)
    a = np.where(rng.random(200) < 0.7, truth, rng.integers(1, 6, size=200))
    b = np.where(rng.random(200) < 0.6, truth, rng.integers(1, 6, size=200))
    expected = cohen_kappa_score(a, b, labels=[1, 2, 3, 4, 5], weights=weights)
    assert ag.cohens_kappa(a, b, level=level) == pytest.approx(expected, abs=1e-12)
    # The same κ as the multi-coder statistic on two coders.
    ratings = ag.Ratings.from_matrix([a.tolist(), b.tolist()], level=level)
    assert ag.agreement(ratings, "cohens_kappa").value == pytest.approx(expected, abs=1e-12)


def test_pairwise_cohens_kappa_weighs_by_the_schema_order():
    """Ordered labels whose sorted order is not the scale's: the domain sets the weights."""
    scale = ["low", "mid", "high"]
    a = ["low", "mid", "high", "high", "mid", "low", "mid"]
    b = ["low", "high", "high", "mid", "mid", "mid", "low"]
    expected = cohen_kappa_score(a, b, labels=scale, weights="linear")
    assert ag.cohens_kappa(a, b, domain=scale, level="ordinal") == pytest.approx(expected, abs=1e-12)
    assert ag.cohens_kappa(a, b, level="ordinal") != pytest.approx(expected)
    with pytest.raises(InputError, match="not in the domain"):
        ag.cohens_kappa(a, b, domain=["low", "mid"])
    assert np.isnan(ag.cohens_kappa(["x", "x"], ["x", "x"]))


def test_cohens_kappa_pairs_skip_missing_and_average():
    rng = np.random.default_rng(3)
    matrix = rng.choice(["x", "y", "z"], size=(4, 60)).astype(object)
    matrix[rng.random((4, 60)) < 0.2] = None
    result = ag.agreement(ag.Ratings.from_matrix(matrix.tolist()), "cohens_kappa")
    assert len(result.pairs) == 6
    for pair in result.pairs:
        i, j = int(pair.coder_a[1:]) - 1, int(pair.coder_b[1:]) - 1
        both = [u for u in range(60) if matrix[i, u] is not None and matrix[j, u] is not None]
        expected = cohen_kappa_score(matrix[i, both].tolist(), matrix[j, both].tolist())
        assert pair.value == pytest.approx(expected, abs=1e-12) and pair.n_units == len(both)
    assert result.value == pytest.approx(np.mean([pair.value for pair in result.pairs]), abs=1e-12)


def test_percent_agreement_is_the_share_of_agreeing_pairs():
    a, b = ["x", "x", "y", "z", "y"], ["x", "y", "y", "z", "x"]
    two = ag.Ratings.from_matrix([a, b])
    assert ag.agreement(two, "percent").value == pytest.approx(accuracy_score(a, b))
    three = ag.Ratings.from_matrix([["x", "x"], ["x", "y"], ["x", "y"]])
    # unit 1: all three pairs agree; unit 2: one pair of three.
    assert ag.agreement(three, "percent").value == pytest.approx((1 + 1 / 3) / 2)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_bootstrap_weights_equal_duplicated_units(level):
    """A resample's weights give exactly the package's α on the units copied that many times."""
    ratings = ag.Ratings.from_matrix(KRIPPENDORFF_2011, level=level)
    rng = np.random.default_rng(11)
    weights = rng.integers(0, 4, size=(5, 12))
    weights[:, :2] += 1  # keep some spread of values in every resample
    got = alpha_statistic(ratings).fn(weights.astype(float))
    data = reliability_data(ratings)
    for row, value in zip(weights, got, strict=True):
        copied = data[:, np.repeat(np.arange(12), row)]
        assert value == pytest.approx(krippendorff.alpha(copied, level_of_measurement=level), abs=1e-10)


def test_fleiss_and_percent_weights_equal_duplicated_units():
    rows = matrix_rows([list(r) for r in zip(*FLEISS_1971, strict=True)])
    ratings = ag.Ratings.from_rows(rows)
    weights = np.random.default_rng(5).integers(0, 3, size=30)  # in the order of ratings.units
    times = dict(zip(ratings.units, weights, strict=True))
    copied = [
        {"unit": f"{r['unit']}#{k}", "coder": r["coder"], "value": r["value"]}
        for r in rows
        for k in range(times[r["unit"]])
    ]
    dup = ag.Ratings.from_rows(copied)
    w = weights[None, :].astype(float)
    assert fleiss_statistic(ratings).fn(w)[0] == pytest.approx(ag.agreement(dup, "fleiss_kappa").value, abs=1e-12)
    assert percent_statistic(ratings).fn(w)[0] == pytest.approx(ag.agreement(dup, "percent").value, abs=1e-12)


def test_agreement_with_interval_is_seeded_and_brackets_the_value(krippendorff_rows):
    ratings = ag.Ratings.from_rows(krippendorff_rows, level="interval")
    first = ag.agreement(ratings, bootstrap_samples=500, seed=4)
    again = ag.agreement(ratings, bootstrap_samples=500, seed=4)
    assert first == again
    assert first.ci_low <= first.value <= first.ci_high <= 1.0
    assert first.summary()["n_units"] == 12 and first.n_pairable_units == 11


@pytest.mark.parametrize("metric", ["krippendorff_alpha", "fleiss_kappa", "cohens_kappa", "percent"])
def test_focus_on_one_of_two_coders_is_the_plain_metric(metric):
    two = ag.Ratings.from_matrix(KRIPPENDORFF_2011[1:3])
    plain = ag.agreement(two, metric).value
    assert ag.agreement(two, metric, focus="c1").value == pytest.approx(plain, abs=1e-12)


def test_focus_measures_only_the_focus_pairs():
    """Three coders who agree and one who always differs: the odd one out scores far lower."""
    humans = [["a", "b", "c", "a", "b", "c"]] * 3
    odd = [["b", "c", "a", "b", "c", "a"]]
    ratings = ag.Ratings.from_matrix(humans + odd, coders=["h1", "h2", "h3", "model"])
    assert ag.agreement(ratings, "percent", focus="model").value == 0.0
    assert ag.agreement(ratings, "percent", focus="h1").value == pytest.approx(2 / 3)
    assert ag.agreement(ratings, "krippendorff_alpha", focus="model").value < 0


def test_a_coder_like_the_others_scores_the_ceiling():
    """If the focus coder is one more draw from the same coders, its agreement with the others
    matches the others' agreement among themselves (what makes model vs ceiling a fair test)."""
    gaps: dict[str, list[float]] = {metric: [] for metric in ag.METRICS}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        latent = rng.integers(1, 6, size=2000)
        data = np.where(rng.random((4, 2000)) < 0.6, latent, rng.integers(1, 6, size=(4, 2000))).astype(object)
        data[rng.random((4, 2000)) < 0.3] = None
        ratings = ag.Ratings.from_matrix(data.tolist(), coders=["model", "h1", "h2", "h3"])
        humans = ratings.select_coders(["h1", "h2", "h3"])
        for metric in ag.METRICS:
            gaps[metric].append(ag.agreement(ratings, metric, focus="model").value - ag.agreement(humans, metric).value)
    for metric, values in gaps.items():
        assert abs(np.mean(values)) < 0.015, metric


def test_interval_alpha_on_continuous_values():
    """Magnitudes: every value distinct. Same figure as the package, and the bootstrap needs no
    units × values table (50,000 distinct values would need 10¹⁰ cells)."""
    rng = np.random.default_rng(2)
    truth = rng.lognormal(3, 1, size=60)
    data = truth * rng.lognormal(0, 0.3, size=(3, 60))
    data[rng.random((3, 60)) < 0.2] = np.nan
    ratings = ag.Ratings.from_matrix(data.tolist(), level="interval")
    assert ratings.n_values > 100
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="interval")
    assert ag.krippendorff_alpha(ratings) == pytest.approx(expected, abs=1e-12)
    big = rng.normal(size=(2, 25_000))
    big[1] += big[0]
    result = ag.agreement(ag.Ratings.from_matrix(big.tolist(), level="interval"), bootstrap_samples=50)
    assert result.n_values == 50_000 and result.ci_low < result.value < result.ci_high


def test_a_crowd_design_with_many_coders_each_coding_a_few_units():
    """100 crowd workers, 3 per unit: α pools the pairs; averaged Cohen's κ uses the pairs that met."""
    rng = np.random.default_rng(8)
    rows = []
    for unit in range(400):
        truth = rng.integers(0, 3)
        for coder in rng.choice(100, size=3, replace=False):
            value = truth if rng.random() < 0.8 else rng.integers(0, 3)
            rows.append({"unit": unit, "coder": f"w{coder}", "value": int(value)})
    ratings = ag.Ratings.from_rows(rows)
    assert ratings.n_coders == 100 and ratings.pairable().all()
    for metric in ("krippendorff_alpha", "fleiss_kappa", "percent"):
        result = ag.agreement(ratings, metric, bootstrap_samples=100)
        assert result.ci_low <= result.value <= result.ci_high, metric
    # Most pairs of workers meet on one unit or none: the average of pairwise κ says so.
    assert "share fewer than 5 units" in ag.agreement(ratings, "cohens_kappa").note
    assert ag.agreement(ratings).value == pytest.approx(
        krippendorff.alpha(reliability_data(ratings), level_of_measurement="nominal")
    )
