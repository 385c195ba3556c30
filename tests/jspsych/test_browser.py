"""Real jsPsych (from the npm cache) in headless Chromium, hosted by the JATOS double.

For every task type: build the study from a run's selection round, export the .jzip, import
it through the JATOS client, take it as a participant would, pull the results back through
the client and find the answers in labels.jsonl. Also: six participants starting at once end
up in balanced Latin-square lists; item text and config text with HTML or script are shown as text; consent,
Prolific redirect, study-full, debug pin and minimum trial time.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.build_jspsych import BuildJspsychInput, build_jspsych
from alloop.tools.export_jzip import ExportJzipInput, export_jzip
from alloop.tools.jatos_import import JatosImportInput, jatos_import
from alloop.tools.jspsych.config import ExperimentConfig
from alloop.tools.jspsych.jzip import study_uuids
from alloop.tools.pull_jatos import PullJatosInput, pull_jatos
from alloop.tools.run.rundir import RunDir

from .helpers import jatos_context, make_run
from .jatos_double import JatosDouble
from .participant import Participant

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def jatos() -> Any:
    with JatosDouble(version="3.10") as double:
        yield double


def publish(
    tmp_path: Path,
    jatos: JatosDouble,
    name: str,
    task_type: str,
    labels: list[str],
    items: list[dict[str, Any]],
    config: dict[str, Any],
) -> tuple[ToolContext, RunDir, str]:
    """Build, export and import a study; returns a context on the double, the run and a general
    participant link."""
    root, run = make_run(tmp_path / name, name, task_type, labels, items)
    ctx = jatos_context(root, jatos.url)
    build_jspsych(BuildJspsychInput(run=name, round=1, config=ExperimentConfig.model_validate(config)), ctx)
    export_jzip(ExportJzipInput(run=name, round=1), ctx)
    imported = jatos_import(JatosImportInput(run=name, round=1, link_type="gs"), ctx)
    return ctx, run, imported.links[0]


def wait_until(condition: Any, what: str, page: Any = None, tries: int = 300) -> None:
    """Wait (up to about 15 s) for something the browser does in the background; with a page,
    wait through it so that its events keep arriving."""
    for _ in range(tries):
        if condition():
            return
        if page is not None:
            page.wait_for_timeout(50)
        else:
            time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


TWO_ITEMS = [
    {"id": "s1", "text": "The old man the boats."},
    {"id": "s2", "text": "Colorless green ideas sleep furiously."},
]
CASES = [
    # name, task_type, labels, widget, extra trial config, items, answers
    ("likert", "ordinal_scale", ["1", "2", "3", "4", "5"], "likert", {}, TWO_ITEMS, {"s1": "2", "s2": "5"}),
    ("oslider", "ordinal_scale", ["bad", "ok", "good"], "slider", {}, TWO_ITEMS, {"s1": "good", "s2": "bad"}),
    ("binbtn", "binary", ["yes", "no"], "buttons", {}, TWO_ITEMS, {"s1": "no", "s2": "yes"}),
    (
        "binkeys",
        "binary",
        ["acceptable", "unacceptable"],
        "keys",
        {"keys": ["f", "j"]},
        TWO_ITEMS,
        {"s1": "unacceptable", "s2": "acceptable"},
    ),
    (
        "afc3",
        "forced_choice",
        ["A", "B", "C"],
        "buttons",
        {"choices_field": "options"},
        [
            {"id": "p1", "text": "Which sounds best?", "options": ["He go.", "He goes.", "He going."]},
            {"id": "p2", "text": "Which sounds best?", "options": ["Two cat.", "Two cats.", "Two cates."]},
        ],
        {"p1": "B", "p2": "C"},
    ),
    (
        "catbtn",
        "categorical",
        ["noun", "verb", "adjective"],
        "buttons",
        {},
        TWO_ITEMS,
        {"s1": "verb", "s2": "adjective"},
    ),
    (
        "catmc",
        "categorical",
        ["noun", "verb", "adjective"],
        "multiple_choice",
        {},
        TWO_ITEMS,
        {"s1": "noun", "s2": "verb"},
    ),
    (
        "multi",
        "multi_select",
        ["grammatical", "plausible", "funny"],
        "checkboxes",
        {},
        TWO_ITEMS,
        {"s1": ["grammatical", "funny"], "s2": ["plausible"]},
    ),
    ("magslider", "magnitude", [], "slider", {"min": 0, "max": 100}, TWO_ITEMS, {"s1": 30.0, "s2": 80.0}),
    (
        "magnumber",
        "magnitude",
        [],
        "number",
        {"min": 0, "max": 1000, "step": 0.5},
        TWO_ITEMS,
        {"s1": 12.5, "s2": 400.0},
    ),
    ("freetext", "free_text", [], "text", {}, TWO_ITEMS, {"s1": "boats are manned", "s2": "nonsense"}),
    (
        "cloze",
        "cloze",
        [],
        "blanks",
        {},
        [{"id": "c1", "text": "The cat ___ on the ___."}, {"id": "c2", "text": "I ___ 100% sure."}],
        {"c1": ["sat", "mat"], "c2": "am"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_task_type_round_trip(case: tuple, tmp_path: Path, jatos: JatosDouble, new_page: Any) -> None:
    name, task_type, labels, widget, extra, items, answers = case
    config = {
        "title": f"Study {name}",
        "instructions": ["Welcome.", "Judge each sentence.\n\nThere are no wrong answers."],
        "trial": {"widget": widget, "prompt": "Your judgment?", **extra},
        "practice": [
            {
                "fields": {"text": items[0]["text"], **{k: v for k, v in items[0].items() if k == "options"}},
                "explanation": "There is no right answer: go with your first impression.",
            }
        ],
    }
    ctx, run, link = publish(tmp_path, jatos, name, task_type, labels, items, config)
    practice_answer = answers[items[0]["id"]]
    participant = Participant(
        widget="ordinal_slider" if (task_type, widget) == ("ordinal_scale", "slider") else widget,
        options=labels,
        answer=lambda item_id: answers.get(item_id, practice_answer),
    )
    if task_type == "forced_choice":
        # The participant clicks the sentence; the label is its position (A, B, C).
        by_item = {it["id"]: it["options"] for it in items}
        participant.answer = lambda item_id: by_item.get(item_id, by_item[items[0]["id"]])[
            labels.index(answers.get(item_id, practice_answer))
        ]
    page = new_page()
    assert participant.take(page, link + "?PROLIFIC_PID=pp-1&STUDY_ID=st&SESSION_ID=se") == "complete"
    page.wait_for_selector("#jatos-end")
    assert not page.errors, page.errors
    assert sorted(participant.seen[1:]) == sorted(answers)  # the practice item comes first
    # The instructions say there are no wrong answers: the feedback never grades.
    assert len(participant.feedback) == 1 and "first impression" in participant.feedback[0]
    assert "right answer here" not in participant.feedback[0]

    pulled = pull_jatos(PullJatosInput(run=run.name, round=1), ctx)
    events = run.labels()
    assert pulled.n_new == len(answers) == len(events)
    assert {e.item_id: e.label for e in events} == answers
    for event in events:
        assert event.source == "human" and event.destination == "jatos" and event.round == 1
        assert event.annotator.startswith("jatos:")
        assert event.extra["prolific_pid"] == "pp-1"
    assert run.round_file("annotation", 1).is_file()
    # Pulling the same results again adds nothing.
    assert pull_jatos(PullJatosInput(run=run.name, round=1), ctx).n_new == 0
    assert len(run.labels()) == len(answers)


def test_self_paced_reading_gives_reading_times(tmp_path: Path, jatos: JatosDouble, new_page: Any) -> None:
    config = {"instructions": [], "trial": {"widget": "spr", "spr_summary": "mean"}}
    ctx, run, link = publish(tmp_path, jatos, "spr", "magnitude", [], TWO_ITEMS, config)
    participant = Participant(widget="spr", options=[], answer=lambda item_id: None)
    page = new_page()
    assert participant.take(page, link) == "complete"
    page.wait_for_selector("#jatos-end")
    pull_jatos(PullJatosInput(run=run.name, round=1), ctx)
    events = {e.item_id: e for e in run.labels()}
    assert set(events) == {"s1", "s2"}
    for item in TWO_ITEMS:
        event = events[item["id"]]
        assert isinstance(event.label, float) and event.label >= 0
        assert len(event.extra["response"]["word_rts"]) == len(item["text"].split())


def test_six_participants_at_once_get_balanced_latin_square_lists(
    tmp_path: Path, jatos: JatosDouble, new_page: Any
) -> None:
    items = [
        {"id": f"g{g}-{c}", "text": f"Sentence {g} in condition {c}.", "group": f"g{g}", "condition": c}
        for g in range(6)
        for c in ("a", "b", "c")
    ]
    config = {
        "instructions": ["Welcome."],
        "lists": {"mode": "latin_square", "group_field": "group", "condition_field": "condition"},
        "distribution": {"strategy": "balanced"},
        "order": {"randomize": True, "no_adjacent_field": "condition", "max_run": 1},
    }
    ctx, run, link = publish(tmp_path, jatos, "latin", "binary", ["yes", "no"], items, config)
    jatos.start_barrier = threading.Barrier(6, timeout=60)
    conflicts_before = jatos.session_conflicts
    pages = [new_page() for _ in range(6)]
    try:
        for page in pages:  # all six wait at JATOS's init until the sixth has arrived
            page.goto(link, wait_until="domcontentloaded")
        for page in pages:
            page.wait_for_selector("#jspsych-instructions-next")
    finally:
        jatos.start_barrier = None
    record = jatos.study(study_uuids(run.name, "round_01")["study"])
    state = next(v for k, v in record.batch_session["data"].items() if k.startswith("alloop-"))
    assert state["assigned"] == [2, 2, 2]
    assert len(state["byResult"]) == 6
    assert jatos.session_conflicts > conflicts_before  # the versioned writes really raced

    participants = []
    for page in pages:
        participant = Participant(widget="buttons", options=["yes", "no"], answer=lambda item_id: "yes")
        assert participant.take(page, None) == "complete"
        page.wait_for_selector("#jatos-end")
        participants.append(participant)
    condition = {it["id"]: it["condition"] for it in items}
    for participant in participants:
        conditions = [condition[i] for i in participant.seen]
        assert Counter(conditions) == {"a": 2, "b": 2, "c": 2}
        assert all(x != y for x, y in itertools.pairwise(conditions))  # no two adjacent alike
        assert len({i.split("-")[0] for i in participant.seen}) == 6  # each group once
    pull_jatos(PullJatosInput(run=run.name, round=1), ctx)
    per_item = Counter(e.item_id for e in run.labels())
    assert len(per_item) == 18 and set(per_item.values()) == {2}


HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b> 100% sure ___ yes'


@pytest.mark.parametrize(
    "task_type,labels,widget",
    [
        ("binary", ["<i>yes</i>", "no"], "buttons"),
        ("ordinal_scale", ["<u>1</u>", "2", "3"], "likert"),
        ("categorical", ["<i>a</i>", "b"], "multiple_choice"),
        ("cloze", [], "blanks"),
    ],
)
def test_html_in_items_and_labels_is_shown_as_text(
    task_type: str, labels: list[str], widget: str, tmp_path: Path, jatos: JatosDouble, new_page: Any
) -> None:
    items = [{"id": "x<1>", "text": HOSTILE}]
    config = {
        "instructions": ["<script>window.__pwned=3</script> Read <b>carefully</b>."],
        "trial": {"widget": widget, "prompt": "<em>Judge</em>"},
    }
    _, _, link = publish(tmp_path, jatos, f"html-{widget}", task_type, labels, items, config)
    page = new_page()
    page.goto(link, wait_until="domcontentloaded")
    page.wait_for_selector("#jspsych-instructions-next")
    assert "<script>window.__pwned=3</script>" in page.inner_text(".alloop-page")
    page.click("#jspsych-instructions-next")
    item = page.wait_for_selector(".alloop-item")
    assert item.get_attribute("data-item-id") == "x<1>"
    shown = item.inner_text()
    assert "<script>window.__pwned=2</script>" in shown and "<b>bold</b>" in shown and "100% sure" in shown
    assert page.query_selector(".alloop-item b, .alloop-item img, .alloop-item script") is None
    assert page.evaluate("window.__pwned") is None
    if labels:
        assert labels[0] in page.inner_text("#jspsych-content")
        assert page.query_selector("#jspsych-content i, #jspsych-content u") is None
    assert "<em>Judge</em>" in page.inner_text("#jspsych-content")


ATTACK = """"'><img src=x onerror="(window.__xss = window.__xss || []).push('attack')"><b>bold</b> 50% & more"""
"""A config text that breaks out of an attribute or runs script where it is parsed as HTML."""
BUTTONS = "#jspsych-html-button-response-btngroup button"
CONFIG_TEXTS = [
    # field, task_type, labels, config, the element that shows the text, items answered to get there
    ("cloze_button_label", "cloze", [], {"trial": {"button_label": ATTACK}}, "#finish_cloze_button", 0),
    (
        "likert_button_label",
        "ordinal_scale",
        ["1", "2", "3"],
        {"trial": {"button_label": ATTACK}},
        "#jspsych-survey-likert-next",
        0,
    ),
    ("prompt", "binary", ["yes", "no"], {"trial": {"prompt": ATTACK}}, ".alloop-prompt", 0),
    ("response_key", "binary", ["yes", "no"], {"trial": {"widget": "keys", "keys": [ATTACK, "j"]}}, ".alloop-keys", 0),
    (
        "slider_end_label",
        "magnitude",
        [],
        {"trial": {"slider_labels": [ATTACK, "a lot"]}},
        "#jspsych-html-slider-response-wrapper span",
        0,
    ),
    ("instructions", "binary", ["yes", "no"], {"instructions": [ATTACK]}, ".alloop-page", 0),
    ("consent", "binary", ["yes", "no"], {"consent": ATTACK}, "#alloop-consent", 0),
    ("consent_agree_button", "binary", ["yes", "no"], {"consent": "Agree?", "consent_agree": ATTACK}, BUTTONS, 0),
    (
        "demographic_prompt",
        "binary",
        ["yes", "no"],
        {"demographics": [{"name": "q", "prompt": ATTACK}]},
        "#alloop-demographics label",
        0,
    ),
    (
        "demographic_option",
        "binary",
        ["yes", "no"],
        {"demographics": [{"name": "q", "prompt": "Q", "type": "choice", "options": [ATTACK, "other"]}]},
        "#alloop-demographics option:nth-child(2)",
        0,
    ),
    (
        "practice_feedback",
        "binary",
        ["yes", "no"],
        {"practice": [{"fields": {"text": "Try."}, "expected": ATTACK}]},
        "#alloop-feedback",
        1,
    ),
    (
        "practice_explanation",
        "binary",
        ["yes", "no"],
        {"practice": [{"fields": {"text": "Try."}, "explanation": ATTACK}]},
        "#alloop-feedback",
        1,
    ),
    (
        "likert_scale_end",
        "ordinal_scale",
        ["1", "2", "3"],
        {"trial": {"scale_ends": [ATTACK, "natural"]}},
        ".alloop-scale-ends span",
        0,
    ),
    ("completion_message", "binary", ["yes", "no"], {"completion_message": ATTACK}, "#alloop-complete", 2),
]


