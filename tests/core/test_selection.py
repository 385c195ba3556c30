"""Selection strategies on synthetic data where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.tools.errors import InputError
from alloop.tools.model.uncertainty import uncertainty
from alloop.tools.selection import SelectionProblem, check_requirements, get_strategy
from alloop.tools.selection.coreset import k_center_greedy


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def problem(n=5, size=200, dim=16, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return SelectionProblem(
        n=n,
        rng=np.random.default_rng(1),
        duplicate_threshold=0.98,
        embeddings=unit(rng.normal(size=(size, dim))),
        **kw,
    )


def test_uncertainty_measures_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])
    m = uncertainty(probs)
    assert m["least_confidence"] == pytest.approx([0.3, 0.6])
    assert m["margin"] == pytest.approx([0.5, 0.0])
    assert m["entropy"][1] == pytest.approx(-(2 * 0.4 * np.log(0.4) + 0.2 * np.log(0.2)), rel=1e-6)


@pytest.mark.parametrize("name", ["least_confidence", "margin", "entropy"])
def test_uncertainty_strategies_take_the_most_uncertain(name):
    rng = np.random.default_rng(3)
    probs = rng.dirichlet([0.3, 0.3, 0.3], size=200).astype(np.float32)
    p = problem(probs=probs)
    picked = [x.position for x in get_strategy(name).select(p)]
    values = uncertainty(probs)[name]
    key = -values if name == "margin" else values
    assert set(picked) == set(np.argsort(-key)[:5].tolist())


def test_kcenter_matches_a_brute_force_reference():
    p = problem(n=8, size=120)
    reference = p.embeddings[:3]
    candidates = p.embeddings[3:]
    fast, _ = k_center_greedy(candidates, reference, 8, 0.999, np.random.default_rng(0))
    covered = list(reference)
    slow = []
    for _ in range(8):
        dist = [min(1 - float(c @ r) for r in covered) for c in candidates]
        best = int(np.argmax(dist))
        slow.append(best)
        covered.append(candidates[best])
    assert fast == slow


def test_near_duplicates_are_never_selected_twice_or_after_a_labeled_twin():
    base = problem(size=50).embeddings
    twins = base[:10] + 1e-4  # near-identical copies of the first ten
    embeddings = unit(np.concatenate([base, twins]))
    probs = np.full((60, 2), 0.5, dtype=np.float32)  # everything equally uncertain
    for name in ["entropy", "random", "kcenter", "hybrid"]:
        p = SelectionProblem(
            n=20,
            rng=np.random.default_rng(0),
            duplicate_threshold=0.98,
            embeddings=embeddings,
            probs=probs,
            reference=embeddings[[0]],
            options={"hybrid_factor": 3},
        )
        picked = [x.position for x in get_strategy(name).select(p)]
        vectors = embeddings[picked]
        sims = vectors @ vectors.T - np.eye(len(picked))
        assert sims.max() < 0.98, name
        assert (vectors @ embeddings[0]).max() < 0.98, name  # the twin of a labeled item is out


def test_hybrid_picks_only_among_the_uncertain():
    rng = np.random.default_rng(0)
    probs = np.tile([[0.99, 0.01]], (200, 1)).astype(np.float32)
    uncertain = rng.choice(200, 30, replace=False)
    probs[uncertain] = [0.5, 0.5]
    p = problem(n=10, probs=probs, options={"hybrid_factor": 3})
    picked = {x.position for x in get_strategy("hybrid").select(p)}
    assert picked <= set(uncertain.tolist())


def test_a_strategy_says_what_it_needs():
    p = problem(probs=None)
    with pytest.raises(InputError, match="needs probs; run score_pool first"):
        check_requirements(get_strategy("entropy"), p)
    with pytest.raises(InputError, match="unknown strategy 'best'"):
        get_strategy("best")


def test_the_heldout_set_masks_its_twins_but_does_not_count_as_covered():
    """Audit #6: held-out vectors steered k-center away from the regions the test set occupies."""
    p = problem(n=6, size=150, seed=5)
    labeled, heldout = p.embeddings[:3], p.embeddings[3:40]
    candidates = p.embeddings[40:]
    twin = unit(heldout[:1] + 1e-4)
    pool = np.concatenate([candidates, twin])

    with_heldout, _ = k_center_greedy(pool, labeled, 6, 0.98, np.random.default_rng(0), reference=heldout)
    labeled_only, _ = k_center_greedy(candidates, labeled, 6, 0.98, np.random.default_rng(0))

    assert with_heldout == labeled_only  # coverage reads the labeled items alone
    assert len(pool) - 1 not in with_heldout  # the held-out item's twin is never picked


