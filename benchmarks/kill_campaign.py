"""Random-kill campaign: SIGKILL an `alloop` command at a random moment, resume, check the review's invariants.

tests/core/test_crash.py kills every step in process at each fsync and rename; this is the slow,
real thing the reliability review (2026-11, §1) did: the `alloop` CLI runs one step in a
subprocess of its own process group, which gets SIGKILL after U(0.02, 0.97)·d (even trials) or
U(0.6, 0.97)·d (odd trials, nearer the writes), d being that step's measured duration (a step that
ends before its kill is not counted, is timed by that run, and is tried again). Then, as a
person would: `alloop status`, the same command again (unless its writes had all landed before the
kill, in the state the uninterrupted step leaves), the invariants (labels.jsonl parses, no
event or answer twice, every annotation_round_XX.jsonl in step with it, every selection file whole,
no results round twice, a row for every model, a free lock, no temp/staging/journal file), the
state compared with the uninterrupted step's, and the run carried to completion (`simulate`,
`write_report`). Data: a BBC News slice (200 pool titles, 60 held-out), the bundled MiniLM,
batches of 10, 3 rounds.

    .venv/bin/python benchmarks/kill_campaign.py --kills 40
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ALLOOP = str(ROOT / ".venv" / "bin" / "alloop")
RUN = "k"
LEFTOVER_MARKS = (".tmp", ".journal", "_encoder.", ".creating-")


def prepare(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Input files and the run states each step starts from (built with the tools, in this process)."""
    from alloop.tools.base import ToolContext
    from alloop.tools.check_convergence import CheckConvergenceInput, check_convergence
    from alloop.tools.interview_spec import InterviewInput, interview_spec
    from alloop.tools.report.datasets import BBC_LABELS, bbc_news
    from alloop.tools.run.rundir import RunRoot
    from alloop.tools.score_pool import ScoreInput, score_pool
    from alloop.tools.seed_set import SeedInput, seed_set
    from alloop.tools.select_batch import SelectInput, select_batch
    from alloop.tools.simulate_annotator import SimulateAnnotatorInput, simulate_annotator
    from alloop.tools.train_glmm import TrainInput, train_glmm

    rows = bbc_news()
    by_topic: dict[str, list[dict]] = {}
    for row in rows:
        by_topic.setdefault(row["label"], []).append(row)
    picked = [r for topic in sorted(by_topic) for r in by_topic[topic][:52]]
    pool = [r for i, r in enumerate(picked) if i % 52 < 40]
    heldout = [r for i, r in enumerate(picked) if i % 52 >= 40]
    inputs = folder / "inputs"
    inputs.mkdir(parents=True)

    def dump(name: str, items: list[dict]) -> Path:
        (inputs / name).write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
        return inputs / name

    files = {
        "pool": dump("pool.jsonl", [{"id": r["id"], "text": r["title"]} for r in pool]),
        "labeled_pool": dump(  # one in seven pool rows comes labeled: init imports them
            "labeled_pool.jsonl",
            [
                {"id": r["id"], "text": r["title"], **({"label": r["label"]} if i % 7 == 0 else {})}
                for i, r in enumerate(pool)
            ],
        ),
        "heldout": dump("heldout.jsonl", [{"id": r["id"], "text": r["title"], "label": r["label"]} for r in heldout]),
        "gold": dump("gold.jsonl", [{"id": r["id"], "label": r["label"]} for r in pool]),
        "answers": inputs / "answers.csv",
    }

    ctx = ToolContext(root=RunRoot(folder / "work"), inputs_anywhere=True)
    states = {"init": folder / "states" / "init"}
    states["init"].mkdir(parents=True)
    answers = InterviewInput(
        run=RUN,
        pool=str(files["pool"]),
        heldout=str(files["heldout"]),
        task_type="categorical",
        labels=BBC_LABELS,
        batch_size=10,
        max_rounds=3,
    )
    interview_spec(answers, ctx)
    gold = str(files["gold"])
    loop = [
        ("seed_set", lambda: seed_set(SeedInput(run=RUN, strategy="typical"), ctx)),
        ("simulate_annotator", lambda: simulate_annotator(SimulateAnnotatorInput(run=RUN, gold=gold), ctx)),
        ("train_glmm", lambda: train_glmm(TrainInput(run=RUN), ctx)),
        ("score_pool", lambda: score_pool(ScoreInput(run=RUN), ctx)),
        ("check_convergence", lambda: check_convergence(CheckConvergenceInput(run=RUN, bootstrap=200), ctx)),
        ("select_batch", lambda: select_batch(SelectInput(run=RUN), ctx)),
    ]
    for name, step in loop:
        states[name] = folder / "states" / name
        shutil.copytree(ctx.root.path, states[name])
        if name == "simulate_annotator":  # the seed batch answered by 100 coders: one import of 1,000 rows
            label = {r["id"]: r["label"] for r in pool}
            seed = [row.item_id for row in ctx.root.run(RUN).selection(0)]
            with files["answers"].open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["id", "label", "annotator"])
                writer.writerows([i, label[i], f"coder{k:03d}"] for i in seed for k in range(100))
        step()
    states["import_labels"] = states["simulate_annotator"]
    states["simulate"] = states["seed_set"]
    states["write_report"] = folder / "states" / "write_report"
    shutil.copytree(ctx.root.path, states["write_report"])
    return files, states


