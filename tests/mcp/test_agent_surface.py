"""What an agent meets over MCP: a lean tools/list, arguments checked by name, readable errors,
compact results, the run's files as resources, and a tool to write notes."""

from __future__ import annotations

import json
import logging
import shutil

import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from alloop import app
from alloop.results import LIST_LIMIT, OMITTED
from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.registry import TOOLS

MODES = ["auto", "legacy"]
BUDGET = 24_000
"""Characters of JSON for all of tools/list: every client reads it on every turn."""


def text(result: types.CallToolResult) -> str:
    return result.content[0].text


def refused(result: types.CallToolResult) -> str:
    assert result.is_error, text(result)
    return text(result)


@pytest.fixture
def server(root, looped_run):
    root.path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(looped_run, root.path / "looped")
    return app.create_server(root.path)


# -- tools/list ----------------------------------------------------------------------------


async def test_tools_list_fits_the_budget(server):
    async with Client(server) as client:
        listed = await client.list_tools()
    size = len(listed.model_dump_json(by_alias=True, exclude_none=True))
    assert size <= BUDGET, f"tools/list is {size} characters of JSON; the budget is {BUDGET}"
    assert {t.name for t in listed.tools} == {s.name for s in TOOLS} | {"start_job", "job"}  # jobs: MCP only


async def test_a_rarely_used_config_is_published_by_reference(server):
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        schema = json.loads((await client.read_resource("alloop://schema/jspsych-config")).contents[0].text)
    config = tools["build_jspsych"].input_schema["properties"]["config"]
    assert config["type"] == "object" and "alloop://schema/jspsych-config" in config["description"]
    assert {"trial", "lists", "distribution"} <= set(schema["properties"])


async def test_every_result_schema_is_a_resource(server):
    async with Client(server) as client:
        listed = (await client.list_tools()).tools
        schema = json.loads((await client.read_resource("alloop://schema/result/select_batch")).contents[0].text)
    assert all(t.output_schema == {"type": "object"} for t in listed)
    assert {"n_selected", "items", "file"} <= set(schema["properties"])


# -- arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_misspelled_argument_is_refused_with_did_you_mean(server, root, mode):
    async with Client(server, mode=mode) as client:
        message = refused(await client.call_tool("select_batch", {"run": "looped", "batchsize": 5}))
    assert "unknown argument 'batchsize' for select_batch; did you mean 'batch_size'?" in message
    assert "valid: run, strategy, batch_size, seed, redo" in message
    assert not (root.path / "looped" / "selection_round_03.jsonl").exists()  # nothing ran


async def test_a_misspelled_key_inside_a_config_is_refused_by_the_tools_own_model(server):
    config = {"titel": "Judgments", "trial": {"widgt": "buttons"}}
    async with Client(server) as client:
        message = refused(await client.call_tool("build_jspsych", {"run": "looped", "round": 1, "config": config}))
        as_json = refused(
            await client.call_tool("build_jspsych", {"run": "looped", "round": 1, "config": json.dumps(config)})
        )
    assert "unknown field 'config.titel'; did you mean 'title'?" in message
    assert "unknown field 'config.trial.widgt'; did you mean 'widget'?" in message
    assert "did you mean 'title'?" in as_json  # a config sent as JSON text is read the same way


@pytest.mark.parametrize("mode", MODES)
async def test_the_sdks_validation_errors_read_like_alloops(server, mode):
    async with Client(server, mode=mode) as client:
        wrong_type = refused(await client.call_tool("select_batch", {"run": "looped", "batch_size": "many"}))
        missing = refused(await client.call_tool("import_labels", {"run": "looped"}))
        out_of_range = refused(await client.call_tool("select_batch", {"run": "looped", "batch_size": 0}))
    for message in (wrong_type, missing, out_of_range):
        assert message.startswith("Error executing tool ") and "invalid arguments: field '" in message
        assert "pydantic" not in message and "validation error for" not in message
    assert "field 'batch_size': Input should be a valid integer" in wrong_type
    assert "field 'file': Field required" in missing


# -- failures ------------------------------------------------------------------------------


class Nothing(BaseModel):
    pass


def crash(args: RunArgs, ctx: ToolContext) -> Nothing:
    """A tool with a bug: a lookup that fails on this run."""
    return {}["label"]


@pytest.mark.parametrize("mode", MODES)
async def test_an_unexpected_exception_reaches_the_client_as_a_readable_error(root, monkeypatch, caplog, mode):
    broken = ToolSpec(name="broken_tool", fn=crash, input_model=RunArgs, output_model=Nothing)
    monkeypatch.setattr(app, "TOOLS", [*TOOLS, broken])
    with caplog.at_level(logging.ERROR, logger="alloop.server"):
        async with Client(app.create_server(root.path), mode=mode) as client:
            message = refused(await client.call_tool("broken_tool", {"run": "any"}))
    assert "broken_tool failed unexpectedly (KeyError: 'label')" in message
    assert "`status`" in message and "traceback is in the server log" in message
    assert "Traceback" not in message
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)  # the traceback went to the log


