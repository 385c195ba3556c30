"""The constrained chooser against the plain definition: log P(candidate | context), summed token by
token from one full forward pass per candidate, on a tiny random-weight Llama."""

from __future__ import annotations

import math

import pytest
import torch

from alloop.tools.judge.backends.choosing import choose, continuation_logprobs, normalized, shared_prefix

from .tiny_model import tiny_llama


@pytest.fixture(scope="module")
def model():
    return tiny_llama(vocab_size=50)


def reference_logprob(model, context: list[int], candidate: list[int]) -> float:
    """The definition, with no cache and no batching: one pass over context + candidate."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context + candidate])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    start = len(context) - 1
    return sum(float(logprobs[start + i, token]) for i, token in enumerate(candidate))


CONTEXT = [5, 9, 2, 31, 7, 7, 12]


@pytest.mark.parametrize(
    "candidates",
    [
        [[3], [4], [8]],  # one token each: the first pass alone decides
        [[10, 11, 12], [10, 11, 20], [10, 13]],  # a shared head, tails of unequal length (padded)
        [[10, 11], [10, 11, 12, 13]],  # one candidate a prefix of the other
        [[1, 2, 3], [4, 5]],  # nothing shared
    ],
)
def test_the_batched_scores_equal_one_full_pass_per_candidate(model, candidates):
    got = continuation_logprobs(model, CONTEXT, candidates)
    want = [reference_logprob(model, CONTEXT, c) for c in candidates]
    assert got == pytest.approx(want, abs=1e-4)


def test_the_choice_is_the_likeliest_and_its_share_is_the_confidence(model):
    candidates = [[10, 11, 12], [10, 11, 20], [10, 13], [30]]
    choice = choose(model, CONTEXT, candidates)
    want = [reference_logprob(model, CONTEXT, c) for c in candidates]
    assert choice.index == max(range(4), key=want.__getitem__)
    assert sum(choice.probs) == pytest.approx(1.0)
    assert choice.confidence == max(choice.probs)
    assert choice.probs[0] / choice.probs[1] == pytest.approx(math.exp(want[0] - want[1]), rel=1e-3)


def test_helpers():
    assert shared_prefix([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert shared_prefix([[1], [2]]) == 0
    assert normalized([math.log(1), math.log(3)]) == pytest.approx([0.25, 0.75])
    with pytest.raises(ValueError, match="at least one token"):
        continuation_logprobs(None, CONTEXT, [[1], []])


def test_a_prior_takes_out_what_the_model_prefers_whatever_the_item(model):
    candidates = [[3], [4], [8]]
    logprobs = [reference_logprob(model, CONTEXT, c) for c in candidates]
    flat = choose(model, CONTEXT, candidates, prior=logprobs)  # the item adds nothing to the prior
    assert flat.probs == pytest.approx([1 / 3] * 3) and flat.index == 0
    loser = min(range(3), key=logprobs.__getitem__)
    prior = [0.0, 0.0, 0.0]
    prior[loser] = -100.0  # an answer the model never gives for an empty item: this item raises it most
    assert choose(model, CONTEXT, candidates, prior=prior).index == loser
    assert choose(model, CONTEXT, candidates, prior=prior).logprobs == pytest.approx(logprobs, abs=1e-4)