def command(step: str, files: dict[str, Path]) -> list[str]:
    """The CLI command of a step, as a person types it."""
    from alloop.tools.report.datasets import BBC_LABELS

    base = {
        "init": [
            "init", RUN, "--pool", str(files["labeled_pool"]), "--heldout", str(files["heldout"]),
            "--task-type", "categorical", "--labels", ",".join(BBC_LABELS),
            "--batch-size", "10", "--max-rounds", "3",
        ],
        "seed_set": ["seed-set", RUN, "--strategy", "typical"],
        "simulate_annotator": ["simulate-annotator", RUN, "--gold", str(files["gold"])],
        "import_labels": ["import-labels", RUN, "--file", str(files["answers"])],
        "train_glmm": ["train-glmm", RUN],
        "score_pool": ["score-pool", RUN],
        "check_convergence": ["check-convergence", RUN, "--bootstrap", "200"],
        "select_batch": ["select-batch", RUN],
        "simulate": ["simulate", RUN, "--gold", str(files["gold"]), "--rounds", "3"],
        "write_report": ["write-report", RUN],
    }[step]  # fmt: skip
    return [ALLOOP, *base]


def run_cli(args: list[str], root: Path, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*args, "--root", str(root)], capture_output=True, text=True, timeout=900)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[1:3])} failed ({done.returncode}): {done.stderr[-600:]}")
    return done


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if any(m in p.name for m in LEFTOVER_MARKS))


def violations(root: Path) -> list[str]:
    """The review's invariants, read from the files alone; each broken one is named."""
    run = root / RUN
    found: list[str] = []
    if not (run / "spec.json").is_file():
        return ["the run is missing"]
    lines = [ln for ln in (run / "labels.jsonl").read_text(encoding="utf-8").splitlines() if ln.strip()]
    try:
        events = [json.loads(line) for line in lines]
    except json.JSONDecodeError:
        return ["labels.jsonl does not parse"]
    if len({e["event_id"] for e in events}) != len(events):
        found.append("duplicate event_id")
    external = [(e["destination"], e["external_id"]) for e in events if e.get("external_id")]
    if len(set(external)) != len(external):
        found.append("duplicate answer")
    by_round: dict[int, list[str]] = {}
    for line, event in zip(lines, events, strict=True):
        by_round.setdefault(event["round"], []).append(line)
    for path in run.glob("annotation_round_[0-9][0-9].jsonl"):
        if path.read_text(encoding="utf-8").splitlines() != by_round.pop(int(path.stem[-2:]), []):
            found.append(f"{path.name} out of step")
    if by_round:
        found.append(f"no annotation file for rounds {sorted(by_round)}")
    for path in run.glob("selection_round_[0-9][0-9].jsonl"):
        try:
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except json.JSONDecodeError:
            found.append(f"{path.name} does not parse")
            continue
        if [r["rank"] for r in rows] != list(range(1, len(rows) + 1)) or len({r["item_id"] for r in rows}) != len(rows):
            found.append(f"{path.name} is not whole")
    with (run / "results.tsv").open(encoding="utf-8", newline="") as handle:
        results = list(csv.DictReader(handle, delimiter="\t"))
    rounds = [int(r["round"]) for r in results]
    if len(set(rounds)) != len(rounds):
        found.append("duplicate results round")
    for card_path in run.glob("models/round_[0-9][0-9]/card.json"):
        card = json.loads(card_path.read_text())
        if not any(int(r["round"]) == card["round"] and r["model_version"] == card["model_version"] for r in results):
            found.append(f"round {card['round']} has a model but no results row")
    with (run / ".lock").open("a+") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            found.append("stale lock")
    if leftovers(root):
        found.append(f"leftovers {leftovers(root)}")
    return found


def state_of(root: Path) -> dict[str, Any]:
    """What the run holds, minus what differs between two runs of one step (event ids, times)."""
    from alloop.tools.run.models import ModelDir, model_rounds
    from alloop.tools.run.rundir import RunRoot

    run = RunRoot(root).run(RUN)
    keep = ("item_id", "label", "source", "annotator", "round", "destination", "external_id")
    return {
        "labels": sorted(Counter(tuple(str(getattr(e, k)) for k in keep) for e in run.labels()).items()),
        "selections": {r: [row.item_id for row in run.selection(r)] for r in run.selection_rounds()},
        "results": [(r.round, r.model_version, r.strategy, r.n_batch, r.stop_decision) for r in run.results()],
        "predictions": {r: ModelDir(run, r).predictions().model_version for r in model_rounds(run, "predictions")},
    }


