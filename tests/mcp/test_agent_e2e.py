"""A whole study over MCP, the way an agent runs one: from an empty root to report.md by `next_step` alone.

The SDK's in-memory client plays the agent. It knows what a person would tell it (where the data
files are, the task, the labels, and that simulated people answer) and nothing of alloop's order
of work: it calls the tool `status` names, or the one tool the last result's `next_step` names,
until status says the run is done, then writes the report. The data are small slices of the BBC
News corpus (titles, so the pool embeds in seconds); the ordinal and multi_select judgments are
derived from each article's topic, so their gold is real too.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from alloop.app import create_server
from alloop.tools.registry import TOOLS
from alloop.tools.report.datasets import BBC_LABELS, bbc_news

pytestmark = pytest.mark.slow

NAMED_TOOL = re.compile(r"\b(" + "|".join(sorted((s.name for s in TOOLS), key=len, reverse=True)) + r")\b")
MAX_CALLS = 40
"""More tool calls than any of these studies needs: a loop that never ends fails instead of hanging."""

HARD_NEWS = {"entertainment": "1", "sports": "1", "tech": "2", "business": "3", "politics": "3"}
"""An ordinal judgment with real gold: how hard the news is, 1 (light) to 3 (hard), from the topic."""

ONE_ROUND = ["simulate_annotator", "train_glmm", "score_pool", "check_convergence"]
"""What following next_step does in a round: people answer, a model trains, scores the pool, and is checked."""


@dataclass
class Study:
    """What the person told the agent: the run's name, the interview answers, how the people answer."""

    run: str
    answers: dict[str, Any]
    gold: Callable[[dict[str, str]], str | list[str]]
    people: dict[str, Any] = field(default_factory=dict)
    """simulate_annotator's arguments beside run and gold: participants, noise, include_heldout."""


STUDIES = {
    "categorical": Study(
        run="topics",
        answers={"task_type": "categorical", "labels": BBC_LABELS, "batch_size": 10, "max_rounds": 3},
        gold=lambda row: row["label"],
    ),
    "ordinal": Study(
        run="hardness",
        answers={
            "task_type": "ordinal_scale",
            "labels": ["1", "2", "3"],
            "prediction_unit": "response",
            "head": "glmm",
            "effects": "random_intercepts",
            "metric": "mae",
            "batch_size": 8,
            "max_rounds": 3,
        },
        gold=lambda row: HARD_NEWS[row["label"]],
        people={"participants": 3, "noise": 0.5, "include_heldout": 20},
    ),
    "multi_select": Study(
        run="tags",
        answers={"task_type": "multi_select", "labels": [*BBC_LABELS, "numbers"], "batch_size": 10, "max_rounds": 2},
        gold=lambda row: [row["label"], *(["numbers"] if re.search(r"\d", row["title"]) else [])],
    ),
}
"""The three studies; multi_select answers name the topic, and 'numbers' when the title has a figure."""


def named_tools(next_step: str) -> list[str]:
    """The tools a next_step names, in the order it names them."""
    return NAMED_TOOL.findall(next_step)