@pytest.mark.parametrize("case", CONFIG_TEXTS, ids=[c[0] for c in CONFIG_TEXTS])
def test_config_text_cannot_run_script_in_the_participants_browser(
    case: tuple, tmp_path: Path, jatos: JatosDouble, new_page: Any
) -> None:
    """The cloze button label once ran its onerror on every trial (reliability review 2026-11, §6):
    every text of the config a participant sees is shown literally, and none of it runs."""
    field, task_type, labels, config, where, answered = case
    items = [{"id": "c1", "text": "The cat ___ here."}] if task_type == "cloze" else TWO_ITEMS
    _, _, link = publish(tmp_path, jatos, f"xss-{field}", task_type, labels, items, {"instructions": [], **config})
    page = new_page()
    page.goto(link, wait_until="domcontentloaded")
    for _ in range(answered):
        item = page.wait_for_selector(".alloop-item")
        page.locator(BUTTONS).first.click()
        item.wait_for_element_state("hidden")
    shown = page.wait_for_selector(where, state="attached")
    assert ATTACK in shown.evaluate("e => e.tagName === 'INPUT' ? e.value : e.textContent")
    assert page.query_selector("#jspsych-content img, #jspsych-content b") is None
    # A copy of the attack inserted as HTML does run: once it has, the real one had its chance.
    control = ATTACK.replace("'attack'", "'control'")
    page.evaluate("html => document.body.insertAdjacentHTML('beforeend', html)", control)
    page.wait_for_function("(window.__xss || []).includes('control')")
    assert page.evaluate("window.__xss") == ["control"]
    assert not page.errors, page.errors


