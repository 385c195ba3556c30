"""MCP resources: a run's files to read (never write), and the schemas `tools/list` leaves out.

A long result is cut short in the tool's answer; the whole of it is in the run's files, which an
agent reads here instead of through a tool call. Each read goes through `RunRoot.run`, so a run
name that is not a plain name is refused, and through `RunDir.inside`, so a symlink out of the
run folder is too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from pydantic import BaseModel

from alloop.schemas import BY_REFERENCE, RESULT_SCHEMA_URI, SCHEMA_URI
from alloop.tools.base import ToolSpec
from alloop.tools.errors import AlloopError, RunNotFoundError
from alloop.tools.run.rundir import RunDir, RunRoot

RUN_URI = "alloop://runs/{run}/"
SCHEMA_MIME = "application/schema+json"


def _read(root: RunRoot, run: str, locate: Callable[[RunDir], Path], made_by: str) -> str:
    try:
        target = root.run(run)
        path = target.inside(locate(target).name)
    except RunNotFoundError as exc:
        raise ResourceNotFoundError(str(exc)) from exc
    except AlloopError as exc:
        raise ResourceError(str(exc)) from exc
    if not path.is_file():
        raise ResourceNotFoundError(f"run {run!r} has no {path.name} yet; {made_by} writes it")
    return path.read_text(encoding="utf-8")


def _round(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise ResourceError(f"round {value!r} is not a number; use 0-99, e.g. selection_round_3.jsonl")
    return int(value)


def register_run_files(server: MCPServer, root: RunRoot) -> None:
    """Resource templates for the files an agent reads about a run: spec, results, report, notes, rounds."""
    base = RUN_URI

    @server.resource(base + "spec.json", name="spec", mime_type="application/json")
    def spec(run: str) -> str:
        """The run's task spec (spec.json): task type, labels, budget, stopping rules, judge permissions."""
        return _read(root, run, lambda r: r.spec_path, "interview_spec")

    @server.resource(base + "results.tsv", name="results", mime_type="text/tab-separated-values")
    def results(run: str) -> str:
        """One row per training round: gold_* metrics on held-out items, judge_* figures, stop decision."""
        return _read(root, run, lambda r: r.results_path, "train_glmm")

    @server.resource(base + "report.md", name="report", mime_type="text/markdown")
    def report(run: str) -> str:
        """The run's report (report.md)."""
        return _read(root, run, lambda r: r.report_path, "write_report")

    @server.resource(base + "report.html", name="report-page", mime_type="text/html")
    def report_page(run: str) -> str:
        """The run's report as one self-contained page (report.html), figures embedded."""
        return _read(root, run, lambda r: r.inside("report.html"), "write_report")

    @server.resource(base + "notes.md", name="notes", mime_type="text/markdown")
    def notes(run: str) -> str:
        """The run's log of decisions (notes.md); add to it with the `note` tool."""
        return _read(root, run, lambda r: r.notes_path, "interview_spec")

    @server.resource(base + "selection_round_{round}.jsonl", name="selection", mime_type="application/jsonl")
    def selection(run: str, round: str) -> str:
        """A round's selected items, one JSON object a line: id, rank, reason, scores, prediction."""
        return _read(root, run, lambda r: r.round_file("selection", _round(round)), "select_batch (or seed_set)")

    @server.resource(base + "judge_round_{round}.jsonl", name="judgments", mime_type="application/jsonl")
    def judgments(run: str, round: str) -> str:
        """A round's LLM-judge log, one judgment a line (all of them; llm_judge's answer lists the first)."""
        return _read(root, run, lambda r: r.round_file("judge", _round(round)), "llm_judge")


def register_schemas(server: MCPServer, specs: list[ToolSpec]) -> None:
    """The JSON schema of each config a tool takes by reference, and of each tool's result."""
    for name, model in BY_REFERENCE.items():
        description = (model.__doc__ or name).strip().split("\n")[0]
        uri = SCHEMA_URI.format(name=name)
        server.resource(uri, name=name, description=description, mime_type=SCHEMA_MIME)(_constant(_schema(model)))
    results = {spec.name: _schema(spec.output_model) for spec in specs}

    @server.resource(RESULT_SCHEMA_URI, name="result-schema", mime_type=SCHEMA_MIME)
    def result_schema(tool: str) -> str:
        """The JSON schema of a tool's structured result (tools/list shows it as an object)."""
        if tool not in results:
            raise ResourceNotFoundError(f"no tool {tool!r}; the tools are {', '.join(results)}")
        return results[tool]


def _schema(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema(), ensure_ascii=False, indent=1)


def _constant(text: str) -> Callable[[], str]:
    def read() -> str:
        return text

    return read