def payload(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def read(client: Client, run: str, name: str) -> str:
    return (await client.read_resource(f"alloop://runs/{run}/{name}")).contents[0].text


def results_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


@pytest.fixture(scope="module")
def articles() -> list[dict[str, str]]:
    """300 BBC articles, 60 per topic."""
    by_topic: dict[str, list[dict[str, str]]] = {}
    for row in bbc_news():
        by_topic.setdefault(row["label"], []).append(row)
    return [row for topic in BBC_LABELS for row in by_topic[topic][:60]]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def study_root(tmp_path, articles, request) -> tuple[Path, Study]:
    """An empty run root holding only the person's files (over MCP, inputs must lie under the root):
    a pool of 220 titles, 80 held out with gold, and the pool's gold for the simulated people."""
    study: Study = STUDIES[request.param]
    heldout = [r for i, r in enumerate(articles) if i % 15 < 4]
    pool = [r for i, r in enumerate(articles) if i % 15 >= 4]
    data = tmp_path / "runs" / "data"
    write_jsonl(data / "pool.jsonl", [{"id": r["id"], "text": r["title"]} for r in pool])
    write_jsonl(data / "heldout.jsonl", [{"id": r["id"], "text": r["title"], "label": study.gold(r)} for r in heldout])
    write_jsonl(data / "gold.jsonl", [{"id": r["id"], "label": study.gold(r)} for r in pool])
    return tmp_path / "runs", study


async def run_study(client: Client, study: Study) -> list[str]:
    """Drive the study as an agent would; returns the tools it called after the interview, in order."""
    run = study.run
    missing = await client.call_tool("status", {"run": run})
    assert missing.is_error and "create it with interview_spec" in missing.content[0].text
    setup = {"pool": "data/pool.jsonl", "heldout": "data/heldout.jsonl", "destination": "simulated"}
    created = payload(await client.call_tool("interview_spec", {"run": run, **setup, **study.answers}))
    assert created["created"], created
    arguments = {"simulate_annotator": {"gold": "data/gold.jsonl", **study.people}}
    called: list[str] = []
    status = payload(await client.call_tool("status", {"run": run}))
    while not status["done"]:
        tool: str | None = named_tools(status["next_step"])[0]
        while tool is not None:
            assert len(called) < MAX_CALLS, f"no end in sight after {called}"
            out = payload(await client.call_tool(tool, {"run": run, **arguments.get(tool, {})}))
            called.append(tool)
            after = set(named_tools(out.get("next_step") or ""))
            tool = after.pop() if len(after) == 1 else None  # one tool named: take it; else ask status
        status = payload(await client.call_tool("status", {"run": run}))
    assert "write_report" in named_tools(status["next_step"]), status["next_step"]
    payload(await client.call_tool("write_report", {"run": run}))
    return [*called, "write_report"]


@pytest.mark.parametrize("study_root", ["categorical"], indirect=True)
async def test_a_categorical_study_runs_from_an_empty_root_to_its_report(study_root):
    root, study = study_root
    started = time.perf_counter()
    async with Client(create_server(root)) as client:
        called = await run_study(client, study)
        rows = results_rows(await read(client, study.run, "results.tsv"))
        report = await read(client, study.run, "report.md")
    print(f"categorical study: {len(called)} calls in {time.perf_counter() - started:.1f} s")
    loop = [*ONE_ROUND, "select_batch"]
    assert called == ["seed_set", *loop, *loop, *ONE_ROUND, "write_report"]
    assert [int(r["n_labeled"]) for r in rows] == [10, 20, 30]
    assert rows[-1]["stop_decision"] == "stop" and "max_rounds" in rows[-1]["stop_reasons"]
    assert float(rows[-1]["gold_macro_f1"]) > 0.4  # five topics from 30 titles: well above chance (0.2)
    assert report.startswith("# Run report: topics") and "| 3 | r03-" in report


@pytest.mark.parametrize("study_root", ["ordinal"], indirect=True)
async def test_an_ordinal_study_of_responses_with_a_glmm_and_a_human_ceiling_runs_to_its_report(study_root):
    root, study = study_root
    started = time.perf_counter()
    async with Client(create_server(root)) as client:
        called = await run_study(client, study)
        rows = results_rows(await read(client, study.run, "results.tsv"))
        report = await read(client, study.run, "report.md")
        final = payload(await client.call_tool("status", {"run": study.run}))
    print(f"ordinal study: {len(called)} calls in {time.perf_counter() - started:.1f} s")
    loop = [*ONE_ROUND, "select_batch"]
    assert called == ["seed_set", *loop, *loop, *ONE_ROUND, "write_report"]
    assert final["n_labeled_items"] == 24  # pool items; the 20 answered held-out items only evaluate
    assert [int(r["n_labeled"]) for r in rows] == [24, 48, 72]  # a row per response: 8 items × 3 people a round
    ceilings = [float(r["agreement_human_ceiling"]) for r in rows]  # 20 held-out items, + 8 pool items a round
    assert len(set(ceilings)) == 3 and all(0 < c < 1 for c in ceilings)  # noisy people agree, but not perfectly
    assert all(r["agreement_model_human"] and r["gold_mae"] for r in rows)
    card = json.loads((root / study.run / "models" / "round_03" / "card.json").read_text())
    assert card["head"]["head"] == "glmm" and card["head"]["family"] == "ordinal"
    assert card["head"]["fits"][0]["sd"]["participant:(Intercept)"] > 0  # the people differ, as simulated
    assert "3 simulated participant(s) gave 84 answers (60 on held-out items)" in report


@pytest.mark.parametrize("study_root", ["multi_select"], indirect=True)
async def test_a_multi_select_study_runs_from_an_empty_root_to_its_report(study_root):
    root, study = study_root
    async with Client(create_server(root)) as client:
        called = await run_study(client, study)
    assert called == ["seed_set", *ONE_ROUND, "select_batch", *ONE_ROUND, "write_report"]


def test_status_never_sends_an_agent_to_a_training_that_cannot_run():
    """Every task type trains now (free_text and cloze with a LoRA LM); status asks train_glmm's own
    refusal, so a type without a model would stop the loop with the reason, not a failed training."""
    from typing import get_args

    from alloop.tools import status
    from alloop.tools.run.schema import TaskSpec, TaskType
    from alloop.tools.train_glmm import cannot_train

    spec = TaskSpec(run="paraphrase", task_type="free_text")
    assert [t for t in get_args(TaskType) if cannot_train(spec.model_copy(update={"task_type": t}))] == []
    ranking = spec.model_copy(update={"task_type": "ranking"})  # a type the schema does not know
    assert "task_type 'ranking' has no label schema" in cannot_train(ranking)
    assert "write the report (write_report)" in cannot_train(ranking)
    assert status.cannot_train is cannot_train
