"""Shared data for the agreement tests: published worked examples."""

from __future__ import annotations

import numpy as np

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the reliability data with
# missing values: 4 observers (rows) × 12 units (columns); None where an observer gave no value.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
# The values that paper reports for each level of measurement.
KRIPPENDORFF_2011_ALPHA = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}

# Fleiss (1971), "Measuring nominal scale agreement among many raters", Table 1: 30 patients,
# each diagnosed by 6 psychiatrists into 5 categories (1 depression, 2 personality disorder,
# 3 schizophrenia, 4 neurosis, 5 other). One row per patient, the six diagnoses given.
# (The same data ship as `diagnoses` in R's irr package, where kappam.fleiss gives 0.4302445.)
FLEISS_1971 = [
    [4, 4, 4, 4, 4, 4],
    [2, 2, 2, 5, 5, 5],
    [2, 3, 3, 3, 3, 5],
    [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3],
    [3, 3, 3, 3, 5, 5],
    [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4],
    [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4],
    [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3],
    [1, 4, 4, 4, 4, 4],
    [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5],
    [1, 1, 1, 1, 1, 2],
    [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5],
    [2, 4, 4, 4, 4, 4],
    [2, 2, 4, 5, 5, 5],
    [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4],
    [1, 1, 1, 1, 5, 5],
    [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3],
    [5, 5, 5, 5, 5, 5],
]
FLEISS_CATEGORIES = ["depression", "personality disorder", "schizophrenia", "neurosis", "other"]


def matrix_rows(matrix, coders=None):
    """{unit, coder, value} rows from a coders × units matrix (None = missing)."""
    rows = []
    for i, line in enumerate(matrix):
        for j, value in enumerate(line):
            if value is not None:
                rows.append({"unit": f"u{j + 1}", "coder": coders[i] if coders else f"c{i + 1}", "value": value})
    return rows


def reliability_data(ratings):
    """coders × units floats with NaN for missing: the `krippendorff` package's layout."""
    values = ratings.numbers()
    out = np.full(ratings.codes.shape, np.nan)
    present = ratings.codes >= 0
    out[present] = values[ratings.codes[present]]
    return out.T
