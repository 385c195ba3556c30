"""build_jspsych: what it writes, the lists it makes, and the clear errors on bad input
(before anything is written)."""

from __future__ import annotations

import json
import re
import subprocess
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from alloop.tools.base import ToolContext
from alloop.tools.build_jspsych import BuildJspsychInput, build_jspsych
from alloop.tools.errors import InputError, StateError
from alloop.tools.jspsych.build import build_study, plan_study
from alloop.tools.jspsych.config import ExperimentConfig, ListConfig
from alloop.tools.jspsych.lists import make_lists
from alloop.tools.run.schema import TaskSpec

from .helpers import has_node, make_run, npm_cache_ready

ITEMS = [{"id": f"i{i}", "text": f"Sentence {i}."} for i in range(4)]


def build(tmp_path: Path, task_type: str, labels: list[str], items: list[dict], config: dict, name: str = "r"):
    root, run = make_run(tmp_path, name, task_type, labels, items)
    args = BuildJspsychInput(run=name, round=1, config=ExperimentConfig.model_validate(config))
    return run, build_jspsych(args, ToolContext(root=root))


def test_cdn_build_writes_index_data_and_links_pinned_jspsych(tmp_path: Path) -> None:
    run, out = build(tmp_path, "binary", ["yes", "no"], ITEMS, {"jspsych_source": "cdn", "title": "T"})
    folder = Path(out.path)
    assert folder == run.path / "experiments" / "round_01"
    html = (folder / "index.html").read_text()
    assert "https://cdn.jsdelivr.net/npm/jspsych@8.3.0/dist/index.browser.min.js" in html
    assert '<script src="jatos.js"></script>' in html
    assert json.loads((folder / "data" / "lists.json").read_text()) == [["i0", "i1", "i2", "i3"]]
    items = json.loads((folder / "data" / "items.json").read_text())
    assert items["i2"]["texts"] == ["Sentence 2."]
    config = json.loads((folder / "data" / "config.json").read_text())
    assert config["task_type"] == "binary" and config["labels"] == ["yes", "no"] and config["widget"] == "buttons"
    assert json.loads((folder / "data" / "distribution.json").read_text())["strategy"] == "balanced"
    assert out.list_sizes == [4] and out.experiment == "round_01"
    assert html.index("js/alloop-text.js") < html.index("js/alloop-experiment.js")  # escaping before the timeline


@pytest.mark.skipif(not npm_cache_ready(), reason="needs the jsPsych npm cache: run scripts/setup.sh --all")
def test_local_build_copies_jspsych_and_plugins(tmp_path: Path) -> None:
    _, out = build(tmp_path, "binary", ["yes", "no"], ITEMS, {})
    folder = Path(out.path)
    assert (folder / "jspsych" / "jspsych.js").read_bytes().startswith(b"var jsPsychModule")
    assert (folder / "jspsych" / "plugin-cloze.js").is_file()
    assert "cdn.jsdelivr" not in (folder / "index.html").read_text()


def test_missing_npm_cache_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOOP_JSPSYCH_CACHE", str(tmp_path / "nowhere"))
    with pytest.raises(StateError, match=r"scripts/setup.sh --all"):
        build(tmp_path, "binary", ["yes", "no"], ITEMS, {})
    assert not (tmp_path / "r" / "r" / "experiments" / "round_01").exists()


