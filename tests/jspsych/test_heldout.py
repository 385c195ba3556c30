"""Held-out overlap items in a jsPsych study: every list carries them, their gold stays behind, and
the answers come back through JATOS under the held-out ids, until enough people have answered.

They are the items export_batch and simulate_annotator send (alloop.tools.people.overlap), so a
study on JATOS gives check_convergence its human ceiling with no hand-made files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.build_jspsych import BuildJspsychInput, build_jspsych
from alloop.tools.errors import StateError
from alloop.tools.export_jzip import ExportJzipInput, export_jzip
from alloop.tools.jatos_import import JatosImportInput, jatos_import
from alloop.tools.jspsych.config import ExperimentConfig
from alloop.tools.people.overlap import heldout_overlap, still_open
from alloop.tools.pull_jatos import PullJatosInput, pull_jatos
from alloop.tools.run.items import ItemTable
from alloop.tools.run.rundir import RunDir, RunRoot
from alloop.tools.run.schema import SelectionRow, TaskSpec

from .helpers import jatos_context
from .jatos_double import JatosDouble
from .participant import Participant
from .test_jatos_client import study_run, trial

BATCH = [{"id": f"b{i}", "text": f"Batch sentence {i}.", "condition": "ab"[i % 2]} for i in range(4)]
HELDOUT = [{"id": f"h{i}", "text": f"Held-out sentence {i}.", "label": "yes" if i % 2 else "no"} for i in range(5)]
SPLIT = {"jspsych_source": "cdn", "lists": {"mode": "split", "n_lists": 2, "condition_field": "condition"}}


def heldout_run(root: Path, name: str = "overlap") -> tuple[RunRoot, RunDir]:
    """A binary run with a held-out set of five, whose selection round 1 holds the batch."""
    run_root = RunRoot(root)
    spec = TaskSpec(run=name, task_type="binary", labels=["yes", "no"])
    run = run_root.create(spec, ItemTable.from_rows(BATCH), ItemTable.from_rows(HELDOUT, "heldout"))
    rows = [
        SelectionRow(round=1, rank=i + 1, item_id=it["id"], strategy="test", reason="test")
        for i, it in enumerate(BATCH)
    ]
    run.write_selection(1, rows)
    return run_root, run


def build(ctx: ToolContext, config: dict[str, Any], include_heldout: int, name: str = "overlap"):
    args = BuildJspsychInput(
        run=name, round=1, config=ExperimentConfig.model_validate(config), include_heldout=include_heldout
    )
    return build_jspsych(args, ctx)


def test_heldout_items_join_every_list_without_their_gold(tmp_path: Path) -> None:
    root, run = heldout_run(tmp_path)
    out = build(ToolContext(root=root), SPLIT, include_heldout=2)
    overlap = heldout_overlap(run, 2)
    data = Path(out.path) / "data"
    lists = json.loads((data / "lists.json").read_text())
    assert (out.n_items, out.n_heldout, out.list_sizes) == (6, 2, [4, 4])
    assert all(ids[-2:] == overlap for ids in lists)  # everyone judges them
    assert sorted(i for ids in lists for i in ids[:2]) == ["b0", "b1", "b2", "b3"]  # the batch is still split
    items = json.loads((data / "items.json").read_text())
    held = {item_id: items[item_id] for item_id in overlap}
    assert held[overlap[0]]["texts"] == [next(h["text"] for h in HELDOUT if h["id"] == overlap[0])]
    assert all("label" not in json.dumps(payload) for payload in held.values())  # the gold stays behind
    manifest = json.loads((Path(out.path) / "alloop-build.json").read_text())
    assert manifest["heldout_ids"] == overlap and manifest["round"] == 1


def test_a_run_without_a_heldout_set_is_told_there_is_no_ceiling(tmp_path: Path) -> None:
    run_root = RunRoot(tmp_path)
    run = run_root.create(
        TaskSpec(run="plain", task_type="binary", labels=["yes", "no"]), ItemTable.from_rows(BATCH), None
    )
    run.write_selection(1, [SelectionRow(round=1, rank=1, item_id="b0", strategy="test", reason="test")])
    with pytest.raises(StateError, match=r"no held-out set.*leave include_heldout at 0"):
        build(ToolContext(root=run_root), SPLIT, include_heldout=2, name="plain")
    assert not run.experiment_dir("round_01").exists()


def test_answers_to_heldout_items_come_back_under_their_ids_until_two_people_gave_them(tmp_path: Path) -> None:
    root, run = heldout_run(tmp_path)
    build(ToolContext(root=root), SPLIT, include_heldout=2)
    export_jzip(ExportJzipInput(run="overlap", round=1), ToolContext(root=root))
    overlap = heldout_overlap(run, 2)
    with JatosDouble(version="3.10") as double:
        ctx = jatos_context(root, double.url)
        link = jatos_import(JatosImportInput(run="overlap", round=1, link_type="gs"), ctx).links[0]
        for answer in ("yes", "no"):  # two participants
            study_run(double, link, [trial(n, item_id, answer) for n, item_id in enumerate(["b0", "b2", *overlap])])
        pulled = pull_jatos(PullJatosInput(run="overlap", round=1), ctx)
    assert (pulled.n_new, pulled.n_participants) == (8, 2)
    on_heldout = [e for e in run.labels() if e.item_id in overlap]
    assert len(on_heldout) == 4 and {e.round for e in on_heldout} == {1}
    people = {e.annotator for e in on_heldout}
    assert len(people) == 2 and all(a.startswith("jatos:") for a in people)
    assert {(e.item_id, e.label) for e in on_heldout} == {(i, a) for i in overlap for a in ("yes", "no")}
    assert still_open(run, run.spec(), overlap) == []  # two people each: the ceiling can be measured
    again = build(ToolContext(root=root), SPLIT, include_heldout=2)
    assert again.n_heldout == 0 and again.n_items == 4  # nobody is asked for them again


@pytest.mark.browser
def test_every_participant_meets_the_heldout_items_in_the_real_timeline(tmp_path: Path, new_page: Any) -> None:
    root, run = heldout_run(tmp_path)
    overlap = heldout_overlap(run, 2)
    config = {"jspsych_source": "local", **{k: v for k, v in SPLIT.items() if k != "jspsych_source"}}
    with JatosDouble(version="3.10") as double:
        ctx = jatos_context(root, double.url)
        build(ctx, {**config, "instructions": []}, include_heldout=2)
        export_jzip(ExportJzipInput(run="overlap", round=1), ctx)
        link = jatos_import(JatosImportInput(run="overlap", round=1, link_type="gs"), ctx).links[0]
        people = [Participant(widget="buttons", options=["yes", "no"], answer=lambda item_id: "yes") for _ in "ab"]
        for person in people:
            page = new_page()
            assert person.take(page, link) == "complete"
            page.wait_for_selector("#jatos-end")
        pull_jatos(PullJatosInput(run="overlap", round=1), ctx)
    assert [sorted(set(p.seen) & set(overlap)) for p in people] == [sorted(overlap)] * 2
    assert sorted(i for p in people for i in p.seen if i.startswith("b")) == ["b0", "b1", "b2", "b3"]
    assert still_open(run, run.spec(), overlap) == []
