"""A judge never passes for a human: with pseudo-labeling off, a run with a judge has exactly the
gold_* figures of the same run without one. Both runs are made with RunRoot.create and trained
with the real train_glmm (frozen encoder, logistic head)."""

from __future__ import annotations

from alloop.tools.base import ToolContext
from alloop.tools.llm_judge import LlmJudgeInput, llm_judge
from alloop.tools.run.labels import training_labels
from alloop.tools.train_glmm import TrainInput, train_glmm

from .conftest import FakeSampler, create_run, make_spec

USES = ["evaluation", "prioritization", "adjudication", "pseudo_labeling"]


def gold_columns(run) -> dict:
    row = run.results()[-1]
    return {k: v for k, v in row.model_dump().items() if k.startswith("gold_")}


def use_the_judge_everywhere(ctx, name):
    llm_judge(LlmJudgeInput(run=name, use="pseudo_labeling", limit=12), ctx)
    llm_judge(LlmJudgeInput(run=name, use="adjudication"), ctx)
    llm_judge(LlmJudgeInput(run=name, use="evaluation"), ctx)
    llm_judge(LlmJudgeInput(run=name, use="prioritization", kind="score", limit=5), ctx)


def test_gold_figures_are_identical_with_and_without_a_judge_when_pseudo_labeling_is_off(root):
    ctx = ToolContext(root=root, sampler=FakeSampler())
    plain = create_run(root, make_spec("plain"))
    judged = create_run(root, make_spec("judged", allowed=True, uses=USES, pseudo_labels_in_training=False))
    use_the_judge_everywhere(ctx, "judged")
    assert sum(e.source == "judge" for e in judged.labels()) == 14  # 12 pseudo-labels, 2 adjudications

    heldout = set(plain.heldout().ids)
    a = training_labels(plain.spec(), plain.labels(), heldout)
    b = training_labels(judged.spec(), judged.labels(), heldout)
    assert (a.item_ids, a.labels, b.n_pseudo) == (b.item_ids, b.labels, 0)

    trained_plain = train_glmm(TrainInput(run="plain"), ctx)
    trained_judged = train_glmm(TrainInput(run="judged"), ctx)
    assert trained_judged.n_pseudo_labeled == 0 and trained_judged.n_labeled == trained_plain.n_labeled
    assert gold_columns(judged) == gold_columns(plain)
    assert gold_columns(plain)["gold_n"] == 6

    # judge figures for the trained round land in judge_* columns; gold_* stay as they were
    out = llm_judge(LlmJudgeInput(run="judged", use="evaluation", round=trained_judged.round), ctx)
    assert out.results_updated
    row = judged.results()[-1]
    assert row.judge_n == 6 and row.judge_agreement_with_gold == 1.0
    assert gold_columns(judged) == gold_columns(plain)


def test_pseudo_labels_enter_training_only_where_the_spec_allows_and_the_row_counts_them(root):
    ctx = ToolContext(root=root, sampler=FakeSampler())
    create_run(root, make_spec("pseudo", allowed=True, uses=USES, pseudo_labels_in_training=True))
    out = llm_judge(LlmJudgeInput(run="pseudo", use="pseudo_labeling", limit=12), ctx)
    assert out.labels_enter_training
    llm_judge(LlmJudgeInput(run="pseudo", use="adjudication"), ctx)  # adjudications never count as pseudo-labels
    trained = train_glmm(TrainInput(run="pseudo"), ctx)
    assert trained.n_pseudo_labeled == 12
    run = ctx.root.run("pseudo")
    assert run.results()[-1].n_pseudo_labeled == 12
    assert run.results()[-1].gold_n == 6  # gold is still the held-out gold set, nothing else


def test_a_whole_loop_with_a_judge_keeps_the_batches_and_gold_figures_of_the_loop_without(root):
    """Seed, label, (judge), train, score, select, label, train: a judge that may not train changes
    nothing people see or the gold figures say, not even which items are asked next."""
    import json

    from alloop.tools.score_pool import ScoreInput, score_pool
    from alloop.tools.seed_set import SeedInput, seed_set
    from alloop.tools.select_batch import SelectInput, select_batch
    from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator

    from .conftest import keyword_label, pool_rows

    root.path.mkdir(parents=True, exist_ok=True)
    gold = "\n".join(json.dumps({"id": r["id"], "label": keyword_label(r["text"])}) for r in pool_rows())
    (root.path / "gold.jsonl").write_text(gold + "\n", encoding="utf-8")
    ctx = ToolContext(root=root, sampler=FakeSampler())
    runs = {}
    for name in ("plain", "judged"):
        runs[name] = create_run(root, make_spec(name, allowed=True, uses=USES), with_labels=False)
        seed_set(SeedInput(run=name, strategy="diverse", size=6), ctx)
        simulate_annotator(SimulateAnnotatorInput(run=name, gold="gold.jsonl", round=0), ctx)
        if name == "judged":
            llm_judge(LlmJudgeInput(run=name, use="pseudo_labeling", limit=12), ctx)
            llm_judge(LlmJudgeInput(run=name, use="prioritization", kind="score", limit=6), ctx)
        train_glmm(TrainInput(run=name), ctx)
        score_pool(ScoreInput(run=name), ctx)
        if name == "judged":
            llm_judge(LlmJudgeInput(run=name, use="evaluation"), ctx)
        select_batch(SelectInput(run=name, batch_size=4), ctx)
        simulate_annotator(SimulateAnnotatorInput(run=name, gold="gold.jsonl"), ctx)
        train_glmm(TrainInput(run=name), ctx)
    plain, judged = runs["plain"], runs["judged"]
    assert sum(e.source == "judge" for e in judged.labels()) == 12
    assert [r.item_id for r in judged.selection(1)] == [r.item_id for r in plain.selection(1)]
    strip = lambda rows: [{k: v for k, v in r.model_dump().items() if k.startswith("gold_")} for r in rows]  # noqa: E731
    assert strip(judged.results()) == strip(plain.results())
    assert len(judged.results()) == 2 and judged.results()[0].judge_n == 6