def test_consent_declined_ends_the_study_without_labels_on_jatos_3_8(tmp_path: Path, new_page: Any) -> None:
    config = {"consent": "You agree that your answers are stored.", "instructions": []}
    with JatosDouble(version="3.8") as jatos_3_8:
        _consent_declined(tmp_path, jatos_3_8, config, new_page)


def _consent_declined(tmp_path: Path, jatos: JatosDouble, config: dict, new_page: Any) -> None:
    ctx, run, link = publish(tmp_path, jatos, "consent", "binary", ["yes", "no"], TWO_ITEMS, config)
    participant = Participant(widget="buttons", options=["yes", "no"], answer=lambda i: "yes", consent=False)
    page = new_page()
    assert participant.take(page, link) == "declined"
    page.wait_for_function("document.body.innerText.includes('did not agree')")
    wait_until(lambda: all(r.state == "FAIL" for r in jatos.runs.values()), "the study run to end as FAIL")
    with ctx.jatos_client(None) as client:
        results = client.component_results(study_uuids(run.name, "round_01")["study"])
    assert not participant.seen
    pulled = pull_jatos(PullJatosInput(run=run.name, round=1, only_finished=False), ctx)
    assert pulled.n_new == 0
    assert [r.study_state for r in results] == ["FAIL"]