def complete(root: Path, gold: Path) -> list[str]:
    """Carry the run to the end of its 3 rounds and write the report (in process: the encoder loads once)."""
    from alloop.tools.base import ToolContext
    from alloop.tools.run.rundir import RunRoot
    from alloop.tools.simulate import SimulateInput, simulate
    from alloop.tools.write_report import ReportInput, write_report

    ctx = ToolContext(root=RunRoot(root), inputs_anywhere=True)
    simulate(SimulateInput(run=RUN, gold=str(gold), rounds=3), ctx)
    write_report(ReportInput(run=RUN), ctx)
    run = ctx.root.run(RUN)
    problems = violations(root)
    if [r.round for r in run.results()] != [1, 2, 3]:
        problems.append(f"completed with rounds {[r.round for r in run.results()]}")
    if not run.report_path.is_file():
        problems.append("no report")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "kill_campaign.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="alloop-kill-"))
    started = time.perf_counter()
    files, states = prepare(work)
    steps = ["init", "seed_set", "simulate_annotator", "import_labels", "train_glmm", "score_pool",
             "check_convergence", "select_batch", "simulate", "write_report"]  # fmt: skip
    duration: dict[str, float] = {}
    reference: dict[str, Any] = {}
    for step in steps:  # each step uninterrupted once: its duration and the state it leaves
        root = work / "reference" / step
        shutil.copytree(states[step], root)
        begun = time.perf_counter()
        run_cli(command(step, files), root)
        duration[step] = time.perf_counter() - begun
        reference[step] = state_of(root)
        print(f"{step}: {duration[step]:.1f} s uninterrupted", flush=True)

    trials: list[dict[str, Any]] = []
    attempt = 0
    while len(trials) < args.kills:
        step = steps[len(trials) % len(steps)]  # a step that finished before its kill is tried again
        low = 0.02 if len(trials) % 2 == 0 else 0.6
        delay = rng.uniform(low, 0.97) * duration[step]
        attempt += 1
        root = work / "trials" / f"{attempt:03d}-{step}"
        shutil.copytree(states[step], root)
        process = subprocess.Popen(
            [*command(step, files), "--root", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        begun = time.perf_counter()
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            pass
        else:  # the machine was quicker than when the step was timed: time it by this run
            duration[step] = time.perf_counter() - begun
            print(f"  {step}: finished before the kill at {delay:.2f} s (not counted)", flush=True)
            shutil.rmtree(root, ignore_errors=True)
            continue
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        after_kill = violations(root) if (root / RUN / "spec.json").is_file() else []
        trial: dict[str, Any] = {"step": step, "delay_s": round(delay, 3), "of_s": round(duration[step], 2)}
        try:
            if (root / RUN / "spec.json").is_file():
                run_cli([ALLOOP, "status", RUN], root)
            trial["landed_before_the_kill"] = (root / RUN / "spec.json").is_file() and state_of(root) == reference[step]
            if not trial["landed_before_the_kill"]:  # else the step had written all it writes: nothing to rerun
                run_cli(command(step, files), root)
            trial["after_resume"] = violations(root)
            trial["same_as_uninterrupted"] = state_of(root) == reference[step]
            trial["after_completion"] = complete(root, files["gold"])
        except Exception as exc:  # a failure to resume is what the campaign counts
            trial["resume_error"] = f"{type(exc).__name__}: {exc}"[:400]
        notes = (root / RUN / "notes.md").read_text(encoding="utf-8") if (root / RUN).is_dir() else ""
        trial |= {
            "found_after_kill": after_kill,
            "repaired": notes.count("repair after an interrupted step"),
            "undone": notes.count("undid the writes of"),
            "torn_set_aside": len(list((root / RUN).glob("*.torn-*"))) if (root / RUN).is_dir() else 0,
        }
        trials.append(trial)
        ok = not trial.get("resume_error") and not trial.get("after_resume") and trial.get("same_as_uninterrupted")
        print(f"{len(trials):3d} {step:<18} kill at {delay:5.2f}/{duration[step]:.2f} s: {'ok' if ok else trial}")
        shutil.rmtree(root, ignore_errors=True)

    summary = summarize(trials, attempt, time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "durations_s": duration, "trials": trials}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    shutil.rmtree(work, ignore_errors=True)


def summarize(trials: list[dict[str, Any]], attempts: int, seconds: float) -> dict[str, Any]:
    def count(test: Any) -> int:
        return sum(1 for t in trials if test(t))

    return {
        "kills": len(trials),
        "finished_before_the_kill": attempts - len(trials),
        "killed_after_their_writes_landed": count(lambda t: t.get("landed_before_the_kill")),
        "per_step": dict(Counter(t["step"] for t in trials)),
        "resume_errors": count(lambda t: t.get("resume_error")),
        "violations_after_resume": count(lambda t: t.get("after_resume")),
        "not_the_uninterrupted_state": count(lambda t: t.get("same_as_uninterrupted") is False),
        "violations_after_completion": count(lambda t: t.get("after_completion")),
        "kills_that_left_something_to_repair": count(lambda t: t["found_after_kill"] or t["repaired"]),
        "steps_undone_from_the_journal": count(lambda t: t["undone"]),
        "torn_lines_set_aside": sum(t["torn_set_aside"] for t in trials),
        "seconds": round(seconds),
    }


if __name__ == "__main__":
    sys.exit(main())
