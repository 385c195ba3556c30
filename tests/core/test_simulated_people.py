"""People-level studies through the tools: simulated participants with a stated noise model, and
held-out overlap items that give check_convergence a human ceiling, with no hand-made files."""

from __future__ import annotations

import csv
import json
import random

import pytest
from scipy.stats import spearmanr

from alloop.tools.agreement import Ratings, krippendorff_alpha
from alloop.tools.check_convergence import CheckConvergenceInput, check_convergence
from alloop.tools.export_batch import ExportInput, export_batch
from alloop.tools.import_labels import ImportInput, import_labels
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.model.heads import load_head
from alloop.tools.people.noise import SimulatedPeople
from alloop.tools.people.overlap import heldout_overlap
from alloop.tools.run.models import ModelDir
from alloop.tools.seed_set import SeedInput, seed_set
from alloop.tools.simulate import SimulateInput, simulate
from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
from alloop.tools.train_glmm import TrainInput, train_glmm
from alloop.tools.write_report import ReportInput, write_report

SCALE = ["1", "2", "3", "4", "5"]
WORDS = ["awful", "poor", "fine", "good", "superb"]
ASPECTS = [
    "plot",
    "cast",
    "score",
    "pace",
    "ending",
    "script",
    "scenes",
    "camera",
    "music",
    "actors",
    "story",
    "dialogue",
    "sets",
    "tone",
    "humour",
    "villain",
]


def read_gold(*paths: str) -> dict[str, str]:
    gold = {}
    for path in paths:
        with open(path) as handle:
            gold |= {row["id"]: row["label"] for row in map(json.loads, handle)}
    return gold


@pytest.fixture
def ratings(tmp_path) -> dict[str, str]:
    """Files of an ordinal task: 80 short film reviews on a five-point scale, 20 more held out, and gold."""
    aspects = random.Random(0)
    rows = [
        {
            "id": f"r{n:03d}",
            "text": f"a {WORDS[n % 5]} film: {', '.join(aspects.sample(ASPECTS, 4))}",
            "label": SCALE[n % 5],
        }
        for n in range(100)
    ]
    files = {"pool": rows[:80], "heldout": rows[80:], "gold": rows[:80]}
    paths = {}
    for name, part in files.items():
        keep = {"pool": ("id", "text"), "heldout": ("id", "text", "label"), "gold": ("id", "label")}[name]
        paths[name] = tmp_path / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps({k: r[k] for k in keep}) + "\n" for r in part))
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture
def rating_run(ctx, ratings):
    """Make a ratings run: rating_run(name, **answers)."""

    def make(name: str = "ratings", **answers) -> str:
        settings = {"task_type": "ordinal_scale", "labels": SCALE, "batch_size": 10}
        interview_spec(
            InterviewInput(run=name, pool=ratings["pool"], heldout=ratings["heldout"], **settings | answers), ctx
        )
        return name

    return make


def answers(ctx, run: str) -> list[tuple[str, str, str]]:
    return sorted((e.item_id, e.annotator, str(e.label)) for e in ctx.root.run(run).labels())


def test_one_participant_without_noise_is_the_perfect_simulator_of_old(ctx, ratings, rating_run):
    run = rating_run()
    seed_set(SeedInput(run=run, strategy="random", size=10), ctx)
    out = simulate_annotator(SimulateAnnotatorInput(run=run, gold=ratings["gold"]), ctx)
    gold = read_gold(ratings["gold"])
    events = ctx.root.run(run).labels()
    assert (out.n_answered, out.n_heldout, out.noise_model) == (10, 0, "")
    assert all(e.annotator == "simulator" and e.label == gold[e.item_id] for e in events)
    assert {e.external_id for e in events} == {f"simulated:0:{e.item_id}" for e in events}
    assert all(e.extra == {"simulated": True, "gold_file": "gold.jsonl"} for e in events)


