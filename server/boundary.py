"""The MCP boundary: every call's arguments checked by name, every failure a readable error.

The SDK validates a call's arguments against the handler's signature first, ignoring names it
does not know and answering a bad value with pydantic's raw text; an exception it did not expect
reaches the client as a bare "Error executing tool X". Here an unknown name is refused with the
valid ones, the SDK's validation errors read like alloop's (`field 'x': message`), and every
failure names the tool, what failed and what to do, while the traceback goes to the log.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import ValidationError

from alloop.tools.base import ToolSpec
from alloop.tools.errors import AlloopError, describe_validation, unexpected_failure, unknown_argument
from alloop.tools.secrets import scrub

log = logging.getLogger("alloop.server")


def prefixed(tool: str, message: str) -> str:
    """The form of every tool error, the SDK's own included."""
    return f"Error executing tool {tool}: {message}"


def failure_text(spec: ToolSpec, exc: Exception) -> str:
    """What a tool's exception says to the client: its own message, or a readable bug report (traceback logged)."""
    if isinstance(exc, AlloopError):
        return scrub(str(exc))
    if isinstance(exc, ValidationError) and exc.title == spec.input_model.__name__:
        return f"invalid arguments: {describe_validation(exc, model=spec.input_model, name=spec.name)}"
    log.error("tool %s failed unexpectedly", spec.name, exc_info=exc)
    return unexpected_failure(spec.name, exc)


def raise_for_client(spec: ToolSpec, exc: Exception) -> NoReturn:
    """Raise what a tool call's exception becomes for the client (see `failure_text`)."""
    if isinstance(exc, MCPError | ToolError):
        raise exc  # a protocol error, or already worded for the client
    raise ToolError(failure_text(spec, exc)) from exc


class AlloopServer(MCPServer):
    """MCPServer with alloop's boundary around each tool call (see the module docstring)."""

    def __init__(self, specs: list[ToolSpec], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._specs = {spec.name: spec for spec in specs}

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> CallToolResult | InputRequiredResult:
        spec = self._specs.get(name)
        if spec is None:
            return await super().call_tool(name, arguments, context)
        valid = list(spec.input_model.model_fields)
        unknown = [given for given in arguments if given not in valid]
        if unknown:
            problems = "; ".join(unknown_argument(given, valid, name) for given in unknown)
            raise ToolError(prefixed(name, f"invalid arguments: {problems}"))
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:  # outside the handler: a resolver, or converting the result
            cause = exc.__cause__ or exc
            log.error("tool %s failed unexpectedly", name, exc_info=cause)
            raise ToolError(prefixed(name, unexpected_failure(name, cause))) from cause
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):  # the SDK's check of the arguments' types
                described = describe_validation(exc.__cause__, model=spec.input_model, name=name)
                raise ToolError(prefixed(name, f"invalid arguments: {described}")) from exc.__cause__
            raise
