"""Near-duplicate filtering by cosine similarity of unit-norm embeddings, in chunks.

Only what a batch could contain is compared: a ranking is walked from its head (take_distinct),
so a million-item pool costs a few thousand comparisons against the reference set, not a million.
"""

from __future__ import annotations

import numpy as np

CHUNK = 4096


def max_similarity(vectors: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """For each row of `vectors`, its highest cosine similarity to any row of `reference`."""
    if reference is None or len(reference) == 0:
        return np.full(len(vectors), -1.0, dtype=np.float32)
    out = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), CHUNK):
        out[start : start + CHUNK] = (vectors[start : start + CHUNK] @ reference.T).max(axis=1)
    return out


def take_distinct(
    order: np.ndarray,
    embeddings: np.ndarray | None,
    reference: np.ndarray | None,
    n: int,
    threshold: float,
) -> tuple[list[int], int]:
    """The first `n` positions of `order` that duplicate neither the reference nor each other.

    Walks the ranking in growing chunks, so only the head of a million-item ranking is compared.
    Returns the positions and how many were skipped as duplicates.
    """
    if embeddings is None:
        return [int(i) for i in order[:n]], 0
    chosen: list[int] = []
    chosen_x = np.empty((n, embeddings.shape[1]), dtype=np.float32)  # the picks' vectors, gathered once each
    skipped = 0
    start, size = 0, max(4 * n, 64)
    while len(chosen) < n and start < len(order):
        block = order[start : start + size]
        vectors = embeddings[block]
        near_reference = max_similarity(vectors, reference) >= threshold
        for j, position in enumerate(block):
            if len(chosen) == n:
                break
            if near_reference[j]:
                skipped += 1
                continue
            if chosen and float((chosen_x[: len(chosen)] @ vectors[j]).max()) >= threshold:
                skipped += 1
                continue
            chosen_x[len(chosen)] = vectors[j]
            chosen.append(int(position))
        start += size
        size *= 2
    return chosen, skipped