def test_several_participants_answer_every_item_reproducibly_with_their_noise_recorded(ctx, ratings, rating_run):
    for run in ("first", "second"):
        rating_run(run)
        seed_set(SeedInput(run=run, strategy="random", size=10), ctx)
        people = SimulateAnnotatorInput(run=run, gold=ratings["gold"], participants=4, noise=1.0, seed=7)
        assert simulate_annotator(people, ctx).n_answered == 40
        assert simulate_annotator(people, ctx).n_answered == 0  # a second call adds nothing
    assert answers(ctx, "first") == answers(ctx, "second")
    events = ctx.root.run("first").labels()
    assert {e.annotator for e in events} == {"sim-p01", "sim-p02", "sim-p03", "sim-p04"}
    assert all(e.source == "simulated" and e.extra["simulated"] for e in events)
    assert all(e.extra["noise"] == 1.0 and e.extra["seed"] == 7 for e in events)
    bias_of = {(e.annotator, e.extra["person_bias"]) for e in events}
    assert len(bias_of) == 4  # one bias per person, whatever the item
    assert len({e.extra["item_noise"] for e in events}) > 30  # item noise differs per answer
    assert "4 simulated participant(s)" in ctx.root.run("first").notes_path.read_text()


def test_a_different_seed_gives_other_people(ctx, ratings, rating_run):
    for run, seed in (("seed1", 1), ("seed2", 2)):
        rating_run(run)
        seed_set(SeedInput(run=run, strategy="random", size=10), ctx)
        simulate_annotator(
            SimulateAnnotatorInput(run=run, gold=ratings["gold"], participants=3, noise=1, seed=seed), ctx
        )
    assert answers(ctx, "seed1") != answers(ctx, "seed2")


@pytest.mark.parametrize(
    ("task_type", "labels", "level"),
    [("categorical", ["news", "sport", "arts", "science"], "nominal"), ("ordinal_scale", SCALE, "ordinal")],
)
def test_agreement_falls_as_noise_grows(task_type, labels, level):
    gold = [labels[n % len(labels)] for n in range(200)]
    alphas = []
    for noise in (0.0, 0.5, 1.0, 2.0, 4.0):
        people = SimulatedPeople(task_type, labels, participants=5, noise=noise, seed=0)
        rows = [
            {"unit": f"i{n}", "coder": name, "value": people.answer(name, f"i{n}", g).label}
            for n, g in enumerate(gold)
            for name in people.names
        ]
        alphas.append(krippendorff_alpha(Ratings.from_rows(rows, level=level, labels=labels)))
    assert alphas[0] == 1.0
    assert alphas == sorted(alphas, reverse=True) and alphas[-1] < 0.4


def test_glmm_recovers_the_participant_variance_of_simulated_people(ctx, ratings, rating_run):
    run = rating_run(prediction_unit="response", head="glmm", effects="random_intercepts")
    seed_set(SeedInput(run=run, strategy="random", size=30), ctx)
    simulate_annotator(SimulateAnnotatorInput(run=run, gold=ratings["gold"], participants=6, noise=1.0), ctx)
    trained = train_glmm(TrainInput(run=run), ctx)
    assert trained.n_labeled == 180  # one row per answer: 30 items × 6 people
    assert trained.card["head"]["fits"][0]["sd"]["participant:(Intercept)"] > 0.5
    (fit,) = load_head(ModelDir(ctx.root.run(run), trained.round).head_path).fits_
    term = next(i for i, t in enumerate(fit.frame.terms) if t.group == "participant")
    estimated = dict(zip(fit.frame.terms[term].levels, fit.ranef[term][:, 0], strict=True))
    true_bias = {e.annotator: e.extra["person_bias"] for e in ctx.root.run(run).labels()}
    people = sorted(true_bias)
    rho = spearmanr([true_bias[p] for p in people], [estimated[p] for p in people]).statistic
    assert rho > 0.8  # the model orders the people as their simulated biases do