async def test_a_nul_byte_in_a_path_is_a_readable_error(server):
    async with Client(server) as client:
        message = refused(await client.call_tool("import_labels", {"run": "looped", "file": "labels\x00.jsonl"}))
    assert "NUL byte" in message and "import_labels" in message


# -- results -------------------------------------------------------------------------------


async def test_results_are_compact_json_beside_the_structured_content(server):
    async with Client(server) as client:
        result = await client.call_tool("status", {"run": "looped"})
    assert "\n" not in text(result) and json.loads(text(result)) == result.structured_content


class Rows(BaseModel):
    rows: list[dict]
    ids: list[str]


def many_rows(args: RunArgs, ctx: ToolContext) -> Rows:
    """Fifty records and fifty ids."""
    return Rows(rows=[{"i": i} for i in range(50)], ids=[str(i) for i in range(50)])


def test_no_result_has_a_field_of_the_name_that_counts_what_was_left_out():
    assert [spec.name for spec in TOOLS if OMITTED in spec.output_model.model_fields] == []


async def test_a_long_list_of_records_is_capped_and_says_how_many_were_left_out(root, monkeypatch):
    many = ToolSpec(name="many", fn=many_rows, input_model=RunArgs, output_model=Rows)
    monkeypatch.setattr(app, "TOOLS", [*TOOLS, many])
    async with Client(app.create_server(root.path)) as client:
        out = (await client.call_tool("many", {"run": "any"})).structured_content
    assert len(out["rows"]) == LIST_LIMIT and out["omitted"] == {"rows": 50 - LIST_LIMIT}
    assert len(out["ids"]) == 50  # plain values are short: only lists of records are cut


def test_answers_to_fix_in_argilla_reach_the_agent_whole():
    """pull_from_argilla's invalid answers are in no run file: cutting them would lose them."""
    from alloop.results import cap_lists

    invalid = [{"record": i, "problem": "no label"} for i in range(50)]
    assert cap_lists({"invalid": invalid}) == {"invalid": invalid}


# -- resources -----------------------------------------------------------------------------


async def read(client: Client, uri: str) -> str:
    return (await client.read_resource(uri)).contents[0].text


async def test_the_run_files_are_resources(server, root):
    run = root.path / "looped"
    async with Client(server) as client:
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        spec = json.loads(await read(client, "alloop://runs/looped/spec.json"))
        results = await read(client, "alloop://runs/looped/results.tsv")
        selection = await read(client, "alloop://runs/looped/selection_round_1.jsonl")
        notes = await read(client, "alloop://runs/looped/notes.md")
    assert "alloop://runs/{run}/selection_round_{round}.jsonl" in templates
    assert "alloop://runs/{run}/report.md" in templates
    assert spec["run"] == "looped" and results == (run / "results.tsv").read_text()
    assert selection == (run / "selection_round_01.jsonl").read_text() and notes.startswith("# looped")


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("alloop://runs/looped/report.md", "write_report writes it"),
        ("alloop://runs/nope/spec.json", "no run 'nope'"),
        ("alloop://runs/..%2Fetc/spec.json", "Unknown resource"),
        ("alloop://runs/.hidden/spec.json", "not allowed"),
        ("alloop://runs/looped/selection_round_x.jsonl", "not a number"),
        ("alloop://runs/looped/labels.jsonl", "Unknown resource"),
    ],
)
async def test_a_resource_outside_the_run_files_is_refused(server, uri, says):
    async with Client(server) as client:
        with pytest.raises(MCPError, match=says):
            await client.read_resource(uri)


async def test_a_symlink_out_of_the_run_folder_is_not_followed(server, root, tmp_path):
    (tmp_path / "secret.md").write_text("secret")
    (root.path / "looped" / "report.md").symlink_to(tmp_path / "secret.md")
    async with Client(server) as client:
        with pytest.raises(MCPError, match="symbolic links where its own files belong"):
            await client.read_resource("alloop://runs/looped/report.md")


# -- notes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_the_note_tool_adds_a_line_the_notes_resource_shows(server, mode):
    async with Client(server, mode=mode) as client:
        out = await client.call_tool("note", {"run": "looped", "text": "tech is never predicted;\nmore tech next"})
        notes = await read(client, "alloop://runs/looped/notes.md")
    assert out.structured_content["note"] == "tech is never predicted; more tech next"
    assert notes.splitlines()[-1].endswith(" tech is never predicted; more tech next")
