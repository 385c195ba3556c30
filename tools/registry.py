"""Every tool alloop offers, in the order an agent meets them; both adapters read this list."""

from __future__ import annotations

from alloop.tools.base import ToolSpec

TOOLS: list[ToolSpec] = []


def tool_named(name: str) -> ToolSpec:
    for spec in TOOLS:
        if spec.name == name:
            return spec
    raise KeyError(name)
