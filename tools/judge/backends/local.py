"""The `local` backend: a causal LM on this machine that chooses among the schema's answers.

Small models write poor JSON and echo the rubric, so where the answers are finite (a label, a
score on the grid) the model does not write at all: every allowed answer is scored as the
continuation of the prompt and the likeliest is taken, its share of the probability logged as the
judge's confidence. A small model also leans to some labels whatever the item says (SmolLM2 calls
every review negative), so labels are calibrated: each label's likelihood for the item is set
against its likelihood for an empty item under the same rubric (`local_calibrated`). A rationale
is generated inside its JSON string, bounded in tokens, before the label is chosen. Without an
answer space (ranking, multi_select, free text), or with `local_constrained` off, the model
generates freely and the strict parser judges the text.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from alloop.tools.judge.answers import AnswerSpace
from alloop.tools.judge.backends.base import BackendConfig, Completion
from alloop.tools.judge.backends.choosing import choose, continuation_logprobs
from alloop.tools.judge.backends.local_models import load_local, resolve_local_model
from alloop.tools.judge.rubrics import Prompt, data_message

DECODING_VERSION = "1"
"""Bump when how the local backend decodes changes: cached answers are keyed by it."""


class LocalBackend:
    """A causal LM through transformers (a GGUF through its gguf support), greedy or constrained."""

    name: ClassVar[str] = "local"
    max_concurrency: int | None = 1

    def __init__(self, config: BackendConfig) -> None:
        self.path = resolve_local_model(config.local_model or config.model)
        self.model = f"local:{self.path.name}"
        self.constrained = config.local_constrained
        self.calibrated = config.local_calibrated
        mode = ("calibrated" if self.calibrated else "constrained") if self.constrained else "free"
        self.decoding = f"{mode}-{DECODING_VERSION}"
        self._lock = threading.Lock()
        self._priors: dict[tuple[str, str], list[float]] = {}

    def estimate_cost(self, prompt: Prompt) -> float | None:
        return 0.0

    def complete(self, prompt: Prompt, *, timeout_s: float, choices: AnswerSpace | None = None) -> Completion:
        import torch

        tokenizer, model = load_local(self.path)
        with self._lock, torch.no_grad():
            ids = _chat_ids(tokenizer, prompt.system, prompt.messages)
            if choices is not None and self.constrained:
                return self._constrained(tokenizer, model, ids, choices, prompt)
            new = self._generate(tokenizer, model, ids, prompt.max_tokens)
            text = tokenizer.decode(new, skip_special_tokens=True)
            return self._completion(text, len(ids), len(new))

    def _constrained(
        self, tokenizer: Any, model: Any, ids: list[int], space: AnswerSpace, prompt: Prompt
    ) -> Completion:
        free_text, n_generated = None, 0
        if space.free:
            opening = tokenizer(space.opening(), add_special_tokens=False)["input_ids"]
            new = self._generate(tokenizer, model, ids + opening, min(prompt.max_tokens, space.free_tokens), stop='"')
            free_text = tokenizer.decode(new, skip_special_tokens=True).split('"', 1)[0].strip()
            n_generated = len(new)
        answers = space.answers(free_text)
        candidates = _encode(tokenizer, space.stems(free_text))
        prior = self._prior(tokenizer, model, prompt.system, space) if self.calibrated and space.calibrates else None
        choice = choose(model, ids, candidates, prior)
        info: dict[str, Any] = {
            "constrained": True,
            "choice_logprobs": _by_value(space, choice.logprobs),
            "choice_probs": _by_value(space, choice.probs),
            "confidence": round(choice.confidence, 4),
        }
        if prior is not None:
            info["calibration_logprobs"] = _by_value(space, prior)
        return self._completion(answers[choice.index], len(ids), n_generated, info)

    def _prior(self, tokenizer: Any, model: Any, system: str, space: AnswerSpace) -> list[float]:
        """Each answer's log-probability for an empty item under the same rubric, once per rubric and space."""
        key = (system, space.signature)
        if key not in self._priors:
            empty = [{"role": "user", "content": data_message({"item": {}}, "label")}]
            ids = _chat_ids(tokenizer, system, empty)
            self._priors[key] = continuation_logprobs(model, ids, _encode(tokenizer, space.stems()))
        return self._priors[key]

    def _generate(self, tokenizer: Any, model: Any, ids: list[int], max_tokens: int, stop: str | None = None) -> list:
        import torch

        extra = {"stop_strings": [stop], "tokenizer": tokenizer} if stop else {}
        out = model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_tokens,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
            **extra,
        )
        return out[0][len(ids) :].tolist()

    def _completion(self, text: str, n_prompt: int, n_out: int, info: dict | None = None) -> Completion:
        return Completion(
            text=text,
            model=self.model,
            input_tokens=n_prompt,
            output_tokens=n_out,
            cost_usd=0.0,
            info=info or {"constrained": False},
        )


def _chat_ids(tokenizer: Any, system: str, messages: list[dict[str, str]]) -> list[int]:
    """The prompt as the model's chat template lays it out, up to where the assistant answers."""
    chat = [{"role": "system", "content": system}, *messages]
    encoded = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(encoded["input_ids"])


def _encode(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    return [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]


def _by_value(space: AnswerSpace, numbers: list[float]) -> dict[str, float]:
    return {str(value): round(number, 4) for value, number in zip(space.values, numbers, strict=True)}
