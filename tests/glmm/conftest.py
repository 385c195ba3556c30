"""Shared fixtures for the GLMM tests: the R oracle's data sets (tests/glmm/oracle)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alloop.tools.glmm.design import read_csv

ORACLE = Path(__file__).parent / "oracle"


@pytest.fixture(scope="session")
def oracle_dir() -> Path:
    return ORACLE


@pytest.fixture(scope="session")
def binary_data() -> dict:
    return read_csv(ORACLE / "binary.csv")


@pytest.fixture(scope="session")
def ordinal_data() -> dict:
    return read_csv(ORACLE / "ordinal.csv")


@pytest.fixture(scope="session")
def gaussian_data() -> dict:
    return read_csv(ORACLE / "gaussian.csv")
