"""BALD (Laplace posterior of the head), cluster-margin and class-balance selection.

Each is checked against an outside reference (torch autograd, numpy Monte Carlo, scikit-learn's
agglomerative clustering, a quota worked by hand) and run through select_batch on real BBC News
embeddings after a simulated loop.
"""

from __future__ import annotations

import numpy as np
import pytest

from alloop.tools.errors import InputError
from alloop.tools.model.logistic import LogisticHead
from alloop.tools.selection import SelectionProblem, get_strategy
from alloop.tools.selection.bald import bald_terms
from alloop.tools.selection.class_balance import quotas, target_shares
from alloop.tools.selection.cluster_margin import hac_clusters
from alloop.tools.selection.laplace import INTERCEPT_PRECISION, laplace_posterior


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fitted_head(k: int, n: int = 60, d: int = 4, C: float = 2.0, seed: int = 0, anchor=None) -> tuple:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.normal(size=(n, d)) + 1.5 * np.eye(k, d)[y]
    head = LogisticHead(C=C, n_classes=k).fit(x, y, anchor=anchor)
    return head, x, y


def torch_hessian(head: LogisticHead, x: np.ndarray, y: np.ndarray, precision: float = 1.0) -> np.ndarray:
    """The Hessian of C·Σ loss + precision·‖W‖²/2 + ε‖b‖²/2 at the head's weights, by autograd."""
    import torch

    coef, intercept = head.model_.coef_, head.model_.intercept_
    k, d = coef.shape
    theta = torch.tensor(np.hstack([coef, intercept[:, None]]).ravel())
    X, Y = torch.tensor(x), torch.tensor(y)

    def objective(t: torch.Tensor) -> torch.Tensor:
        weights = t.reshape(k, d + 1)
        W, b = weights[:, :-1], weights[:, -1]
        z = X @ W.T + b
        if k == 1:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z[:, 0], Y.double(), reduction="sum")
        else:
            loss = torch.nn.functional.cross_entropy(z, Y, reduction="sum")
        return head.C * loss + precision * (W**2).sum() / 2 + INTERCEPT_PRECISION * (b**2).sum() / 2

    return torch.autograd.functional.hessian(objective, theta).numpy()


@pytest.mark.parametrize("k", [2, 3])
def test_laplace_covariance_is_the_inverse_hessian_by_torch_autograd(k):
    head, x, y = fitted_head(k)
    posterior = laplace_posterior(head, x)
    assert posterior.kind == "full"
    np.testing.assert_allclose(posterior.covariance(), np.linalg.inv(torch_hessian(head, x, y)), rtol=1e-6, atol=1e-9)


def test_an_anchored_head_adds_its_pull_to_the_prior_precision():
    previous, x, y = fitted_head(3, seed=1)
    head = LogisticHead(C=2.0, n_classes=3, anchor_pull=4.0).fit(x, y, anchor=previous)
    assert head.anchored_
    expected = np.linalg.inv(torch_hessian(head, x, y, precision=5.0))
    np.testing.assert_allclose(laplace_posterior(head, x).covariance(), expected, rtol=1e-6, atol=1e-9)


def test_design_predictors_join_the_posterior_as_the_head_standardizes_them():
    from alloop.tools.model.heads import Design

    head, x, y = fitted_head(3)
    design = Design(predictors=np.random.default_rng(3).normal(5.0, 2.0, size=(len(y), 1)), predictor_names=("age",))
    head = LogisticHead(C=2.0, n_classes=3).fit(x, y, design)
    posterior = laplace_posterior(head, x, design)
    augmented = head._with_predictors(x, design)  # features and the standardized predictor
    np.testing.assert_allclose(
        posterior.covariance(), np.linalg.inv(torch_hessian(head, augmented, y)), rtol=1e-6, atol=1e-9
    )
    draw = next(posterior.probability_draws(x[:5], 1, np.random.default_rng(0), design.subset(np.arange(5))))
    assert draw.shape == (5, 3)


def test_the_diagonal_fallback_keeps_the_hessian_diagonal_and_draws_follow_the_covariance():
    head, x, y = fitted_head(3)
    hessian = torch_hessian(head, x, y)
    diagonal = laplace_posterior(head, x, full_max=0)
    assert diagonal.kind == "diagonal"
    np.testing.assert_allclose(np.diag(diagonal.covariance()), 1 / np.diag(hessian), rtol=1e-6)
    full = laplace_posterior(head, x)
    draws = full.sample_weights(40000, np.random.default_rng(0))
    cov = full.covariance()
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose((draws.mean(0) - full.mean) / sd, 0, atol=0.03)
    np.testing.assert_allclose(np.cov(draws.T) / np.outer(sd, sd), cov / np.outer(sd, sd), atol=0.03)


