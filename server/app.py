"""The MCP server: every ToolSpec in the registry, exposed as an MCP tool.

The adapter translates and nothing else: MCP arguments → the tool's input model, the tool runs
in a worker thread (training must not block the event loop), its progress becomes MCP progress
notifications, every failure becomes a `ToolError` the model can read (alloop.boundary), and the
result goes back compact (alloop.results). What `tools/list` publishes is kept small
(alloop.schemas); the run's files are resources (alloop.resources).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field
from pydantic_core import PydanticUndefined

from alloop import __version__
from alloop.boundary import AlloopServer, raise_for_client
from alloop.cancellation import stop_when_cancelled
from alloop.elicitation import interview_hook, interview_parameters
from alloop.http_auth import bearer_auth
from alloop.jobs import JobBoard, job_specs
from alloop.resources import register_run_files, register_schemas
from alloop.results import tool_result
from alloop.sampling import judge_hook, judge_return_annotation
from alloop.schemas import OUTPUT_SCHEMA, SCHEMA_URI, compact_input, reference_annotation, schema_reference
from alloop.tools.base import ProgressFn, ToolContext, ToolSpec
from alloop.tools.registry import TOOLS
from alloop.tools.run.rundir import RunRoot

log = logging.getLogger("alloop.server")

INSTRUCTIONS = """alloop runs bounded active-learning rounds over a run directory.
Start with `status` (or `interview_spec` for a new run); each tool's output says what comes next.
`run` is always a run's name under the server's root, never a path.
Human-gold metrics (gold_*) and judge-assisted metrics (judge_*) are always kept apart.
Long lists in results show their first entries; `omitted` says how many were left out. The run's
files are resources: alloop://runs/{run}/spec.json, results.tsv, report.md, notes.md,
selection_round_{round}.jsonl, judge_round_{round}.jsonl. Record decisions with the `note` tool."""

ANNOTATIONS = {
    "read_only": dict(readOnlyHint=True, destructiveHint=False, openWorldHint=False),
    "writes": dict(readOnlyHint=False, destructiveHint=False, openWorldHint=False),
    "remote": dict(readOnlyHint=False, destructiveHint=False, openWorldHint=True),
}


def progress_bridge(ctx: Context, min_interval: float = 0.5) -> ProgressFn:
    """A ProgressFn for the worker thread that sends MCP progress notifications (throttled)."""
    last = [0.0]

    def report(done: float, total: float | None, message: str) -> None:
        now = time.monotonic()
        if now - last[0] < min_interval and (total is None or done < total):
            return
        last[0] = now
        try:
            anyio.from_thread.run(ctx.report_progress, done, total, message)
        except Exception:  # progress is best effort; the work goes on
            log.debug("progress notification failed", exc_info=True)

    return report


def _parameters(spec: ToolSpec) -> list[inspect.Parameter]:
    """The handler's parameters: the input model's fields, a by-reference config as a plain object."""
    params = []
    for name, field in spec.input_model.model_fields.items():
        required = field.default is PydanticUndefined and field.default_factory is None
        annotation, description = field.annotation, field.description
        if (reference := schema_reference(field.annotation)) is not None:
            annotation = reference_annotation(required)
            description = f"{description or ''} Schema: {SCHEMA_URI.format(name=reference)}".strip()
            default = inspect.Parameter.empty if required else None  # None: the input model's own default
        elif field.default is not PydanticUndefined:
            default = field.default
        elif field.default_factory is not None:
            default = field.default_factory()
        else:
            default = inspect.Parameter.empty
        annotation = Annotated[annotation, Field(description=description)]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
    return params


Hook = Callable[[dict[str, Any], dict[str, Any], Context, ToolContext], Awaitable[Any]]
"""await hook(arguments, resolved, ctx, tool_ctx): lets a tool's MCP-only inputs (an elicited form,
a sampler) reach the plain tool function by editing its arguments or context; a non-None return
(an InputRequiredResult) is answered instead of running the tool this round."""


@dataclass(frozen=True)
class McpInputs:
    """What a tool takes over MCP beyond its input model: handler parameters the SDK resolves (an
    elicited form), the hook that hands them to the tool, and the wider return type it may answer with."""

    parameters: Callable[[RunRoot], list[inspect.Parameter]] | None = None
    hook: Hook | None = None
    returns: Callable[[type[BaseModel]], Any] | None = None


MCP_INPUTS: dict[str, McpInputs] = {
    "interview_spec": McpInputs(parameters=interview_parameters, hook=interview_hook),
    "llm_judge": McpInputs(hook=judge_hook, returns=judge_return_annotation),
}
"""The tools with MCP-only inputs; every other tool is its input model alone."""


def make_handler(spec: ToolSpec, root: RunRoot, inputs: McpInputs) -> Callable:
    """An async MCP tool function whose signature is the tool's input model (plus `ctx`)."""
    extra = inputs.parameters(root) if inputs.parameters else []
    extra_names = [p.name for p in extra]
    hook = inputs.hook
    by_reference = {name for name, field in spec.input_model.model_fields.items() if schema_reference(field.annotation)}

    async def handler(**kwargs: Any) -> Any:
        ctx: Context = kwargs.pop("ctx")
        resolved = {name: kwargs.pop(name) for name in extra_names}
        tool_ctx = ToolContext(root=root, progress=stop_when_cancelled(progress_bridge(ctx)))
        for name in by_reference & {k for k, v in kwargs.items() if v is None}:
            del kwargs[name]  # not given: the input model's default applies
        try:
            if hook is not None and (early := await hook(kwargs, resolved, ctx, tool_ctx)) is not None:
                return early
            args = spec.parse(kwargs)
            result = await anyio.to_thread.run_sync(spec.fn, args, tool_ctx)
        except Exception as exc:
            raise_for_client(spec, exc)
        return tool_result(result)

    params = _parameters(spec) + extra + [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    returns = inputs.returns(spec.output_model) if inputs.returns else spec.output_model
    handler.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    handler.__annotations__ = {p.name: p.annotation for p in params} | {"return": returns}
    handler.__name__ = spec.name
    handler.__doc__ = spec.description
    return handler


def register_prompts(server: MCPServer) -> None:
    """MCP prompts: guided reviews an agent can pull in (templates live in alloop.prompts)."""
    from alloop.tools.judge import review_disagreements_prompt

    @server.prompt(
        name="review_judge_disagreements",
        description="Walk through a round's judge–human disagreements and decide what to do about each.",
    )
    def review_judge_disagreements(run: str, round: int | None = None) -> str:
        return review_disagreements_prompt(run, round)


def make_tool(spec: ToolSpec, root: RunRoot) -> Tool:
    """The MCP tool of a ToolSpec, with the compact schemas `tools/list` publishes."""
    tool = Tool.from_function(
        make_handler(spec, root, MCP_INPUTS.get(spec.name, McpInputs())),
        name=spec.name,
        description=spec.description,
        annotations=ToolAnnotations(idempotentHint=spec.idempotent, **ANNOTATIONS[spec.behaviour]),
        structured_output=True,
    )
    tool.parameters = compact_input(tool.parameters)
    tool.fn_metadata.output_schema = dict(OUTPUT_SCHEMA)  # read live by the SDK (FuncMetadata's contract)
    return tool


def create_server(root: Path | str | None = None, *, http_token: str | None = None) -> MCPServer:
    """Build the alloop MCP server over a run root (default $ALLOOP_ROOT or ./runs).

    With `http_token`, its HTTP app answers only requests bearing that token (alloop.http_auth).
    """
    run_root = RunRoot(root)
    specs = TOOLS + job_specs(JobBoard(), TOOLS)
    server = AlloopServer(
        specs,
        name="alloop",
        version=__version__,
        instructions=INSTRUCTIONS,
        tools=[make_tool(spec, run_root) for spec in specs],
        **(bearer_auth(http_token) if http_token else {}),
    )
    register_prompts(server)
    register_run_files(server, run_root)
    register_schemas(server, specs)
    log.info("alloop MCP server: %d tools over %s", len(specs), run_root.path)
    return server