def test_uncertainty_reasons_give_the_true_rank_and_count_the_skipped_twins():
    """Audit #11: the rank was the position among the picks after duplicates were skipped."""
    base = problem(size=40).embeddings
    embeddings = unit(np.concatenate([base[:1] + 1e-4, base]))  # row 0 is the twin of row 1
    probs = np.tile([[0.9, 0.1]], (41, 1)).astype(np.float32)
    probs[0], probs[1] = [0.5, 0.5], [0.52, 0.48]  # the twins are the two most uncertain
    p = SelectionProblem(
        n=2, rng=np.random.default_rng(0), duplicate_threshold=0.98, embeddings=embeddings, probs=probs
    )

    picked = get_strategy("least_confidence").select(p)

    assert picked[0].position == 0 and 1 not in [x.position for x in picked]
    assert "rank 1 of 41" in picked[0].reason and "rank 3 of 41" in picked[1].reason
    assert p.report["duplicates_skipped"] == 1


def test_the_keyword_seed_fills_up_without_near_duplicates():
    """Audit #12: the random fill after too few keyword matches skipped the duplicate filter."""
    from alloop.tools.selection.seeding import KeywordSeed

    base = problem(size=20).embeddings
    embeddings = unit(np.concatenate([base, base + 1e-4]))  # every item twice
    texts = ["goal scored"] + ["plain text"] * 39
    p = SelectionProblem(
        n=15,
        rng=np.random.default_rng(0),
        duplicate_threshold=0.98,
        embeddings=embeddings,
        texts=texts,
        keywords={"sport": ["goal"]},
        labels=["sport", "other"],
    )

    picked = [x.position for x in KeywordSeed().select(p)]

    vectors = embeddings[picked]
    assert len(picked) == 15 and (vectors @ vectors.T - np.eye(15)).max() < 0.98


def test_power_margin_draws_mostly_uncertain_items_but_not_only_the_top():
    """Kirsch et al. (2023): sampling ∝ (1 − margin) keeps the lean to uncertainty, adds spread."""
    rng = np.random.default_rng(0)
    probs = np.tile([[0.99, 0.01]], (200, 1)).astype(np.float32)
    uncertain = rng.choice(200, 30, replace=False)
    probs[uncertain] = [0.5, 0.5]
    embeddings = problem(size=200).embeddings
    draws = []
    for s in range(20):
        p = SelectionProblem(
            n=10, rng=np.random.default_rng(s), duplicate_threshold=0.98, embeddings=embeddings, probs=probs
        )
        draws.append({x.position for x in get_strategy("power_margin").select(p)})

    share = np.mean([len(d & set(uncertain.tolist())) / 10 for d in draws])
    assert 0.75 < share < 1.0  # mostly the uncertain third, in expectation about 0.9
    assert len({frozenset(d) for d in draws}) > 1  # a draw, not a fixed top-k


def test_badge_gradient_embedding_is_the_cross_entropy_gradient_of_the_head():
    """Ash et al. (2020): g = ∂ CE(softmax(Wx), ŷ) / ∂W at the predicted label ŷ; checked by torch autograd."""
    import torch

    from alloop.tools.selection.badge import gradient_embeddings

    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 5))
    weights = torch.tensor(rng.normal(size=(3, 5)), requires_grad=True)
    expected = []
    for row in torch.tensor(x):
        logits = weights @ row
        loss = torch.nn.functional.cross_entropy(logits[None], logits.argmax()[None])
        (grad,) = torch.autograd.grad(loss, weights)
        expected.append(grad.numpy().ravel())
    probs = torch.softmax(weights @ torch.tensor(x).T, dim=0).T.detach().numpy()
    np.testing.assert_allclose(gradient_embeddings(probs, x), np.stack(expected), atol=1e-10)


def test_badge_draws_like_k_means_plus_plus_over_the_explicit_gradient_vectors():
    """The product-form distance gives the same draws as k-means++ on materialized vectors."""
    from alloop.tools.selection.badge import badge_picks, gradient_embeddings

    p = problem(size=150, dim=8)
    probs = np.random.default_rng(3).dirichlet([0.5, 0.5, 0.5], size=150)
    picked, _ = badge_picks(probs, p.embeddings, 12, np.random.default_rng(7))

    g = gradient_embeddings(probs, p.embeddings)
    rng = np.random.default_rng(7)
    expected = [int(np.argmax((g * g).sum(1)))]
    nearest = ((g - g[expected[0]]) ** 2).sum(1)
    while len(expected) < 12:
        weights = nearest.copy()
        weights[expected] = 0.0
        expected.append(int(rng.choice(len(g), p=weights / weights.sum())))
        nearest = np.minimum(nearest, ((g - g[expected[-1]]) ** 2).sum(1))
    assert picked == expected


