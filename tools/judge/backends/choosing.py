"""Constrained decoding for a causal LM: the likeliest of a few given continuations of a prompt.

A small model asked to write JSON often writes something else (the rubric back, a label outside
the schema). Scoring every allowed answer instead, as a continuation of the same prompt, always
yields an answer inside the schema, and the scores say how sure the model was. Each candidate is
scored by the log-probability of all its tokens, so candidates must end where they differ (a label
with its closing quote); the tokens all candidates share pass through the model once, and the rest
go in one batch on that pass's cache.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Choice:
    """The chosen candidate, every candidate's log-probability, and their share of the probability."""

    index: int
    logprobs: list[float]
    probs: list[float]

    @property
    def confidence(self) -> float:
        """The chosen candidate's probability among the candidates (not among all possible texts)."""
        return self.probs[self.index]


def shared_prefix(sequences: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all sequences have in common."""
    first = sequences[0]
    length = min(len(s) for s in sequences)
    for position in range(length):
        if any(s[position] != first[position] for s in sequences):
            return position
    return length


def normalized(logprobs: Sequence[float]) -> list[float]:
    """Probabilities over the candidates alone (a softmax of their log-probabilities)."""
    top = max(logprobs)
    weights = [math.exp(value - top) for value in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def _cache_kwarg(model: Any) -> str:
    """The forward argument that takes a cache: `cache` in newer transformers, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def continuation_logprobs(model: Any, context: Sequence[int], candidates: Sequence[Sequence[int]]) -> list[float]:
    """log P(candidate | context) for each candidate token sequence, under a causal LM."""
    import torch

    if not candidates or any(len(c) == 0 for c in candidates):
        raise ValueError("every candidate needs at least one token")
    common = shared_prefix(candidates)
    if common == min(len(c) for c in candidates):
        common -= 1  # one candidate is a prefix of the others: keep a token of it to score
    shared = list(candidates[0][:common])
    tails = [list(c[common:]) for c in candidates]
    with torch.no_grad():
        first = model(input_ids=torch.tensor([list(context) + shared]), use_cache=True, logits_to_keep=common + 1)
        head = torch.log_softmax(first.logits[0].float(), dim=-1)  # predicts shared[0], …, then each tail's start
        base = sum(float(head[i, token]) for i, token in enumerate(shared))
        totals = [base + float(head[-1, tail[0]]) for tail in tails]
        longest = max(len(t) for t in tails)
        if longest == 1:
            return totals
        # Feed each tail but its last token; pad on the right (later positions never affect earlier ones).
        pad = tails[0][0]
        batch = torch.tensor([t[:-1] + [pad] * (longest - len(t)) for t in tails])
        cache = getattr(first, "cache", None) or first.past_key_values
        cache.batch_repeat_interleave(len(tails))
        rest = model(input_ids=batch, use_cache=True, **{_cache_kwarg(model): cache})
        logprobs = torch.log_softmax(rest.logits.float(), dim=-1)
        for row, tail in enumerate(tails):
            for position, token in enumerate(tail[1:]):
                totals[row] += float(logprobs[row, position, token])
    return totals


def choose(
    model: Any, context: Sequence[int], candidates: Sequence[Sequence[int]], prior: Sequence[float] | None = None
) -> Choice:
    """The likeliest candidate after the context (the first one on a tie).

    With a `prior` (each candidate's log-probability after a content-free context), the candidate
    the context raises most above it: contextual calibration (Zhao et al., 2021), which takes out
    a small model's preference for some answers whatever the item says.
    """
    logprobs = continuation_logprobs(model, context, candidates)
    scores = logprobs if prior is None else [lp - p for lp, p in zip(logprobs, prior, strict=True)]
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return Choice(index=best, logprobs=logprobs, probs=normalized(scores))
