"""Fixtures for the Argilla tests: a real Argilla 2.8 server, a run root, and annotators.

The server stack (redis, the noida-db search engine, argilla-server) starts once per test
session on free loopback ports in a temporary folder (tests/argilla/argilla_stack.py) and is
torn down at the end; the tests are skipped, saying why, when scripts/setup.d/40-argilla.sh has
not installed it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.run.rundir import RunRoot

sys.path.insert(0, str(Path(__file__).parent))
from argilla_stack import ArgillaStack, missing_reason, running_stack
from argilla_testkit import Annotator


@pytest.fixture(scope="session")
def argilla_server() -> Iterator[ArgillaStack]:
    reason = missing_reason()
    if reason and os.environ.get("CI"):
        pytest.fail(reason)  # CI installs the stack (scripts/setup.sh --all): a skip would hide a broken install
    if reason:
        pytest.skip(reason)
    with running_stack() as stack:
        yield stack


@pytest.fixture
def argilla_env(argilla_server: ArgillaStack, monkeypatch: pytest.MonkeyPatch) -> ArgillaStack:
    """ARGILLA_API_URL / ARGILLA_API_KEY set to the test server's owner."""
    monkeypatch.setenv("ARGILLA_API_URL", argilla_server.url)
    monkeypatch.setenv("ARGILLA_API_KEY", argilla_server.owner_key)
    return argilla_server


@pytest.fixture
def root(tmp_path: Path) -> RunRoot:
    return RunRoot(tmp_path / "runs")


@pytest.fixture
def ctx(root: RunRoot) -> ToolContext:
    return ToolContext(root=root)


@pytest.fixture
def annotators(argilla_server: ArgillaStack) -> dict[str, Annotator]:
    return {name: Annotator(argilla_server.url, name, key) for name, key in argilla_server.annotator_keys.items()}
