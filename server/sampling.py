"""MCP sampling for llm_judge: the client's own model as the judge, in both protocol eras.

Up to 2025-11-25 the server may ask the client mid-call, so the judge's sampler sends one
`sampling/createMessage` per prompt and waits. From 2026-07-28 on, a tool cannot ask mid-call:
the first call returns every uncached prompt at once as an `InputRequiredResult` (keyed by
prompt hash), and the client's retry carries the answers, which the judge then reads back.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.shared.message import ServerMessageMetadata
from mcp_types import (
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    InputRequiredResult,
    SamplingMessage,
    TextContent,
)
from mcp_types.version import is_version_at_least

from alloop.tools.base import ToolContext
from alloop.tools.errors import AlloopError
from alloop.tools.judge.backends import BackendConfig, BackendError, pick_backend_name
from alloop.tools.judge.engine import answers_sampler
from alloop.tools.judge.plan import sampling_requests
from alloop.tools.llm_judge import LlmJudgeInput

BATCHED_SINCE = "2026-07-28"


def _request(system: str, messages: list[dict[str, str]], max_tokens: int) -> CreateMessageRequest:
    return CreateMessageRequest(
        params=CreateMessageRequestParams(
            system_prompt=system,
            max_tokens=max_tokens,
            messages=[
                SamplingMessage(role=m["role"], content=TextContent(type="text", text=m["content"])) for m in messages
            ],
        )
    )


def _reply(result: CreateMessageResult) -> dict[str, Any]:
    content = result.content
    if getattr(content, "type", None) != "text":
        raise BackendError("the client's model answered with something other than text")
    return {"text": content.text, "model": result.model, "stop_reason": result.stop_reason}


def _unused_sampler(system: str, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
    raise BackendError("planning only: no sampling request is sent in this phase")


def mid_call_sampler(ctx: Context):
    """A blocking sampler for the judge's threads that asks the client through this call's session."""
    token = anyio.lowlevel.current_token()

    def sampler(system: str, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
        async def send() -> CreateMessageResult:
            return await ctx.session.send_request(
                _request(system, messages, max_tokens),
                CreateMessageResult,
                metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
            )

        try:
            return _reply(anyio.from_thread.run(send, token=token))
        except BackendError:
            raise
        except Exception as exc:  # declined, disconnected, or an error from the client
            raise BackendError(f"the MCP client did not answer the sampling request: {exc}") from exc

    return sampler


def _picks_sampling(args: LlmJudgeInput, tool_ctx: ToolContext) -> bool:
    spec = tool_ctx.root.run(args.run).spec()
    try:
        chosen = pick_backend_name(args.backend or spec.judge.backend, BackendConfig(sampler=_unused_sampler))
    except AlloopError:
        return False
    return chosen == "sampling"


async def judge_hook(arguments: dict[str, Any], resolved: dict[str, Any], ctx: Context, tool_ctx: ToolContext):
    """Give llm_judge a sampler when the client offers sampling; may return the batched requests."""
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.sampling is None:
        return None
    args = LlmJudgeInput.model_validate(arguments)
    if not await anyio.to_thread.run_sync(_picks_sampling, args, tool_ctx):
        return None
    version = ctx.protocol_version
    if version is None or not is_version_at_least(version, BATCHED_SINCE):
        tool_ctx.sampler = mid_call_sampler(ctx)
        return None
    if ctx.input_responses:
        answers = {
            key: _reply(CreateMessageResult.model_validate(response.model_dump(mode="json", by_alias=True)))
            for key, response in ctx.input_responses.items()
        }
        tool_ctx.sampler = answers_sampler(answers)
        return None
    tool_ctx.sampler = _unused_sampler
    requests = await anyio.to_thread.run_sync(sampling_requests, args, tool_ctx)
    if not requests:
        tool_ctx.sampler = answers_sampler({})
        return None
    return InputRequiredResult(input_requests={r.key: _request(r.system, r.messages, r.max_tokens) for r in requests})


def judge_return_annotation(output_model: type) -> Any:
    return output_model | InputRequiredResult