def test_setup_and_builder_default_to_one_npm_cache_in_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed from a wheel the code sits in site-packages, so the cache must not follow it."""
    from alloop.tools.jspsych import npm

    monkeypatch.delenv("ALLOOP_JSPSYCH_CACHE", raising=False)
    assert npm.cache_dir() == Path.home() / ".cache" / "alloop" / "jspsych"
    script = (Path(__file__).resolve().parents[2] / "scripts" / "setup.d" / "30-browser.sh").read_text()
    assert "CACHE=${ALLOOP_JSPSYCH_CACHE:-$HOME/.cache/alloop/jspsych}" in script


def test_latin_square_lists() -> None:
    items = [{"id": f"{g}{c}", "group": g, "condition": c} for g in "123" for c in "ab"]
    lists = make_lists(items, ListConfig(mode="latin_square", group_field="group", condition_field="condition"))
    assert lists == [["1a", "2b", "3a"], ["1b", "2a", "3b"]]
    split = make_lists(ITEMS, ListConfig(mode="split", n_lists=2), seed=3)
    assert sorted(split[0] + split[1]) == ["i0", "i1", "i2", "i3"] and [len(x) for x in split] == [2, 2]


def rejected(tmp_path: Path, match: str, task_type: str = "binary", labels=("yes", "no"), items=ITEMS, config=None):
    with pytest.raises((InputError, ValidationError), match=match):
        build(tmp_path, task_type, list(labels), items, {"jspsych_source": "cdn", **(config or {})})
    assert not list(tmp_path.rglob("experiments"))  # nothing written


def test_item_without_the_text_field_is_refused(tmp_path: Path) -> None:
    items = [{"id": "a", "text": "x"}, {"id": "b", "text": ""}]
    rejected(tmp_path, r"item 'b' has no text in field 'text'", items=items)


def test_item_without_its_choices_is_refused(tmp_path: Path) -> None:
    items = [{"id": "a", "text": "x", "options": ["p", "q"]}, {"id": "b", "text": "y", "options": ["p"]}]
    config = {"trial": {"choices_field": "options"}}
    rejected(tmp_path, "two or more option strings", "forced_choice", ["A", "B"], items, config)


def test_cloze_item_without_a_blank_is_refused(tmp_path: Path) -> None:
    rejected(tmp_path, "has no blank", "cloze", [], [{"id": "a", "text": "no gap here"}])


def test_task_type_without_labels_is_refused(tmp_path: Path) -> None:
    valid = TaskSpec(run="x", task_type="categorical", labels=["a", "b"])
    spec = valid.model_copy(update={"labels": []})  # as a hand-edited spec.json might say
    with pytest.raises(InputError, match="needs two or more labels"):
        build_study(ITEMS, spec, ExperimentConfig(jspsych_source="cdn"), tmp_path / "out", study_key="k")
    assert not (tmp_path / "out").exists()


def test_widget_that_does_not_fit_the_task_is_refused(tmp_path: Path) -> None:
    rejected(tmp_path, "does not fit task_type", config={"trial": {"widget": "slider"}})


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"distribution": {"strategy": "weighted_random", "weights": [1, 1, 1]}}, "3 entries but there are 1 lists"),
        (
            {"distribution": {"strategy": "quota_based", "quotas": [5]}, "lists": {"mode": "split", "n_lists": 2}},
            "1 entries but there are 2 lists",
        ),
        ({"distribution": {"strategy": "metadata_based", "param": "g", "mapping": {"x": 4}}}, "outside 0..0"),
        ({"distribution": {"strategy": "latin_square"}}, "needs lists.mode 'latin_square'"),
        ({"distribution": {"strategy": "stratified"}}, "stratum_param"),
        ({"distribution": {"strategy": "weighted_random", "weights": [0]}}, "positive sum"),
        ({"distribution": {"strategy": "round_robin"}}, "does not match any of the expected tags"),
        ({"distribution": {"strategy": "random", "weights": [1, 2]}}, "Extra inputs are not permitted"),
        ({"debug_list": 3}, "only 1 lists"),
    ],
)
def test_strategy_config_that_does_not_match_is_refused(tmp_path: Path, config: dict, match: str) -> None:
    rejected(tmp_path, match, config=config)


def test_more_lists_than_items_is_refused(tmp_path: Path) -> None:
    rejected(tmp_path, "n_lists is 5 but the batch has only 4 items", config={"lists": {"mode": "split", "n_lists": 5}})


def test_latin_square_with_a_missing_condition_is_refused(tmp_path: Path) -> None:
    items = [
        {"id": "1a", "text": "x", "g": "1", "c": "a"},
        {"id": "1b", "text": "y", "g": "1", "c": "b"},
        {"id": "2a", "text": "z", "g": "2", "c": "a"},
    ]
    rejected(
        tmp_path,
        r"group '2' lacks conditions \['b'\]",
        items=items,
        config={"lists": {"mode": "latin_square", "group_field": "g", "condition_field": "c"}},
    )


def test_attention_check_expecting_an_unknown_label_is_refused(tmp_path: Path) -> None:
    rejected(
        tmp_path,
        "is not one of the labels",
        config={"attention_checks": [{"fields": {"text": "Say maybe"}, "expected": "maybe"}]},
    )


def test_practice_with_a_right_answer_under_no_wrong_answers_is_refused(tmp_path: Path) -> None:
    """Feedback would grade an answer the instructions said could not be wrong."""
    config = {
        "jspsych_source": "cdn",
        "instructions": ["Read each sentence.\n\nThere are no right or wrong answers."],
        "practice": [{"fields": {"text": "Try."}, "explanation": "Most people say yes."}],
    }
    build(tmp_path / "ok", "binary", ["yes", "no"], ITEMS, config)  # an explanation grades nothing
    config["practice"].append({"fields": {"text": "Try."}, "expected": "yes"})
    rejected(tmp_path / "bad", r"practice\[1\] has an 'expected' answer.*'no right or wrong answers'", config=config)


def test_scale_ends_are_two_texts_or_none() -> None:
    with pytest.raises(ValidationError, match="scale_ends takes two texts"):
        ExperimentConfig.model_validate({"trial": {"scale_ends": ["only one"]}})


def test_a_failed_rebuild_keeps_the_previous_build(tmp_path: Path) -> None:
    root, run = make_run(tmp_path, "keep", "binary", ["yes", "no"], ITEMS)
    ctx = ToolContext(root=root)
    build_jspsych(BuildJspsychInput(run="keep", round=1, config=ExperimentConfig(jspsych_source="cdn")), ctx)
    before = (run.path / "experiments" / "round_01" / "data" / "lists.json").read_text()
    bad = ExperimentConfig(jspsych_source="cdn", lists=ListConfig(mode="split", n_lists=9))
    with pytest.raises(InputError):
        build_jspsych(BuildJspsychInput(run="keep", round=1, config=bad), ctx)
    assert (run.path / "experiments" / "round_01" / "data" / "lists.json").read_text() == before
    assert sorted(p.name for p in (run.path / "experiments").iterdir()) == ["round_01"]


def test_config_file_and_item_sets(tmp_path: Path) -> None:
    root, run = make_run(tmp_path, "cf", "binary", ["yes", "no"], ITEMS)
    ctx = ToolContext(root=root)
    (run.path / "experiment.json").write_text(json.dumps({"jspsych_source": "cdn", "title": "From file"}))
    out = build_jspsych(
        BuildJspsychInput(run="cf", item_ids=["i3", "i1"], name="pilot", config_file="experiment.json"), ctx
    )
    assert out.experiment == "pilot" and out.n_items == 2
    assert json.loads((Path(out.path) / "data" / "config.json").read_text())["title"] == "From file"
    (run.path / "bad.json").write_text(json.dumps({"jspsych_source": "cdn", "min_trial_ms": -5}))
    with pytest.raises(InputError, match="field 'min_trial_ms'"):
        build_jspsych(BuildJspsychInput(run="cf", round=1, config_file="bad.json"), ctx)
    with pytest.raises(InputError, match="unknown item ids"):
        build_jspsych(BuildJspsychInput(run="cf", item_ids=["nope"], name="x", config_file="experiment.json"), ctx)


def test_setup_script_installs_exactly_the_pinned_packages() -> None:
    from alloop.tools.jspsych import npm

    script = (Path(__file__).resolve().parents[2] / "scripts" / "setup.d" / "30-browser.sh").read_text()
    pinned = set(re.findall(r'^\s+"((?:@jspsych/)?[a-z-]+@[0-9.]+)"$', script, flags=re.M))
    assert pinned == {f"{p.name}@{p.version}" for p in npm.PACKAGES}


# -- what the participant reads: config texts are text, never markup -------------------------

TEXT_JS = Path(__file__).resolve().parents[2] / "tools" / "jspsych" / "assets" / "alloop-text.js"
ATTACK = "\"'><img src=x onerror=alert(1)> & 50%"
needs_node = pytest.mark.skipif(not has_node(), reason="needs node (scripts/setup.sh --all installs it)")


def in_node(expression: str, value: Any) -> Any:
    """`expression` over `v` with T = alloop-text.js, run by Node as the browser runs it."""
    script = (
        "const T = require(process.argv[1]); const v = JSON.parse(process.argv[2]);"
        f"process.stdout.write(JSON.stringify({expression}));"
    )
    result = subprocess.run(
        ["node", "-e", script, str(TEXT_JS), json.dumps(value)], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(result.stdout)


def unescaped(value: Any) -> Any:
    if isinstance(value, str):
        return unescape(value)
    if isinstance(value, list):
        return [unescaped(v) for v in value]
    if isinstance(value, dict):
        return {k: unescaped(v) for k, v in value.items()}
    return value


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [s for child in children for s in strings(child)]


@needs_node
def test_every_config_text_reaches_the_timeline_escaped() -> None:
    """The browser escapes its whole config at once (escapeAll), so every text in it, however deep
    and whichever field, reaches jsPsych as HTML that shows it literally; nothing else changes."""
    config = ExperimentConfig.model_validate(
        {
            "title": ATTACK,
            "instructions": [ATTACK],
            "consent": ATTACK,
            "consent_agree": ATTACK,
            "consent_decline": ATTACK,
            "demographics": [{"name": "q", "prompt": ATTACK, "type": "choice", "options": [ATTACK, "other"]}],
            "practice": [{"fields": {"text": ATTACK}, "expected": ATTACK, "explanation": ATTACK}],
            "attention_checks": [{"fields": {"text": ATTACK}, "expected": ATTACK}],
            "trial": {
                "prompt": ATTACK,
                "button_label": ATTACK,
                "slider_labels": [ATTACK],
                "keys": [ATTACK, "j"],
                "scale_ends": [ATTACK, "b"],
            },
            "completion_message": ATTACK,
        }
    )
    spec = TaskSpec(run="x", task_type="binary", labels=[ATTACK, "no"])
    _, _, browser, _ = plan_study(ITEMS, spec, config)
    assert strings(browser).count(ATTACK) == 19
    shown = in_node("T.escapeAll(v)", browser)
    assert unescaped(shown) == browser
    assert not [text for text in strings(shown) if set(text) & set("<>\"'")]


@needs_node
def test_blank_lines_are_the_only_formatting_a_config_text_has() -> None:
    shown = in_node("T.paragraphs(T.escapeHtml(v))", "Read <b>this</b> & that.\n\n  Then judge.  ")
    assert shown == "<p>Read &lt;b&gt;this&lt;/b&gt; &amp; that.</p><p>Then judge.</p>"


def test_the_title_is_escaped_in_index_html(tmp_path: Path) -> None:
    _, out = build(tmp_path, "binary", ["yes", "no"], ITEMS, {"jspsych_source": "cdn", "title": f"</title>{ATTACK}"})
    page = (Path(out.path) / "index.html").read_text()
    assert "<title>&lt;/title&gt;&#34;&#39;&gt;&lt;img src=x onerror=alert(1)&gt; &amp; 50%</title>" in page