def test_prolific_code_redirects_and_demographics_are_kept(tmp_path: Path, jatos: JatosDouble, new_page: Any) -> None:
    config = {
        "instructions": [],
        "prolific_completion_code": "C0DE123",
        "demographics": [
            {"name": "age", "prompt": "Age", "type": "number", "required": True},
            {"name": "native", "prompt": "Native language", "type": "choice", "options": ["English", "Other"]},
        ],
        "attention_checks": [{"fields": {"text": "Please answer 'no' here."}, "expected": "no"}],
    }
    ctx, run, link = publish(tmp_path, jatos, "prolific", "binary", ["yes", "no"], TWO_ITEMS, config)
    participant = Participant(
        widget="buttons",
        options=["yes", "no"],
        answer=lambda i: "no" if i.startswith("attention") else "yes",
        demographics={"age": "31", "native": "English"},
    )
    page = new_page()
    assert participant.take(page, link + "?PROLIFIC_PID=abc") == "complete"
    wait_until(lambda: any("prolific.com" in url for url in page.blocked), "the Prolific redirect", page)
    assert any("app.prolific.com/submissions/complete?cc=C0DE123" in url for url in page.blocked)
    pull_jatos(PullJatosInput(run=run.name, round=1), ctx)
    events = run.labels()
    assert {e.item_id for e in events} == {"s1", "s2"}  # the attention check is no label
    assert all(e.extra["attention_pass_rate"] == 1.0 for e in events)
    assert all(e.extra["demographics"] == {"age": "31", "native": "English"} for e in events)


