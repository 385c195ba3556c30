"""Agreement on option sets (MASI, Jaccard α, checked against nltk) and on written answers."""

from __future__ import annotations

import itertools

import krippendorff
import numpy as np
import pytest
from nltk.metrics import agreement as nltk_agreement
from nltk.metrics import distance as nltk_distance

from alloop.tools import agreement as ag
from alloop.tools.agreement.answers import answer_key, normalize_answer
from alloop.tools.agreement.sets import distance_matrix, jaccard_distance, masi_distance
from alloop.tools.base import ToolContext
from alloop.tools.check_convergence import CheckConvergenceInput, check_convergence
from alloop.tools.errors import InputError
from alloop.tools.model.generative import SCORE_COLUMNS
from alloop.tools.model.task_types import predicted
from alloop.tools.run.items import ItemTable
from alloop.tools.run.models import ModelDir, Predictions
from alloop.tools.run.rundir import RunRoot
from alloop.tools.run.schema import LabelEvent, ResultRow, StoppingSpec, TaskSpec

from .agreement_data import KRIPPENDORFF_2011, KRIPPENDORFF_2011_ALPHA, matrix_rows

EMOTIONS = ["anger", "fear", "joy", "sadness", "surprise"]
# Four coders tag the emotions of twelve sentences (a set each; None: not coded).
TAGS = [
    [["joy"], ["anger", "fear"], ["sadness"], ["joy", "surprise"], [], ["fear"], ["anger"], None,
     ["joy"], ["sadness", "fear"], ["surprise"], ["anger", "sadness"]],
    [["joy"], ["anger"], ["sadness"], ["surprise"], [], ["fear", "sadness"], ["anger"], ["joy"],
     ["joy", "surprise"], ["sadness"], None, ["anger"]],
    [["joy", "surprise"], ["fear"], ["sadness", "anger"], ["joy", "surprise"], ["fear"], ["fear"], None,
     ["joy"], ["joy"], ["sadness", "fear"], ["surprise", "joy"], ["sadness"]],
    [None, ["anger", "fear"], ["sadness"], ["joy"], [], ["fear"], ["anger", "surprise"], ["joy"],
     ["surprise"], ["fear"], ["surprise"], ["anger", "sadness"]],
]  # fmt: skip


def nltk_alpha(matrix, distance):
    """nltk's α; two empty sets are equal (distance 0), where nltk's own distances divide by zero."""
    data = [
        (f"c{i}", f"u{j}", frozenset(value))
        for i, line in enumerate(matrix)
        for j, value in enumerate(line)
        if value is not None
    ]
    return nltk_agreement.AnnotationTask(data=data, distance=lambda a, b: distance(a, b) if a or b else 0.0).alpha()


def test_nltk_gives_the_set_distances_of_its_documentation():
    a, b = frozenset({1, 2, 3, 4}), frozenset({3, 4, 5})
    assert jaccard_distance(a, b) == pytest.approx(0.6) and masi_distance(a, b) == pytest.approx(0.8666666666666667)
    assert masi_distance(frozenset({1, 2}), frozenset({1, 2, 3, 4})) == pytest.approx(0.6666666666666667)
    sets = [frozenset(s) for s in ({"a"}, {"a", "b"}, {"b", "c"}, {"c"}, {"a", "b", "c"}, {"d"})]
    for x, y in itertools.product(sets, repeat=2):
        assert masi_distance(x, y) == pytest.approx(nltk_distance.masi_distance(x, y))
        assert jaccard_distance(x, y) == pytest.approx(nltk_distance.jaccard_distance(x, y))
    # Two empty answers are equal (nltk divides by zero there); empty against chosen is as far as can be.
    assert masi_distance(frozenset(), frozenset()) == 0 and jaccard_distance(frozenset(), frozenset({"a"})) == 1


@pytest.mark.parametrize("level", ["masi", "jaccard"])
def test_distance_matrix_equals_the_distance_on_every_pair(level):
    domain = [(), ("a",), ("a", "b"), ("b", "c"), ("a", "b", "c"), ("d",)]
    expected = [[ag_distance(level)(frozenset(x), frozenset(y)) for y in domain] for x in domain]
    assert np.allclose(distance_matrix(domain, level), expected)