def test_bald_terms_equal_the_expected_kl_to_the_mean_and_known_cases():
    draws = np.random.default_rng(0).dirichlet([0.5, 0.5, 0.5], size=(7, 20))
    mi, predictive, expected = bald_terms(iter(draws))
    mean = draws.mean(0)
    kl = (draws * (np.log(draws) - np.log(mean))).sum(-1).mean(0)  # I[y; θ] = E_θ KL(p_θ ‖ p̄)
    np.testing.assert_allclose(mi, kl, atol=1e-10)
    np.testing.assert_allclose(predictive - expected, mi, atol=1e-10)
    certain_but_split = [np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])]
    assert bald_terms(certain_but_split)[0][0] == pytest.approx(np.log(2))  # all epistemic
    unsure_alike = [np.array([[0.5, 0.5]])] * 2
    assert bald_terms(unsure_alike)[0][0] == pytest.approx(0.0)  # all aleatoric


def test_bald_from_the_head_matches_a_direct_numpy_monte_carlo():
    """Draws through the head (temperature included) against numpy's multivariate normal and softmax."""
    head, x, _ = fitted_head(3)
    head.temperature_ = 1.7
    posterior = laplace_posterior(head, x)
    items = np.random.default_rng(5).normal(size=(8, 4)) * 2
    ours, _, _ = bald_terms(posterior.probability_draws(items, 4000, np.random.default_rng(1)))

    thetas = np.random.default_rng(2).multivariate_normal(posterior.mean, posterior.covariance(), size=4000)
    probs = []
    for theta in thetas:
        w = theta.reshape(3, 5)
        z = (items @ w[:, :4].T + w[:, 4]) / 1.7
        e = np.exp(z - z.max(1, keepdims=True))
        probs.append(e / e.sum(1, keepdims=True))
    probs = np.stack(probs)
    mean = probs.mean(0)
    reference = -(mean * np.log(mean)).sum(1) + (probs * np.log(probs)).sum(2).mean(0)
    np.testing.assert_allclose(ours, reference, atol=0.01, rtol=0.05)
    assert reference.max() > 0.05  # a case where the posterior matters


def test_bald_refuses_a_head_without_a_posterior_and_names_what_works():
    from alloop.tools.model.gaussian import GaussianHead

    with pytest.raises(InputError, match="use margin, entropy, badge, cluster_margin"):
        laplace_posterior(GaussianHead(), np.zeros((3, 2)))


def test_hac_clusters_match_scikit_learns_average_linkage():
    from sklearn.cluster import AgglomerativeClustering

    rng = np.random.default_rng(0)
    vectors = unit(np.repeat(rng.normal(size=(4, 8)), [3, 5, 8, 14], axis=0) + 0.4 * rng.normal(size=(30, 8)))
    for k in (2, 4, 6):
        ours = hac_clusters(vectors, k)
        theirs = AgglomerativeClustering(n_clusters=k, linkage="average", metric="cosine").fit_predict(vectors)
        assert {frozenset(np.flatnonzero(ours == c)) for c in set(ours)} == {
            frozenset(np.flatnonzero(theirs == c)) for c in set(theirs)
        }