def test_study_full_and_debug_pin(tmp_path: Path, jatos: JatosDouble, new_page: Any) -> None:
    items = [{"id": f"i{i}", "text": f"Item {i}."} for i in range(4)]
    config = {
        "instructions": [],
        "lists": {"mode": "split", "n_lists": 2},
        "max_participants": 1,
        "distribution": {"strategy": "sequential"},
        "allow_debug_param": True,
    }
    _, _, link = publish(tmp_path, jatos, "full", "binary", ["yes", "no"], items, config)
    first = Participant(widget="buttons", options=["yes", "no"], answer=lambda i: "yes")
    assert first.take(new_page(), link) == "complete"
    second = new_page()
    second.goto(link, wait_until="domcontentloaded")
    assert "all the participants" in second.wait_for_selector("#alloop-error").inner_text()
    # A debug link pins list 1 and bypasses the assignment (and the limit).
    pinned = Participant(widget="buttons", options=["yes", "no"], answer=lambda i: "no")
    assert pinned.take(new_page(), link + "?alloop_debug_list=1") == "complete"
    assert set(pinned.seen).isdisjoint(first.seen) and len(pinned.seen) == 2


def test_minimum_trial_time_blocks_early_answers(tmp_path: Path, jatos: JatosDouble, new_page: Any) -> None:
    config = {"instructions": [], "min_trial_ms": 60000, "trial": {"widget": "keys"}}
    _, _, link = publish(tmp_path, jatos, "mintime", "binary", ["yes", "no"], TWO_ITEMS, config)
    page = new_page()
    page.goto(link, wait_until="domcontentloaded")
    item = page.wait_for_selector(".alloop-item")
    page.keyboard.press("f")
    assert item.evaluate("e => e.isConnected")
    assert page.evaluate("document.querySelector('#jspsych-content').classList.contains('alloop-wait')")