def ag_distance(level):
    return masi_distance if level == "masi" else jaccard_distance


@pytest.mark.parametrize(("level", "distance"), [("masi", "masi_distance"), ("jaccard", "jaccard_distance")])
def test_set_alpha_equals_nltk(level, distance):
    rows = matrix_rows(TAGS)
    ratings = ag.Ratings.from_rows(rows, level=level, labels=EMOTIONS)
    found = ag.agreement(ratings, bootstrap_samples=300)
    expected = nltk_alpha(TAGS, getattr(nltk_distance, distance))
    assert found.value == pytest.approx(expected, abs=1e-12)
    assert found.level == level and found.ci_low < found.value < found.ci_high
    # The same answers written as text 'a|b' (as labels.jsonl and predictions.npz hold them).
    as_text = [{**r, "value": "|".join(r["value"])} for r in rows]
    assert ag.agreement(ag.Ratings.from_rows(as_text, level=level, labels=EMOTIONS)).value == pytest.approx(expected)


def test_partial_credit_ranks_masi_between_exact_match_and_jaccard():
    rows = matrix_rows(TAGS)
    alpha = {
        level: ag.agreement(ag.Ratings.from_rows(rows, level=level, labels=EMOTIONS)).value
        for level in ("masi", "jaccard")
    }
    exact = ag.agreement(ag.Ratings.from_rows([{**r, "value": "|".join(r["value"])} for r in rows])).value
    # MASI gives overlapping sets less credit than Jaccard does, and more than exact identity.
    assert exact < alpha["masi"] < alpha["jaccard"]


def test_distance_alpha_with_the_nominal_distance_gives_the_published_value():
    ratings = ag.Ratings.from_rows(matrix_rows(KRIPPENDORFF_2011))
    value = ag.distance_alpha(ratings, 1.0 - np.eye(ratings.n_values)).value()
    assert round(value, 3) == KRIPPENDORFF_2011_ALPHA["nominal"]


def test_bad_option_sets_are_named():
    with pytest.raises(InputError, match=r"annotations:2: options \['rage'\] of value .* not in the label schema"):
        ag.Ratings.from_rows(
            [{"unit": 1, "coder": "a", "value": ["joy"]}, {"unit": 1, "coder": "b", "value": ["rage"]}],
            level="masi",
            labels=EMOTIONS,
        )
    with pytest.raises(InputError, match="annotations:1: value 3 is not an option set"):
        ag.Ratings.from_rows(
            [{"unit": 1, "coder": "a", "value": 3}, {"unit": 1, "coder": "b", "value": "joy"}], level="jaccard"
        )
    ratings = ag.Ratings.from_rows(matrix_rows(TAGS), level="masi", labels=EMOTIONS)
    with pytest.raises(InputError, match="Fleiss' κ is for nominal data"):
        ag.agreement(ratings, "fleiss_kappa")


