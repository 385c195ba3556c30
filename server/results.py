"""A tool's result as the MCP client receives it: structured content, and the same as compact JSON text.

Results go into the agent's context, so they are kept short: no indentation, and a long list of
records is cut to its first `LIST_LIMIT` entries, with `omitted` saying how many each list left
out (the run's files, served as resources, hold them all).
"""

from __future__ import annotations

import json
from typing import Any

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

LIST_LIMIT = 20
OMITTED = "omitted"
"""The result field that says, per capped list, how many entries were left out."""
UNCAPPED = frozenset({"invalid", "skipped_unknown"})
"""Lists no run file holds (pull_from_argilla's answers to fix in Argilla): the agent gets them whole."""


def cap_lists(data: dict[str, Any], limit: int = LIST_LIMIT) -> dict[str, Any]:
    """The top-level lists of records cut to `limit` entries; `omitted` counts what each lost."""
    capped = dict(data)
    omitted: dict[str, int] = {}
    for key, value in data.items():
        if key in UNCAPPED:
            continue
        if isinstance(value, list) and len(value) > limit and any(isinstance(v, dict) for v in value):
            capped[key] = value[:limit]
            omitted[key] = len(value) - limit
    if omitted:
        capped[OMITTED] = omitted
    return capped


def tool_result(result: BaseModel) -> CallToolResult:
    """Structured content for programs, the same compact JSON as text for the model."""
    data = cap_lists(result.model_dump(mode="json", by_alias=True))
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)
