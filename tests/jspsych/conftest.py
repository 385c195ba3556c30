"""Fixtures of the jsPsych/JATOS tests: one headless Chromium per session (real jsPsych from
the npm cache) and fresh pages that can reach nothing but 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import CHROMIUM, CHROMIUM_ARGS, npm_cache_ready


@pytest.fixture(scope="package")  # its event loop must stop before async tests elsewhere run
def browser() -> Iterator[Any]:
    """One headless Chromium for the jsPsych tests (skipped where setup.sh --all did not run; in CI, failed)."""
    if not Path(CHROMIUM).exists() or not npm_cache_ready():
        missing = "needs chromium and the jsPsych npm cache: run scripts/setup.sh --all"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Any]]:
    """Fresh pages (own context each, like separate participants); only 127.0.0.1 is reachable."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context()
        context.set_default_timeout(15000)
        context.route("**/*", _local_only)
        contexts.append(context)
        page = context.new_page()
        page.blocked = []  # type: ignore[attr-defined]
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("requestfailed", lambda req: page.blocked.append(req.url))
        return page

    yield make
    for context in contexts:
        context.close()


def _local_only(route: Any) -> None:
    url = route.request.url
    if url.startswith(("http://127.0.0.1:", "http://127.0.0.1/")):
        route.continue_()
    else:
        route.abort()