def test_the_report_draws_the_glmm_fixed_effects_and_caterpillar_plots(ctx, ratings, rating_run):
    run = rating_run(prediction_unit="response", head="glmm", effects="random_intercepts")
    seed_set(SeedInput(run=run, strategy="random", size=20), ctx)
    simulate_annotator(SimulateAnnotatorInput(run=run, gold=ratings["gold"], participants=5, noise=1.0), ctx)
    trained = train_glmm(TrainInput(run=run), ctx)
    (fit,) = load_head(ModelDir(ctx.root.run(run), trained.round).head_path).fits_
    term = next(i for i, t in enumerate(fit.frame.terms) if t.group == "participant")
    card_modes = {level: mode for level, mode, _ in trained.card["head"]["fits"][0]["ranef"]["participant:(Intercept)"]}
    fitted = dict(zip(fit.frame.terms[term].levels, fit.ranef[term][:, 0].round(4), strict=True))
    assert card_modes == fitted  # the card carries the fit's own conditional modes

    write_report(ReportInput(run=run), ctx)

    page = (ctx.root.run(run).path / "report.html").read_text()
    section = page[page.index('<section id="glmm-effects">') :].split("</section>")[0]
    assert section.count("<img") == 1 + len(trained.card["head"]["fits"][0]["ranef"])  # forest + a caterpillar each
    assert 'alt="fixed effects with 95% Wald intervals"' in section
    assert 'alt="caterpillar plot of participant (Intercept)"' in section
    assert "participant (Intercept): 5 levels per panel" in section


def test_heldout_overlap_gives_check_convergence_a_human_ceiling(ctx, ratings, rating_run):
    run = rating_run(max_rounds=2)
    looped = simulate(
        SimulateInput(
            run=run, gold=ratings["gold"], rounds=2, batch_size=10, participants=3, noise=1.0, include_heldout=15
        ),
        ctx,
    )
    verdict = check_convergence(CheckConvergenceInput(run=run, bootstrap=0), ctx)
    found = verdict.agreement
    assert found is not None, verdict.agreement_note
    assert (found.n_items, found.n_people, found.people) == (15, 3, ["sim-p01", "sim-p02", "sim-p03"])
    assert 0 < found.human_ceiling.value < 1
    assert looped.rounds[-1]["n_labeled"] == 20  # held-out answers are never trained on
    heldout_events = [e for e in ctx.root.run(run).labels() if e.external_id.startswith("simulated:heldout")]
    assert {e.item_id for e in heldout_events} == set(heldout_overlap(ctx.root.run(run), 15))
    assert {e.extra["gold_file"] for e in heldout_events} == {"heldout set"}  # their gold is the run's own


def test_export_asks_every_annotator_for_heldout_items_until_two_people_answered(ctx, ratings, rating_run, tmp_path):
    run = rating_run()
    seed_set(SeedInput(run=run, strategy="random", size=10), ctx)
    out = export_batch(ExportInput(run=run, format="csv", include_heldout=5), ctx)
    assert (out.n_items, out.n_heldout) == (15, 5)
    with (ctx.root.run(run).path / out.file).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    asked = [r for r in rows if r["reason"].startswith("held-out overlap")]
    assert [r["id"] for r in asked] == heldout_overlap(ctx.root.run(run), 5)  # the items simulate_annotator answers
    assert all(r["suggestion"] == "" and r["confidence"] == "" for r in asked)  # nobody copies the model
    gold = read_gold(ratings["gold"], ratings["heldout"])
    for person in ("ana", "ben"):
        filled = tmp_path / f"{person}.csv"
        with filled.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({**r, "label": gold[r["id"]], "annotator": person} for r in rows)
        assert import_labels(ImportInput(run=run, file=str(filled)), ctx).n_added == 15
    assert export_batch(ExportInput(run=run, include_heldout=5), ctx).n_heldout == 0