def multi_select_run(tmp_path):
    """Twelve held-out sentences tagged by the four coders of TAGS; the model's option
    probabilities turned into sets by the multi_select head's own rule (p > 0.5)."""
    root = RunRoot(tmp_path / "runs")
    spec = TaskSpec(
        run="emotions",
        task_type="multi_select",
        labels=EMOTIONS,
        stopping=StoppingSpec(plateau_epsilon=None, agreement_threshold=0.5, agreement_min_items=10),
    )
    n = len(TAGS[0])
    run = root.create(
        spec,
        ItemTable.from_rows([{"id": f"p{j}", "text": f"pool {j}"} for j in range(4)]),
        ItemTable.from_rows([{"id": f"u{j + 1}", "text": f"sentence {j}"} for j in range(n)]),
    )
    run.append_labels(
        [
            LabelEvent(item_id=f"u{j + 1}", label=value, source="human", annotator=f"c{i + 1}", round=0)
            for i, line in enumerate(TAGS)
            for j, value in enumerate(line)
            if value is not None
        ]
    )
    run.upsert_result(ResultRow(round=1, model_version="m1"))
    # The model agrees with the second coder, except that it adds 'surprise' to the fourth item.
    model_sets = [set(TAGS[1][j] or TAGS[0][j]) for j in range(n)]
    model_sets[3] |= {"surprise"}
    probs = np.array([[0.9 if o in s else 0.1 for o in EMOTIONS] for s in model_sets], dtype=np.float32)
    pool_probs = np.full((4, len(EMOTIONS)), 0.2, dtype=np.float32)
    model = ModelDir(run, 1)
    model.path.mkdir(parents=True)
    model.save_predictions(
        Predictions(
            pool_ids=np.array([f"p{j}" for j in range(4)]),
            pool_pred=predicted(spec, pool_probs),
            heldout_ids=np.array([f"u{j + 1}" for j in range(n)]),
            heldout_pred=predicted(spec, probs),
            labels=EMOTIONS,
            model_version="m1",
            pool_probs=pool_probs,
            heldout_probs=probs,
        )
    )
    return root, run, model_sets


def test_check_convergence_measures_option_sets_with_masi(tmp_path):
    root, run, model_sets = multi_select_run(tmp_path)

    out = check_convergence(CheckConvergenceInput(run="emotions", bootstrap=200), ToolContext(root=root))

    found = out.agreement
    assert found.level == "masi" and found.distance.startswith("MASI distance between option sets")
    assert found.ceiling_from == "held-out" and found.n_items == 12 and found.people == ["c1", "c2", "c3", "c4"]
    assert found.human_ceiling.value == pytest.approx(nltk_alpha(TAGS, nltk_distance.masi_distance))
    model_rows = [{"unit": f"u{j + 1}", "coder": "model", "value": sorted(s)} for j, s in enumerate(model_sets)]
    with_model = ag.Ratings.from_rows(matrix_rows(TAGS) + model_rows, level="masi", labels=EMOTIONS)
    assert found.model_human.value == pytest.approx(ag.agreement(with_model, focus="model").value)
    assert found.model_human.ci_low < found.model_human.value < found.model_human.ci_high
    assert out.summary().splitlines()[1].startswith("  krippendorff_alpha (masi: MASI distance between option sets")
    assert run.results()[0].agreement_human_ceiling == pytest.approx(found.human_ceiling.value, abs=1e-5)

    jaccard = check_convergence(
        CheckConvergenceInput(run="emotions", level="jaccard", bootstrap=0, record=False), ToolContext(root=root)
    ).agreement
    assert jaccard.distance == "Jaccard distance between option sets"
    assert jaccard.human_ceiling.value == pytest.approx(nltk_alpha(TAGS, nltk_distance.jaccard_distance))
    with pytest.raises(InputError, match="level 'ordinal' does not fit task type 'multi_select'; use masi or jaccard"):
        check_convergence(CheckConvergenceInput(run="emotions", level="ordinal", record=False), ToolContext(root=root))


def test_answers_are_compared_after_normalizing():
    assert normalize_answer("  The Bank of   England. ") == "the bank of england"
    assert normalize_answer("«Rates»!") == "rates" and normalize_answer("U.S. rates") == "u.s. rates"
    assert normalize_answer("...") == ""
    assert answer_key(["Rates.", " pound "], "cloze") == "rates | pound"
    assert answer_key("Rates.|POUND", "cloze") == answer_key(["rates", "pound"], "cloze")
    assert answer_key("either | or", "free_text") == "either | or"


PARAPHRASES = [  # (held-out prompt, ann, bob, model's answer as the generative head wrote it)
    ("rates rise", "Interest rates go up.", "interest rates go up", "Interest rates go up"),
    ("shares fall", "Shares drop", "Shares drop.", "shares drop"),
    ("team wins", "The team won", "The side won", "the team won!"),
    ("oil price", "Oil gets dearer", "oil  gets  dearer", "Oil gets cheaper"),
    ("new law", "A law is passed", "A law is passed.", "A law is passed"),
    ("strike ends", "The strike is over", "Workers return", "The strike is over."),
]


