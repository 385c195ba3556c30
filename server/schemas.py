"""The JSON schemas alloop publishes in `tools/list`, kept small: every client pays for them on every turn.

Pydantic's schemas carry a title per property, `anyOf` for every optional value and
`"default": null` for each; they say nothing a model needs. `compact_input` drops that noise and
keeps what constrains a value. A rarely used nested config is not inlined at all: the tool's
parameter is a plain object whose schema is served as an MCP resource (`alloop://schema/<name>`),
and the tool's own input model still validates it. A result is published as an object, its full
schema a resource too (`alloop://schema/result/<tool>`): the result names its own fields, and
listing them for every tool on every turn would cost a quarter of the budget.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

from alloop.tools.jspsych.config import ExperimentConfig
from alloop.tools.run.schema import EncoderTrainingSpec

SCHEMA_URI = "alloop://schema/{name}"
RESULT_SCHEMA_URI = "alloop://schema/result/{tool}"
OUTPUT_SCHEMA: dict[str, Any] = {"type": "object"}
"""What `tools/list` says of every tool's result (the client validates structured content against it)."""

BY_REFERENCE: dict[str, type[BaseModel]] = {
    "jspsych-config": ExperimentConfig,
    "encoder-training": EncoderTrainingSpec,
}
"""Nested configs an agent rarely sets, published by reference: resource name → the model that validates them."""

_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA = ("items", "additionalProperties", "not")
_NAMED_SUBSCHEMAS = ("properties", "$defs")
_NULL = {"type": "null"}


def schema_reference(annotation: Any) -> str | None:
    """The resource name under which a field's model is published, if it is one of `BY_REFERENCE`."""
    for name, model in BY_REFERENCE.items():
        if model in _members(annotation):
            return name
    return None


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def reference_annotation(required: bool) -> Any:
    """What a by-reference field is published as: a plain object (left out, or null, when optional)."""
    return dict[str, Any] if required else dict[str, Any] | None


def compact_input(schema: Any) -> Any:
    """A tool's input schema without titles, and an optional argument as its type alone (leave it out for none)."""
    if isinstance(schema, list):
        return [compact_input(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title":
            continue
        if key in _NAMED_SUBSCHEMAS:
            out[key] = {name: compact_input(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA or key in _SUBSCHEMA_LISTS:
            out[key] = compact_input(value)
        else:
            out[key] = value
    if "default" in out and out["default"] is None:
        del out["default"]
        out = _optional(out)
    if out.get("additionalProperties") is True:
        del out["additionalProperties"]
    return out


def _optional(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [{type: T, ...}, {type: null}]` as T alone: an optional argument is left out, not sent as null."""
    options = node.get("anyOf")
    if not (isinstance(options, list) and len(options) == 2 and _NULL in options):
        return node
    other = options[0] if options[1] == _NULL else options[1]
    rest = {key: value for key, value in node.items() if key != "anyOf"}
    return {**other, **rest}
