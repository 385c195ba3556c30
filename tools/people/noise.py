"""Simulated participants: a stated noise model, so people-level analyses can run from gold alone.

Participant p has a person bias b_p ~ N(0, 1) and a preference over the classes w_p ~ Dirichlet(1);
item i has a difficulty d_i ~ N(0, 1). With noise s > 0:

- binary, categorical: p gives item i its gold label with probability σ(2/s + b_p − d_i)
  (ability 2/s + b_p against difficulty d_i through a logistic link), else another class drawn
  by w_p, so one person's errors lean one way;
- forced_choice: p chooses option j with probability softmax_j(2/s·[j is gold] + s·b_p·[j is
  the first option]): a conditional logit in which each person leans toward the first option by
  s·b_p, so the participant SD of a mixed choice model is s (what the GLMM head should recover);
- ordinal_scale: p answers the gold scale point shifted by s·b_p (the person's bias) plus s·e_pi
  (item noise, e_pi ~ N(0, 1)), rounded and clipped to the scale.

Noise 0 answers gold. Every draw hangs on (seed, participant, item), never on the order of calls,
so an answer is the same in any round, call or process.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from alloop.tools.errors import InputError
from alloop.tools.run.schema import CLASSIFICATION_TASKS

NOISY_TASKS = (*sorted(CLASSIFICATION_TASKS), "ordinal_scale")
BASE_ABILITY = 2.0
"""Ability at noise 1 for an average person and item: σ(2) ≈ 0.88 gold answers."""


def stable_key(text: str) -> int:
    """A 64-bit number for a text, the same in every process (unlike `hash`)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def participant_names(n: int) -> list[str]:
    """A lone simulator keeps its old name; several are sim-p01, sim-p02, …"""
    return ["simulator"] if n == 1 else [f"sim-p{k:02d}" for k in range(1, n + 1)]


@dataclass(frozen=True)
class Answer:
    label: object
    params: dict[str, float] = field(default_factory=dict)
    """The draws behind the answer (person bias, item difficulty or noise), for the label event."""


class SimulatedPeople:
    """`participants` simulated people answering from gold under the noise model above."""

    def __init__(self, task_type: str, labels: Sequence[str], participants: int, noise: float, seed: int) -> None:
        if noise > 0 and task_type not in NOISY_TASKS:
            raise InputError(
                f"noise is modelled for {', '.join(NOISY_TASKS)}; task_type {task_type!r} takes noise 0 (gold answers)"
            )
        self.task_type = task_type
        self.labels = list(labels)
        self.noise = noise
        self.seed = seed
        self.names = participant_names(participants)
        self._bias: dict[str, float] = {}
        self._preference: dict[str, np.ndarray] = {}
        for k, name in enumerate(self.names, start=1):
            rng = np.random.default_rng([seed, 1, k])
            self._bias[name] = float(rng.normal())
            self._preference[name] = rng.dirichlet(np.ones(max(len(self.labels), 1)))

    def describe(self) -> str:
        """The model in one line, for notes.md and the tool's result."""
        if self.noise == 0:
            return "noise 0: every participant answers gold"
        s = f"{self.noise:g}"
        if self.task_type == "ordinal_scale":
            return f"noise {s}, seed {self.seed}: gold + {s}·b_p + {s}·e_pi, rounded and clipped; b_p, e_pi ~ N(0, 1)"
        if self.task_type == "forced_choice":
            return (
                f"noise {s}, seed {self.seed}: P(option j) = "
                f"softmax_j({BASE_ABILITY:g}/{s}·[j gold] + {s}·b_p·[j first]), b_p ~ N(0, 1)"
            )
        return (
            f"noise {s}, seed {self.seed}: P(gold) = σ({BASE_ABILITY:g}/{s} + b_p − d_i), b_p, d_i ~ N(0, 1); "
            "else another class by the person's Dirichlet(1) preference"
        )

    def difficulty(self, item_id: str) -> float:
        return float(np.random.default_rng([self.seed, 2, stable_key(item_id)]).normal())

    def answer(self, name: str, item_id: str, gold: object) -> Answer:
        """What participant `name` answers for an item whose gold label is `gold`."""
        if self.noise == 0:
            return Answer(gold)
        rng = np.random.default_rng([self.seed, 3, self.names.index(name) + 1, stable_key(item_id)])
        bias = self._bias[name]
        position = self.labels.index(str(gold))
        if self.task_type == "ordinal_scale":
            shift, item_noise = self.noise * bias, self.noise * float(rng.normal())
            point = min(max(math.floor(position + shift + item_noise + 0.5), 0), len(self.labels) - 1)
            return Answer(self.labels[point], {"person_bias": round(shift, 4), "item_noise": round(item_noise, 4)})
        if self.task_type == "forced_choice":
            utility = np.zeros(len(self.labels))
            utility[position] += BASE_ABILITY / self.noise
            utility[0] += self.noise * bias
            chance = np.exp(utility - utility.max())
            chosen = int(rng.choice(len(chance), p=chance / chance.sum()))
            return Answer(self.labels[chosen], {"person_bias": round(self.noise * bias, 4)})
        difficulty = self.difficulty(item_id)
        p_gold = 1 / (1 + math.exp(-(BASE_ABILITY / self.noise + bias - difficulty)))
        params = {"person_bias": round(bias, 4), "item_difficulty": round(difficulty, 4), "p_gold": round(p_gold, 4)}
        if rng.random() < p_gold:
            return Answer(self.labels[position], params)
        weights = self._preference[name].copy()
        weights[position] = 0.0
        return Answer(self.labels[int(rng.choice(len(weights), p=weights / weights.sum()))], params)