@contextlib.contextmanager
def served(folder: Path) -> Iterator[str]:
    """A built study on a plain static web server (no jatos.js: a local preview); yields its URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


def preview(
    tmp_path: Path, name: str, task_type: str, labels: list[str], items: list[dict[str, Any]], config: dict[str, Any]
) -> contextlib.AbstractContextManager[str]:
    """Build a study from a run's round 1 and serve it as a local preview."""
    root, _ = make_run(tmp_path / name, name, task_type, labels, items)
    args = BuildJspsychInput(run=name, round=1, config=ExperimentConfig.model_validate(config))
    return served(build_jspsych(args, ToolContext(root=root)).path)


def test_the_built_folder_runs_standalone_without_jatos(tmp_path: Path, new_page: Any) -> None:
    """Opened from any static web server (no jatos.js there), the study still runs to its end, says
    honestly that nothing was saved and offers the answers as a download."""
    with preview(tmp_path, "plain", "binary", ["yes", "no"], TWO_ITEMS, {}) as url:
        page = new_page()
        participant = Participant(widget="buttons", options=["yes", "no"], answer=lambda i: "yes")
        assert participant.take(page, url, finish=False) == "complete"
        assert sorted(participant.seen) == ["s1", "s2"]
        end = page.inner_text("#alloop-complete")
        assert "saved" not in end.lower() and "not sent anywhere" in end
        with page.expect_download() as download:
            page.click("#alloop-download")
        rows = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert {(r["item_id"], r["label"]) for r in rows if r.get("alloop_role") == "item"} == {
        ("s1", "yes"),
        ("s2", "yes"),
    }


def test_answers_of_a_participant_who_leaves_half_way_are_kept(
    tmp_path: Path, jatos: JatosDouble, new_page: Any
) -> None:
    config = {"instructions": [], "order": {"randomize": False}}
    ctx, run, link = publish(tmp_path, jatos, "dropout", "binary", ["yes", "no"], TWO_ITEMS, config)
    page = new_page()
    participant = Participant(widget="buttons", options=["yes", "no"], answer=lambda i: "no", stop_after=1)
    assert participant.take(page, link) == "left"
    study = study_uuids(run.name, "round_01")["study"]
    with ctx.jatos_client(None) as client:
        wait_until(lambda: '"s1"' in client.component_results(study)[0].data, "the first answer to be stored")
    page.close()
    assert pull_jatos(PullJatosInput(run=run.name, round=1), ctx).n_new == 0  # not finished
    kept = pull_jatos(PullJatosInput(run=run.name, round=1, only_finished=False), ctx)
    assert kept.n_new == 1 and [(e.item_id, e.label) for e in run.labels()] == [("s1", "no")]


