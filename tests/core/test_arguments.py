"""A tool's arguments without an adapter: an unknown name is refused with the valid ones, never dropped,
and every validation error reads `field 'x': message`."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alloop.tools.base import ToolContext
from alloop.tools.build_jspsych import BuildJspsychInput
from alloop.tools.errors import InputError, describe_validation, unexpected_failure
from alloop.tools.registry import TOOLS, tool_named
from alloop.tools.select_batch import SelectInput


def test_every_tool_refuses_arguments_it_does_not_know():
    loose = [spec.name for spec in TOOLS if spec.input_model.model_config.get("extra") != "forbid"]
    assert loose == []


def test_a_misspelled_argument_is_refused_with_the_closest_name(ctx):
    with pytest.raises(InputError) as refused:
        tool_named("select_batch").call({"run": "bbc", "batchsize": 5}, ctx)
    assert str(refused.value) == (
        "invalid arguments: unknown argument 'batchsize' for select_batch; did you mean 'batch_size'? "
        "valid: run, strategy, batch_size, seed, redo"
    )


def test_a_name_like_none_of_them_still_lists_the_valid_ones(ctx):
    with pytest.raises(InputError, match=r"unknown argument 'colour' for status; valid: run$"):
        tool_named("status").call({"run": "bbc", "colour": "red"}, ctx)


def test_a_misspelled_key_deep_in_a_config_names_its_path_and_siblings():
    config = {"trial": {"widgt": "buttons"}, "distribution": {"strategy": "balanced", "cout": "completed"}}
    with pytest.raises(ValidationError) as refused:
        BuildJspsychInput.model_validate({"run": "r", "round": 1, "config": config})
    described = describe_validation(refused.value, model=BuildJspsychInput)
    assert "unknown field 'config.trial.widgt'; did you mean 'widget'? valid: prompt, widget," in described
    assert "unknown field 'config.distribution.balanced.cout'; did you mean 'count'? valid: strategy," in described


def test_other_problems_read_field_then_message():
    with pytest.raises(ValidationError) as refused:
        SelectInput.model_validate({"run": "r", "batch_size": 0})
    assert describe_validation(refused.value) == "field 'batch_size': Input should be greater than or equal to 1"


def test_without_the_model_an_unknown_field_is_still_named():
    with pytest.raises(ValidationError) as refused:
        SelectInput.model_validate({"run": "r", "batchsize": 5})
    assert describe_validation(refused.value, "spec.json") == "spec.json: unknown field 'batchsize'"


def test_a_nul_byte_in_an_input_path_is_an_input_error(root):
    for anywhere in (False, True):
        with pytest.raises(InputError, match="NUL byte"):
            ToolContext(root=root, inputs_anywhere=anywhere).input_path("labels\x00.jsonl")


def test_a_bug_is_reported_with_the_tool_what_failed_and_what_to_do():
    message = unexpected_failure("train_glmm", KeyError("label"))
    assert message.startswith("train_glmm failed unexpectedly (KeyError: 'label').")
    assert "`status`" in message and "bug in alloop" in message and "traceback is in the server log" in message
