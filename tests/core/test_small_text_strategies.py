"""small-text's query strategies behind alloop's selection interface (tools/selection/small_text.py).

Real data: the BBC titles of tests/conftest.py's slice, embedded with the bundled MiniLM; 8 labeled
articles per topic are the covered set, a logistic regression on them gives the candidates' class
probabilities, and the held-out titles join the labeled ones as the reference set. The candidates
are the other pool titles plus a copy of every held-out title: twins a batch must never contain.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from alloop.tools.errors import InputError
from alloop.tools.model.encoders import get_encoder
from alloop.tools.run.rundir import read_jsonl
from alloop.tools.selection import STRATEGIES, SelectionProblem, get_strategy
from alloop.tools.selection import small_text as wrapped

NAMES = [strategy.name for strategy in wrapped.SMALL_TEXT_STRATEGIES]
THRESHOLD = 0.95
LABELED_PER_TOPIC = 8


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def bbc(bbc_slice) -> dict[str, np.ndarray]:
    """Candidates (with probabilities), the labeled (covered) vectors and the reference set."""
    topic = {r["id"]: r["label"] for r in read_jsonl(bbc_slice["gold"])}
    pool = read_jsonl(bbc_slice["pool"])
    encoder = get_encoder("all-MiniLM-L6-v2", 256)
    x = unit(encoder.encode([r["text"] for r in pool]))
    heldout = unit(encoder.encode([r["text"] for r in read_jsonl(bbc_slice["heldout"])]))
    y = np.asarray([topic[r["id"]] for r in pool])
    labeled = np.concatenate([np.flatnonzero(y == t)[:LABELED_PER_TOPIC] for t in sorted(set(y))])
    candidates = np.concatenate([np.delete(x, labeled, axis=0), heldout])
    head = LogisticRegression(C=10, max_iter=2000).fit(x[labeled], y[labeled])
    return {
        "candidates": candidates,
        "probs": head.predict_proba(candidates),
        "covered": x[labeled],
        "reference": np.concatenate([x[labeled], heldout]),
    }


def bbc_problem(bbc: dict[str, np.ndarray], n: int = 12, seed: int = 0, **changes) -> SelectionProblem:
    fields = {
        "embeddings": bbc["candidates"],
        "probs": bbc["probs"],
        "covered": bbc["covered"],
        "reference": bbc["reference"],
    } | changes
    return SelectionProblem(n=n, rng=np.random.default_rng(seed), duplicate_threshold=THRESHOLD, **fields)


def positions(name: str, problem: SelectionProblem) -> list[int]:
    return [pick.position for pick in get_strategy(name).select(problem)]


@pytest.mark.parametrize("name", NAMES)
def test_each_wrapped_strategy_picks_n_distinct_non_duplicates_with_reasons_on_bbc_news(bbc, name):
    problem = bbc_problem(bbc)
    picks = get_strategy(name).select(problem)
    chosen = [p.position for p in picks]
    assert len(chosen) == len(set(chosen)) == 12
    vectors = bbc["candidates"][chosen]
    assert (vectors @ bbc["reference"].T).max() < THRESHOLD
    within = vectors @ vectors.T
    assert within[~np.eye(len(chosen), dtype=bool)].max() < THRESHOLD
    assert all(p.reason.startswith(f"{name}: small-text ") for p in picks)
    assert "duplicates_skipped" in problem.report


@pytest.mark.parametrize("name", NAMES)
def test_the_same_seed_gives_the_same_batch(bbc, name):
    assert positions(name, bbc_problem(bbc, seed=5)) == positions(name, bbc_problem(bbc, seed=5))


def test_the_seeded_draws_do_change_with_the_seed(bbc):
    draws = {tuple(positions("small_text_lightweight_coreset", bbc_problem(bbc, seed=s))) for s in range(3)}
    assert len(draws) == 3


def test_twins_of_labeled_items_are_skipped_and_small_text_is_asked_for_more(bbc):
    """Half the candidates are copies of the labeled items: the draw meets them, the batch never has them."""
    covered = bbc["covered"]
    twins = np.repeat(covered, 5, axis=0)
    candidates = np.concatenate([twins, bbc["candidates"][: len(twins)]])
    problem = bbc_problem(bbc, n=40, embeddings=candidates, probs=None)
    chosen = positions("small_text_lightweight_coreset", problem)
    assert len(set(chosen)) == 40
    assert min(chosen) >= len(twins)
    assert problem.report["duplicates_skipped"] > 0


def test_a_capped_strategy_runs_on_a_seeded_subsample_and_says_so(bbc, monkeypatch):
    monkeypatch.setattr(wrapped.SmallTextCal, "cap", 50)
    problem = bbc_problem(bbc)
    picks = get_strategy("small_text_cal").select(problem)
    size = len(bbc["candidates"])
    assert problem.report["small_text_subsample"] == f"50 of {size}"
    assert all(p.reason.endswith(f"among a random 50 of {size} candidates") for p in picks)
    subsample = np.sort(np.random.default_rng(0).choice(size, 50, replace=False))  # the first draw of problem.rng
    assert {p.position for p in picks} <= set(subsample.tolist())


def test_dal_needs_labeled_items(bbc):
    with pytest.raises(InputError, match="nothing is labeled yet: use kcenter or typiclust"):
        get_strategy("small_text_dal").select(bbc_problem(bbc, covered=None))


def test_a_missing_small_text_says_how_to_install_it(bbc, monkeypatch):
    monkeypatch.setitem(sys.modules, "small_text.query_strategies", None)  # import fails as if not installed
    with pytest.raises(InputError, match=r"pip install 'alloop\[bench\]'"):
        get_strategy("small_text_kmeans").select(bbc_problem(bbc))


def test_the_registry_knows_the_wrapped_strategies_and_what_they_need():
    assert set(NAMES) <= set(STRATEGIES)
    assert get_strategy("small_text_cal").requires == {"embeddings", "probs"}
    assert all(get_strategy(n).requires == {"embeddings"} for n in NAMES if n != "small_text_cal")


def test_select_batch_accepts_every_wrapped_name_on_a_scored_bbc_loop(looped_copy, ctx):
    from alloop.tools.run.labels import answered_items
    from alloop.tools.score_pool import ScoreInput, score_pool
    from alloop.tools.select_batch import SelectInput, select_batch

    score_pool(ScoreInput(run=looped_copy), ctx)
    run = ctx.root.run(looped_copy)
    excluded = answered_items(run.labels()) | set(run.heldout().ids)
    for name in NAMES:
        out = select_batch(SelectInput(run=looped_copy, strategy=name, batch_size=10, redo=True), ctx)
        rows = run.selection(out.round)
        ids = [r.item_id for r in rows]
        assert out.strategy == name and out.n_selected == len(set(ids)) == 10
        assert not set(ids) & excluded
        assert all(r.strategy == name and r.reason.startswith(f"{name}: small-text ") for r in rows)