# -- on a phone --------------------------------------------------------------------------------

PHONE = {"width": 375, "height": 740}
LONG = (
    "Although the committee had already approved the extraordinarily comprehensive proposal, "
    "nobody expected the antidisestablishmentarianism-themed amendments to pass so quickly."
)
SENTENCES = [
    "The keys to the cabinet on the left of the kitchen door are on the table.",
    "The keys to the cabinet on the left of the kitchen door is on the table.",
]
PHONE_CASES = [
    # name, task_type, labels, trial config
    ("likert7", "ordinal_scale", list("1234567"), {"widget": "likert", "scale_ends": ["unnatural", "natural"]}),
    ("oslider", "ordinal_scale", ["not natural at all", "so-so", "completely natural"], {"widget": "slider"}),
    ("binbtn", "binary", ["acceptable", "unacceptable"], {"widget": "buttons"}),
    ("binkeys", "binary", ["acceptable", "unacceptable"], {"widget": "keys"}),
    ("afc", "forced_choice", ["first", "second"], {"widget": "buttons", "choices_field": "options"}),
    ("catbtn", "categorical", ["statement", "question", "exclamation", "imperative"], {"widget": "buttons"}),
    ("catmc", "categorical", ["statement", "question", "exclamation", "imperative"], {"widget": "multiple_choice"}),
    ("multi", "multi_select", ["grammatical", "plausible", "idiomatic", "formal"], {"widget": "checkboxes"}),
    ("magslider", "magnitude", [], {"widget": "slider", "slider_labels": ["not at all", "a great deal"]}),
    ("magnumber", "magnitude", [], {"widget": "number"}),
    ("spr", "magnitude", [], {"widget": "spr"}),
    ("freetext", "free_text", [], {"widget": "text"}),
    ("cloze", "cloze", [], {"widget": "blanks"}),
]
OVERFLOW = """() => {
  const width = window.innerWidth;
  const shown = "button, input, textarea, select, label, .alloop-item, .alloop-prompt, .alloop-keys, " +
    ".alloop-scale-ends span, #jspsych-html-slider-response-wrapper span";
  const cut = [...document.querySelectorAll(shown)].filter((e) => e.getClientRects().length).filter((e) => {
    const r = e.getBoundingClientRect();
    return r.left < 0 || r.right > width + 0.5;
  }).map((e) => e.outerHTML.slice(0, 100));
  return { scrollWidth: document.documentElement.scrollWidth, width, cut };
}"""


@pytest.mark.parametrize("case", PHONE_CASES, ids=[c[0] for c in PHONE_CASES])
def test_every_trial_fits_a_phone_screen(case: tuple, tmp_path: Path, new_page: Any) -> None:
    """At 375 px the page never scrolls sideways and every button, field and text is on the screen."""
    name, task_type, labels, trial = case
    text = (
        "The cat ___ on the mat while the antidisestablishmentarianism ___ went on." if task_type == "cloze" else LONG
    )
    items = [{"id": "p1", "text": text, "options": SENTENCES}]
    config = {"instructions": [], "trial": {"prompt": "How natural is this sentence to you?", **trial}}
    with preview(tmp_path, name, task_type, labels, items, config) as url:
        page = new_page()
        page.set_viewport_size(PHONE)
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector(".alloop-item")
        page.wait_for_timeout(100)  # layout settles (fonts)
        fit = page.evaluate(OVERFLOW)
        page.screenshot(path=tmp_path / f"{name}.png", full_page=True)  # kept to look at (pytest --basetemp)
    assert fit["scrollWidth"] <= fit["width"], fit
    assert fit["cut"] == [], fit
    assert not page.errors, page.errors