def test_free_text_agreement_is_exact_match_on_normalized_answers(tmp_path):
    root = RunRoot(tmp_path / "runs")
    spec = TaskSpec(
        run="para", task_type="free_text", stopping=StoppingSpec(agreement_threshold=0.9, agreement_min_items=5)
    )
    run = root.create(
        spec,
        ItemTable.from_rows([{"id": "p0", "text": "unlabeled"}]),
        ItemTable.from_rows([{"id": f"h{i}", "text": p, "label": a} for i, (p, a, _, _) in enumerate(PARAPHRASES)]),
    )
    run.append_labels(
        [
            LabelEvent(item_id=f"h{i}", label=answer, source="human", annotator=who, round=0)
            for i, row in enumerate(PARAPHRASES)
            for who, answer in (("ann", row[1]), ("bob", row[2]))
        ]
    )
    run.upsert_result(ResultRow(round=1, model_version="m1"))
    model = ModelDir(run, 1)
    model.path.mkdir(parents=True)
    model.save_predictions(  # as score_round stores the generative head's answers
        Predictions(
            pool_ids=np.array(["p0"]),
            pool_pred=np.array(["something"]),
            heldout_ids=np.array([f"h{i}" for i in range(len(PARAPHRASES))]),
            heldout_pred=np.array([row[3] for row in PARAPHRASES]),
            labels=list(SCORE_COLUMNS),
            model_version="m1",
            pool_probs=np.zeros((1, 2), dtype=np.float32),
            heldout_probs=np.zeros((len(PARAPHRASES), 2), dtype=np.float32),
        )
    )

    out = check_convergence(CheckConvergenceInput(run="para", bootstrap=100), ToolContext(root=root))

    found = out.agreement
    assert found.level == "nominal" and found.distance.startswith("exact match of normalized answers")
    # Normalized by hand: ann and bob differ on h2 and h5; the model departs from ann on h3 only.
    normalized = [  # (ann, bob, model) per item
        ("interest rates go up", "interest rates go up", "interest rates go up"),
        ("shares drop", "shares drop", "shares drop"),
        ("the team won", "the side won", "the team won"),
        ("oil gets dearer", "oil gets dearer", "oil gets cheaper"),
        ("a law is passed", "a law is passed", "a law is passed"),
        ("the strike is over", "workers return", "the strike is over"),
    ]
    keys = {coder: [item[k] for item in normalized] for k, coder in enumerate(("ann", "bob", "model"))}
    domain = sorted({k for answers in keys.values() for k in answers})
    data = np.array([[domain.index(k) for k in keys[c]] for c in ("ann", "bob")], dtype=float)
    assert found.human_ceiling.value == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    )
    rows = [{"unit": f"h{i}", "coder": c, "value": keys[c][i]} for c in keys for i in range(len(PARAPHRASES))]
    expected = ag.agreement(ag.Ratings.from_rows(rows), focus="model").value
    assert found.model_human.value == pytest.approx(expected)
    assert "exact match of normalized answers" in out.summary().splitlines()[1]
    with pytest.raises(InputError, match="level 'masi' does not fit task type 'free_text'; use nominal"):
        check_convergence(CheckConvergenceInput(run="para", level="masi", record=False), ToolContext(root=root))


def test_an_unknown_option_in_the_label_log_is_named_with_its_event(tmp_path):
    root, run, _ = multi_select_run(tmp_path)
    bad = LabelEvent(item_id="u2", label=["joy", "rage"], source="human", annotator="c5", round=1)
    run.append_labels([bad])
    with pytest.raises(InputError, match=rf"labels\.jsonl: event {bad.event_id} \(item 'u2', annotator 'c5'\): "):
        check_convergence(CheckConvergenceInput(run="emotions", record=False), ToolContext(root=root))
    assert run.results()[0].stop_decision == ""  # nothing written