def test_cluster_margin_spreads_low_margin_items_over_clusters_smallest_first():
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(4, 16)))
    sizes = [100, 100, 100, 100]
    embeddings = unit(np.repeat(centres, sizes, axis=0) + 0.05 * rng.normal(size=(400, 16)))
    margin = np.full(400, 0.9)
    unsure = np.r_[0:30, 100:105, 200:202, 300:303]  # 40 low-margin items: 30 in blob 0, few elsewhere
    margin[unsure] = np.linspace(0.01, 0.2, 40)
    probs = np.stack([(1 + margin) / 2, (1 - margin) / 2], axis=1)
    p = SelectionProblem(
        n=4, rng=np.random.default_rng(1), duplicate_threshold=0.999, embeddings=embeddings, probs=probs
    )
    p.options["hybrid_factor"] = 10
    picks = get_strategy("cluster_margin").select(p)
    positions = [x.position for x in picks]
    assert set(positions) <= set(unsure.tolist())  # only among the 10 × 4 lowest margins
    assert {pos // 100 for pos in positions} == {0, 1, 2, 3}  # one per blob, not four from the crowded one
    assert all("turn 1" in x.reason and "cluster_margin: margin" in x.reason for x in picks)
    assert "(size 30," in picks[-1].reason  # the largest cluster comes last


def test_quotas_by_largest_remainder_worked_by_hand():
    assert quotas(np.array([0.5, 0.3, 0.2]), 7).tolist() == [4, 2, 1]  # floors 3, 2, 1; the one left goes to the .5
    assert quotas(np.full(3, 1 / 3), 10).tolist() == [4, 3, 3]
    assert quotas(np.array([0.0, 1.0]), 5).tolist() == [0, 5]
    np.testing.assert_allclose(target_shares(["a", "b"], {"a": 3, "b": 1}), [0.75, 0.25])
    with pytest.raises(InputError, match=r"missing: \['b'\] \(give 0"):
        target_shares(["a", "b"], {"a": 1.0})


def test_class_balance_fills_each_quota_with_its_most_uncertain_and_a_shortfall_from_the_rest():
    rng = np.random.default_rng(0)
    predicted = np.repeat([0, 1, 2], [60, 38, 2])  # class c is nearly absent from the predictions
    margin = rng.uniform(0.05, 0.95, size=100)
    probs = np.zeros((100, 3))
    probs[np.arange(100), predicted] = (1 + margin) / 2 + 0.01
    probs[np.arange(100), (predicted + 1) % 3] = (1 - margin) / 2 - 0.01
    probs /= probs.sum(1, keepdims=True)
    p = SelectionProblem(
        n=9, rng=np.random.default_rng(1), duplicate_threshold=0.99, probs=probs, labels=["a", "b", "c"]
    )
    picks = get_strategy("class_balance").select(p)
    got = {label: [x.position for x in picks if f"predicted {label!r}, quota 3 of 9" in x.reason] for label in "abc"}
    true_margin = probs.max(1) - np.sort(probs, 1)[:, -2]
    for c, label in enumerate("abc"):
        members = np.flatnonzero(predicted == c)
        assert sorted(got[label]) == sorted(members[np.argsort(true_margin[members])][: min(3, len(members))])
    fill = [x for x in picks if x.reason.startswith("class_balance fill")]
    assert len(fill) == 1 and "too few candidates predicted 'c' 1" in fill[0].reason
    assert len({x.position for x in picks}) == 9


# --------------------------------------------------------------------------- real data


@pytest.fixture
def scored_loop(looped_copy, ctx):
    from alloop.tools.score_pool import ScoreInput, score_pool

    score_pool(ScoreInput(run=looped_copy), ctx)
    return looped_copy


@pytest.mark.parametrize("name", ["bald", "cluster_margin", "class_balance"])
def test_each_strategy_selects_a_valid_batch_on_bbc_news(scored_loop, ctx, name):
    from alloop.tools.run.labels import answered_items
    from alloop.tools.select_batch import SelectInput, select_batch

    run = ctx.root.run(scored_loop)
    out = select_batch(SelectInput(run=scored_loop, strategy=name, batch_size=10), ctx)
    rows = run.selection(out.round)
    ids = [r.item_id for r in rows]
    assert out.n_selected == len(ids) == len(set(ids)) == 10
    earlier = {r.item_id for k in run.selection_rounds() if k != out.round for r in run.selection(k)}
    assert not set(ids) & (answered_items(run.labels()) | set(run.heldout().ids) | earlier)
    assert all(r.strategy == name and r.reason.startswith(name) for r in rows)
    if name == "bald":  # 5 classes × 385 parameters: the full Hessian
        assert all("full Laplace" in r.reason for r in rows)
        mi = [float(r.reason.split("mutual information ")[1].split(" ")[0]) for r in rows]
        assert mi == sorted(mi, reverse=True) and mi[0] > 0


def test_class_balance_follows_the_spec_targets_on_bbc_news(scored_loop, ctx):
    from alloop.tools.report.datasets import BBC_LABELS
    from alloop.tools.select_batch import SelectInput, select_batch

    run = ctx.root.run(scored_loop)
    spec = run.spec()
    targets = {label: 0.0 for label in BBC_LABELS} | {"business": 0.6, "tech": 0.4}
    run.write_spec(
        spec.model_copy(update={"selection": spec.selection.model_copy(update={"class_targets": targets})}), "test"
    )
    out = select_batch(SelectInput(run=scored_loop, strategy="class_balance", batch_size=10), ctx)
    predicted = [r.prediction for r in run.selection(out.round)]
    assert sorted(predicted) == ["business"] * 6 + ["tech"] * 4
