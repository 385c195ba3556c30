"""Encoders: the bundled default loads offline; any local Hugging Face folder works too."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.tools.errors import InputError
from alloop.tools.model.encoders import EmbeddingCache, HFEncoder, embed_table
from alloop.tools.run.items import ItemTable
from alloop.tools.run.schema import TaskSpec


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A random-weight BERT saved to a folder, standing in for any local HF encoder."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz", "the", "cat", "dog"]
    (folder / "vocab.txt").write_text("\n".join(vocab))
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(folder)
    return folder


def test_bundled_minilm_gives_unit_vectors_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vectors = HFEncoder().encode(["The cat sat.", "Shares fell sharply.", "The cat sat."])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[2] == pytest.approx(1, abs=1e-5)
    assert vectors[0] @ vectors[1] < 0.5


def test_a_local_folder_works_and_each_item_is_embedded_once(tiny_bert, root):
    spec = TaskSpec(run="tiny", task_type="binary", labels=["n", "y"], model={"encoder": str(tiny_bert)})
    pool = ItemTable.from_rows([{"id": str(i), "text": f"the cat {i}"} for i in range(6)])
    run = root.create(spec, pool, None)
    encoder = HFEncoder(str(tiny_bert))
    calls: list[int] = []
    original = encoder.encode

    def counting(texts, progress=None):
        calls.append(len(texts))
        return original(texts)

    encoder.encode = counting
    first = embed_table(run, pool, ["text"], encoder)
    second = embed_table(run, pool, ["text"], encoder)
    assert first.shape == (6, 32) and np.array_equal(first, second) and calls == [6]
    bigger = ItemTable.from_rows([{"id": str(i), "text": f"the dog {i}"} for i in range(8)])
    embed_table(run, bigger, ["text"], encoder)
    assert calls == [6, 2]  # only the two new ids
    ids, _ = EmbeddingCache(run, encoder.key).load()
    assert len(ids) == 8


def test_an_unloadable_encoder_says_what_to_do(tmp_path):
    with pytest.raises(InputError, match="could not be loaded"):
        HFEncoder(str(tmp_path / "no-such-model")).encode(["x"])