def test_badge_leans_to_uncertain_items_and_spreads_over_regions():
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(4, 16)))
    embeddings = unit(np.repeat(centres, 50, axis=0) + 0.05 * rng.normal(size=(200, 16)))
    probs = np.tile([[0.98, 0.02]], (200, 1))
    unsure = np.r_[0:10, 50:60, 100:110, 150:160]  # ten unsure items in each region
    probs[unsure] = [0.55, 0.45]
    p = SelectionProblem(
        n=8, rng=np.random.default_rng(1), duplicate_threshold=0.999, embeddings=embeddings, probs=probs
    )
    picks = [x.position for x in get_strategy("badge").select(p)]
    assert len(set(picks) & set(unsure.tolist())) >= 6
    assert len({pos // 50 for pos in picks}) == 4  # every region, not eight picks from one


def test_typiclust_takes_typical_items_of_the_clusters_with_fewest_labels():
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(3, 16)))
    sizes = [120, 60, 30]
    embeddings = unit(np.repeat(centres, sizes, axis=0) + 0.1 * rng.normal(size=(210, 16)))
    blob = np.repeat([0, 1, 2], sizes)
    covered = unit(centres[[0, 0]] + 0.1 * rng.normal(size=(2, 16)))  # the big blob has the labels
    p = SelectionProblem(
        n=1, rng=np.random.default_rng(1), duplicate_threshold=0.99, embeddings=embeddings, covered=covered
    )
    picks = get_strategy("typiclust").select(p)  # 2 labeled + 1 to pick: three clusters
    assert blob[picks[0].position] == 1  # the larger of the two blobs without a label
    assert "typiclust: most typical item of cluster" in picks[0].reason
    centre = embeddings[blob == 1].mean(0)
    closeness = embeddings[blob == 1] @ centre
    assert embeddings[picks[0].position] @ centre >= np.quantile(closeness, 0.5)  # typical, not an outlier


@pytest.mark.parametrize("name", ["badge", "typiclust"])
def test_badge_and_typiclust_pick_distinct_items_away_from_the_reference(name):
    p = problem(n=10, size=300, probs=np.random.default_rng(2).dirichlet([1, 1], size=300))
    p.reference = p.embeddings[:40]
    p.covered = p.embeddings[:40]
    picks = [x.position for x in get_strategy(name).select(p)]
    assert len(picks) == len(set(picks)) == 10
    assert min(picks) >= 40  # twins of the reference (here: the items themselves) are never picked


def test_typiclust_fills_the_batch_when_its_big_clusters_run_out():
    """Clusters left with only twins are passed over for the small ones, not the end of the batch."""
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(5, 16)))
    sizes = [100, 100, 100, 3, 3]  # three dense blobs of near-identical items, two small groups
    embeddings = unit(np.repeat(centres, sizes, axis=0) + 1e-4 * rng.normal(size=(306, 16)))
    p = SelectionProblem(
        n=3,
        rng=np.random.default_rng(1),
        duplicate_threshold=0.9,
        embeddings=embeddings,
        reference=centres[:1],  # the first blob duplicates a labeled item
        covered=np.repeat(centres[1:2], 2, axis=0),  # the second blob has two labels
    )
    picks = get_strategy("typiclust").select(p)
    assert len(picks) == 3
    assert {int(x.position) // 100 for x in picks} == {1, 2, 3}  # blob 2, blob 1, then a small group


def test_stratified_seed_gives_every_guessed_class_its_share_and_fills_a_shortfall():
    from alloop.tools.selection.seeding import SEED_STRATEGIES

    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(3, 16)))
    noise = np.repeat([0.1, 0.0001, 0.1], [150, 40, 10])[:, None] * rng.normal(size=(200, 16))
    embeddings = unit(np.repeat(centres, [150, 40, 10], axis=0) + noise)  # the 40 'rare' items are one item, 40 times
    names = ["common", "rare", "other"]
    p = SelectionProblem(
        n=9,
        rng=np.random.default_rng(1),
        duplicate_threshold=0.99,
        embeddings=embeddings,
        labels=names,
        label_vectors=centres,
    )
    picks = SEED_STRATEGIES["stratified"]().select(p)
    assert len(picks) == 9 and len({x.position for x in picks}) == 9
    of = {c: [x.position for x in picks if f"of class {c!r}" in x.reason] for c in names}
    assert len(of["common"]) == 3 and len(of["other"]) == 3  # equal shares of the guessed classes
    assert len(of["rare"]) == 1 and 150 <= of["rare"][0] < 190  # its twins are not picked again
    assert sum("typical fill" in x.reason for x in picks) == 2  # the shortfall is filled, not left out


@pytest.mark.parametrize(("name", "instead"), [("power_margin", "entropy"), ("cluster_margin", "entropy or kcenter")])
def test_a_margin_strategy_on_magnitudes_says_what_to_use_instead(name, instead):
    """A magnitude run's scores are a mean and an sd: there are no classes to take a margin between."""
    p = problem(probs=np.column_stack([np.linspace(1, 2, 200), np.full(200, 0.3)]), options={"task_type": "magnitude"})
    with pytest.raises(InputError, match=f"{name} ranks by class margins; a magnitude run has none: use {instead}"):
        get_strategy(name).select(p)
