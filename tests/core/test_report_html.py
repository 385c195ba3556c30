"""report.html: the finished run's page has every section, each with data, and nothing from outside."""

from __future__ import annotations

import base64
import re
import shutil
from html.parser import HTMLParser

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.errors import InputError, LockedError
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.report.datasets import BBC_LABELS
from alloop.tools.run.rundir import RunRoot
from alloop.tools.run.schema import LabelEvent
from alloop.tools.write_report import ReportInput, write_report

SECTIONS_WITH_FIGURES = ["learning-curve", "per-class-f1", "confusion", "batch-mix", "uncertainty", "delta"]
SECTIONS_WITH_TABLES = [*SECTIONS_WITH_FIGURES, "rounds", "labels", "agreement", "stopping"]
PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Each section's embedded images, table cells and text, keyed by the section's id."""

    def __init__(self) -> None:
        super().__init__()
        self.section: str | None = None
        self.images: dict[str, list[str]] = {}
        self.cells: dict[str, list[str]] = {}
        self.text: dict[str, str] = {}
        self.links: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "section":
            self.section = values["id"]
            self.images[self.section], self.cells[self.section], self.text[self.section] = [], [], ""
        elif self.section and tag == "img":
            self.images[self.section].append(values["src"] or "")
        self._in_cell = tag == "td"

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.section = None
        self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self.section:
            self.text[self.section] += data
            if self._in_cell:
                self.cells[self.section].append(data.strip())


@pytest.fixture(scope="module")
def finished(looped_run, tmp_path_factory):
    """The looped run, with two people who labeled 30 held-out items (one disagrees on every fourth), reported."""
    root = RunRoot(tmp_path_factory.mktemp("report") / "runs")
    root.path.mkdir(parents=True)
    shutil.copytree(looped_run, root.path / "looped")
    run = root.run("looped")
    labels = run.spec().labels
    overlap = sorted(run.heldout_gold().items())[:30]
    people = [
        LabelEvent(item_id=item, label=gold, source="human", annotator="ana", round=3) for item, gold in overlap
    ] + [
        LabelEvent(
            item_id=item,
            label=labels[(labels.index(gold) + 1) % len(labels)] if k % 4 == 0 else gold,
            source="human",
            annotator="ben",
            round=3,
        )
        for k, (item, gold) in enumerate(overlap)
    ]
    with run.lock():
        run.append_labels(people)
    result = write_report(ReportInput(run="looped"), ToolContext(root=root, inputs_anywhere=True))
    html = run.inside(result.page).read_text(encoding="utf-8")
    page = Page()
    page.feed(html)
    return result, html, page


def test_the_tool_writes_report_html_beside_report_md(finished):
    result, html, _ = finished
    assert (result.report, result.page) == ("report.md", "report.html")
    assert html.startswith("<!doctype html>")


@pytest.mark.parametrize("section", SECTIONS_WITH_FIGURES)
def test_each_figure_is_an_embedded_png(finished, section):
    _, _, page = finished
    assert page.images[section], f"{section} has no figure"
    for src in page.images[section]:
        prefix, data = src.split(",", 1)
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(data).startswith(PNG)


@pytest.mark.parametrize("section", SECTIONS_WITH_TABLES)
def test_each_section_has_a_table_with_numbers_or_words(finished, section):
    _, _, page = finished
    filled = [c for c in page.cells[section] if c and c != "–"]
    assert len(filled) >= 2, f"{section}: {page.cells[section]}"


def test_the_page_points_nowhere_outside_itself(finished):
    _, html, page = finished
    assert not [link for link in page.links if re.match(r"(?i)\s*(https?:)?//", link)]
    assert not re.search(r"(?i)(src|href)\s*=\s*[\"']?\s*https?://", html)


def test_the_learning_curve_has_its_band_and_says_there_is_no_baseline(finished):
    _, _, page = finished
    text = page.text["learning-curve"]
    assert "95% percentile bootstrap interval over the 100 held-out items" in text
    assert "No baseline" in text
    table = page.cells["learning-curve"]
    assert "0.528" in table  # round 3's gold macro-F1, beside its interval


def test_empty_columns_are_left_out_of_the_round_table(finished):
    _, html, _ = finished
    rounds = html.split('id="rounds"', 1)[1].split("</section>", 1)[0]
    headers = re.findall(r"<th>([^<]+)</th>", rounds)
    assert "gold_macro_f1" in headers and "stop_decision" in headers
    assert not {"gold_mae", "judge_accuracy", "agreement_model_human"} & set(headers)


def test_agreement_shows_the_model_and_the_human_ceiling_with_intervals(finished):
    _, _, page = finished
    text = page.text["agreement"]
    assert "the model with people on 30 held-out items; the human ceiling among 2 people on 30 items" in text
    cells = page.cells["agreement"]
    ceiling = cells[cells.index("human ceiling") + 1 : cells.index("human ceiling") + 4]
    value, low, high = (float(c) for c in ceiling)
    assert low <= value <= high < 1.0


def test_a_ceiling_from_pool_overlap_alone_is_shown_and_said(looped_run, tmp_path):
    root = RunRoot(tmp_path / "runs")
    root.path.mkdir(parents=True)
    shutil.copytree(looped_run, root.path / "looped")
    run = root.run("looped")
    labels = run.spec().labels
    pool_items = sorted({e.item_id for e in run.labels()})[:20]
    people = [
        LabelEvent(
            item_id=item, label=labels[(k * (name == "ben")) % len(labels)], source="human", annotator=name, round=3
        )
        for k, item in enumerate(pool_items)
        for name in ("ana", "ben")
    ]
    with run.lock():
        run.append_labels(people)
    write_report(ReportInput(run="looped"), ToolContext(root=root, inputs_anywhere=True))
    page = Page()
    page.feed(run.inside("report.html").read_text(encoding="utf-8"))
    text = page.text["agreement"]
    assert "the model with people on 0 held-out items" in text
    assert "on 20 items labeled by two or more (pool, 20 of them pool items)" in text


def test_the_page_says_why_the_run_stopped_and_who_labeled(finished):
    _, _, page = finished
    assert "max_rounds: round 3 reached the limit of 3 rounds" in page.text["stopping"]
    assert {"simulator", "ana", "ben"} <= set(page.cells["labels"])


def test_a_head_without_variance_components_gets_no_such_section(finished):
    _, _, page = finished
    assert "variance-components" not in page.text


def test_a_glmm_head_shows_its_variance_components(looped_run, tmp_path):
    """The card a GLMM head writes (glmm/head.py: one fit per class, random-effect SDs) reaches the page."""
    from alloop.tools.report.sections import glmm_card, variance_components
    from alloop.tools.run.models import ModelDir

    root = RunRoot(tmp_path / "runs")
    root.path.mkdir(parents=True)
    shutil.copytree(looped_run, root.path / "looped")
    model = ModelDir(root.run("looped"), 3)
    card = model.card()
    card["head"] = {
        "head": "glmm",
        "family": "binary",
        "effects": "random_intercepts",
        "estimation": "Laplace (variance components estimated)",
        "fits": [{"fixed": {"(Intercept)": 0.2}, "sd": {"annotator:(Intercept)": 0.5}, "singular": False}],
    }
    model.write_card(card)

    section = variance_components(glmm_card(root.run("looped")))

    assert section is not None and section.id == "variance-components"
    assert section.tables[0].columns == ["component", "sd", "variance", "singular"]
    assert section.tables[0].rows == [["annotator:(Intercept)", "0.5000", "0.2500", "False"]]


def create(ctx: ToolContext, files: dict, name: str, **answers) -> None:
    """A BBC run as the shared looped run was made (same labels and batch size)."""
    answers = {"task_type": "categorical", "labels": BBC_LABELS, "batch_size": 10} | answers
    interview_spec(InterviewInput(run=name, pool=str(files["pool"]), heldout=str(files["heldout"]), **answers), ctx)


@pytest.fixture(scope="module")
def with_baseline(looped_run, bbc_slice, tmp_path_factory):
    """The looped run beside a random-selection run of the same pool, seed set and held-out items."""
    from alloop.tools.simulate import SimulateInput, simulate

    root = RunRoot(tmp_path_factory.mktemp("baseline") / "runs")
    root.path.mkdir(parents=True)
    shutil.copytree(looped_run, root.path / "looped")
    ctx = ToolContext(root=root, inputs_anywhere=True)
    create(ctx, bbc_slice, "random", max_rounds=3, strategy="random")
    simulate(SimulateInput(run="random", gold=str(bbc_slice["gold"]), rounds=3, batch_size=10), ctx)
    result = write_report(ReportInput(run="looped", baseline="random"), ctx)
    page = Page()
    page.feed(root.run("looped").inside(result.page).read_text(encoding="utf-8"))
    return root, ctx, page


def test_a_baseline_run_is_drawn_and_tabled_beside_the_run(with_baseline):
    root, _, page = with_baseline
    text = page.text["learning-curve"]
    assert "Baseline: run 'random' (random selection) on the same held-out items" in text
    assert "No baseline" not in text
    theirs = {r.n_labeled: r.gold_macro_f1 for r in root.run("random").results()}
    ours = {r.n_labeled: r.gold_macro_f1 for r in root.run("looped").results()}
    gain = sum(ours[n] - theirs[n] for n in ours) / len(ours)
    assert f"{len(ours)} label counts both runs reached: {gain:+.3f}" in text
    from alloop.tools.report.sections import learning_curve

    run = root.run("looped")
    (shown,) = learning_curve(run, run.spec(), run.results(), root.run("random")).tables
    column = shown.columns.index("baseline")
    assert [row[column] for row in shown.rows] == [f"{theirs[n]:.3f}" for n in sorted(ours)]
    assert len(page.images["learning-curve"]) == 1


def test_a_baseline_on_other_heldout_items_is_refused(with_baseline, bbc_slice, tmp_path):
    root, ctx, _ = with_baseline
    rows = bbc_slice["heldout"].read_text().splitlines()
    fewer = tmp_path / "fewer.jsonl"
    fewer.write_text("\n".join(rows[: len(rows) // 2]) + "\n")
    create(ctx, {**bbc_slice, "heldout": fewer}, "other")
    before = root.run("looped").inside("report.html").read_bytes()
    with pytest.raises(InputError, match="not scored on run 'looped''s held-out items"):
        write_report(ReportInput(run="looped", baseline="other"), ctx)
    with pytest.raises(InputError, match="is the run itself"):
        write_report(ReportInput(run="looped", baseline="looped"), ctx)
    assert root.run("looped").inside("report.html").read_bytes() == before  # nothing rewritten


def test_a_report_waits_for_the_runs_writer_and_writes_nothing_when_it_gives_up(looped_run, tmp_path, monkeypatch):
    """write_report reads under the run's lock: never a round that a train or score call is half-way through."""
    root = RunRoot(tmp_path / "runs")
    root.path.mkdir(parents=True)
    shutil.copytree(looped_run, root.path / "looped")
    run = root.run("looped")
    monkeypatch.setenv("ALLOOP_LOCK_WAIT", "0.2")

    with run.lock(), pytest.raises(LockedError, match="waited 0"):
        write_report(ReportInput(run="looped"), ToolContext(root=root, inputs_anywhere=True))

    assert not run.report_path.exists() and not run.inside("report.html").exists()
    assert write_report(ReportInput(run="looped"), ToolContext(root=root, inputs_anywhere=True)).rounds == 3
