"""Which pool items a trained encoder re-embeds when the pool is large.

Re-embedding a million items after every encoder update costs more than the round. The pretrained
encoder's embeddings are cached once; a logistic head over them ranks the pool by least
confidence, and the trained encoder re-scores only the top `n` plus `n // 4` drawn at random (so
confidently wrong regions still get looked at). The rest keep the pretrained head's scores.
"""

from __future__ import annotations

import numpy as np

from alloop.tools.model.encoders import embed_table, run_encoder
from alloop.tools.model.heads import make_head
from alloop.tools.model.training import training_rows
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import TaskSpec


def shortlist(run: RunDir, spec: TaskSpec, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The pretrained head's pool probabilities, and the positions the trained encoder should re-score."""
    pool = run.pool()
    x = embed_table(run, pool, spec.text_fields, run_encoder(run))
    heldout = run.heldout()
    item_ids, labels, _, _ = training_rows(spec, run, set(heldout.ids) if heldout is not None else set())
    index = {label: i for i, label in enumerate(spec.labels)}
    y = np.asarray([index[label] for label in labels], dtype=np.int64)
    head = make_head("logistic", spec).fit(x[pool.positions(item_ids)], y)
    probs = head.predict_proba(x).astype(np.float32)
    order = np.argsort(probs.max(axis=1), kind="stable")  # least confident first
    top = order[:n]
    rest = order[n:]
    extra = np.random.default_rng([seed, 7]).choice(rest, size=min(len(rest), n // 4), replace=False)
    return probs, np.sort(np.concatenate([top, extra]))