def test_forced_choice_shows_the_sentences_in_counterbalanced_positions(tmp_path: Path, new_page: Any) -> None:
    """Each sentence is a large button; over the trials each sits first as often as second, and the
    data says where each was and which position was chosen."""
    items = [{"id": f"p{i}", "text": "Which sentence sounds better?", "options": SENTENCES} for i in range(6)]
    config = {"instructions": [], "trial": {"choices_field": "options"}}
    with preview(tmp_path, "afc-balance", "forced_choice", ["first", "second"], items, config) as url:
        page = new_page()
        page.set_viewport_size(PHONE)
        participant = Participant(widget="buttons", options=SENTENCES, answer=lambda i: SENTENCES[1])
        assert participant.take(page, url, finish=False) == "complete"
        with page.expect_download() as download:
            page.click("#alloop-download")
        rows = [r for r in json.loads(Path(download.value.path()).read_text()) if r.get("alloop_role") == "item"]
    assert len(rows) == 6
    assert Counter(tuple(r["positions"]) for r in rows) == {(0, 1): 3, (1, 0): 3}
    for row in rows:  # the label is the sentence clicked, wherever it was
        assert row["label"] == "second"
        assert row["positions"][row["chosen_position"]] == 1


def test_likert_has_end_labels_and_number_keys(tmp_path: Path, new_page: Any) -> None:
    config = {"instructions": [], "order": {"randomize": False}, "trial": {"scale_ends": ["unnatural", "natural"]}}
    with preview(tmp_path, "likert-keys", "ordinal_scale", list("12345"), TWO_ITEMS, config) as url:
        page = new_page()
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector(".alloop-item[data-item-id='s1']")
        assert page.inner_text(".alloop-scale-ends").split() == ["unnatural", "natural"]
        page.keyboard.press("4")
        assert page.is_checked("input[name='Q0'][value='3']")
        page.keyboard.press("2")  # a second key changes the answer
        page.click("#jspsych-survey-likert-next")
        page.wait_for_selector(".alloop-item[data-item-id='s2']")
        page.keyboard.press("9")  # no ninth point: nothing ticked
        assert page.locator("input[name='Q0']:checked").count() == 0
        page.keyboard.press("5")
        page.click("#jspsych-survey-likert-next")
        with page.expect_download() as download:
            page.click("#alloop-download")
        rows = json.loads(Path(download.value.path()).read_text())
    assert {r["item_id"]: r["label"] for r in rows if r.get("alloop_role") == "item"} == {"s1": "2", "s2": "5"}


def test_practice_feedback_and_fixation_cross(tmp_path: Path, new_page: Any) -> None:
    """A practice item without a right answer gets its explanation, never "right" or "wrong"; one
    with a right answer says whether it was given. A fixation cross comes before every item."""
    config = {
        "instructions": [],
        "trial": {"fixation_ms": 300, "iti_ms": 50},
        "practice": [
            {"fields": {"text": "Try this one."}, "explanation": "Most people find this one natural."},
            {"fields": {"text": "Press 'no' here."}, "expected": "no"},
        ],
    }
    with preview(tmp_path, "practice", "binary", ["yes", "no"], TWO_ITEMS, config) as url:
        page = new_page()
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector(".alloop-fixation")
        participant = Participant(widget="buttons", options=["yes", "no"], answer=lambda i: "yes")
        assert participant.take(page, None, finish=False) == "complete"
    first, second = participant.feedback
    assert "You answered: yes" in first and "Most people find this one natural." in first
    assert "right" not in first.lower() and "wrong" not in first.lower()
    assert "The right answer here is: no" in second


def test_device_check_turns_a_phone_away(tmp_path: Path, new_page: Any) -> None:
    with preview(tmp_path, "device", "binary", ["yes", "no"], TWO_ITEMS, {"device_check": True}) as url:
        page = new_page()
        page.set_viewport_size(PHONE)
        page.goto(url, wait_until="domcontentloaded")
        assert "computer with a keyboard" in page.wait_for_selector("#alloop-error").inner_text()
        wide = new_page()
        wide.set_viewport_size({"width": 1280, "height": 800})
        wide.goto(url, wait_until="domcontentloaded")
        wide.wait_for_selector("#jspsych-instructions-next")
