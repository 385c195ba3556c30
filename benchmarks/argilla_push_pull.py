"""Push and pull 1,000 records through a real Argilla 2.8 server; alloop against its peers.

    .venv/bin/python benchmarks/argilla_push_pull.py [--n 1000] [--repeat 3] [--out benchmarks/results/argilla.md]

Starts the test stack (tests/argilla/argilla_stack.py: redis, noida-db, argilla-server on
loopback ports; scripts/setup.d/40-argilla.sh installs it), makes a binary run with N items
and one selection round of all N, and times, in one process against the same server:

push  alloop   push_round: dataset checks + bulk upsert (PUT ./records/bulk), 256 records a request
      peer A   the naive loop: `dataset.records.log([record])` once per record (SDK)
      peer B   the SDK used in bulk: `dataset.records.log(records)` (no checks, no run files)
      re-push  push_round of the same batch again (updates in place, nothing duplicates)
pull  (after two annotators submit an answer to every record, 2N responses)
      alloop   pull_responses: REST listing 1,000 records a page, 2N LabelEvents appended
      peer C   the SDK's iteration `dataset.records(with_responses=True)` (no response ids or
               times: it cannot dedupe or record provenance; it also fails on a discarded
               response without values, which this benchmark avoids)
      peer D   one record at a time: GET /api/v1/records/{id} per record (ids known)
      again    pull_responses again (adds nothing)

Each figure is the median of --repeat runs (the slow peers A and D: --naive-repeat runs), each
into fresh datasets; ratios are peer / alloop on the same machine in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "argilla"))

import httpx  # noqa: E402
from argilla_stack import running_stack  # noqa: E402

from alloop.tools.argilla import (  # noqa: E402
    dataset_plan,
    pull_responses,
    push_round,
    record_payloads,
)
from alloop.tools.run.items import ItemTable  # noqa: E402
from alloop.tools.run.rundir import RunRoot  # noqa: E402
from alloop.tools.run.schema import SelectionRow, TaskSpec  # noqa: E402


def make_run(root: RunRoot, name: str, n: int):
    spec = TaskSpec(run=name, task_type="binary", labels=["no", "yes"], annotators_per_item=2,
                    guidelines="Is the sentence about cats?")
    pool = ItemTable.from_rows(
        [{"id": f"it-{i:05d}", "text": f"Sentence {i} about {'cats' if i % 3 else 'dogs'} " * 5} for i in range(n)]
    )
    run = root.create(spec, pool, None)
    rows = [
        SelectionRow(round=1, rank=i + 1, item_id=f"it-{i:05d}", strategy="entropy", reason=f"entropy rank {i + 1}",
                     scores={"entropy": 0.69 - i * 1e-4, "margin": 0.01 + i * 1e-4},
                     prediction="yes" if i % 2 else "no", confidence=0.5 + (i % 50) / 100,
                     model_version="round00-logistic", seed=0)
        for i in range(n)
    ]
    run.write_selection(1, rows)
    return run, rows


def sdk_records(run, rows):
    import argilla as rg

    plan = dataset_plan(run.spec(), ["entropy", "margin"])
    payloads, _ = record_payloads(plan, rows, run.pool().rows(list(range(len(rows)))))
    return [
        rg.Record(id=p["id"], fields=p["fields"], metadata=p["metadata"],
                  suggestions=[rg.Suggestion(question_name="label", **p["suggestion"])])
        for p in payloads
    ]


def peer_dataset(client, run, name):
    import argilla as rg

    from alloop.tools.argilla import sdk_settings

    plan = dataset_plan(run.spec(), ["entropy", "margin"])
    return rg.Dataset(name=name, workspace="alloop", settings=sdk_settings(plan), client=client).create()


def annotate_all(url: str, keys: dict[str, str], dataset_id: str, owner_key: str) -> None:
    owner = httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": owner_key}, timeout=120)
    ids = []
    offset = 0
    while True:
        page = owner.get(f"/api/v1/datasets/{dataset_id}/records", params={"offset": offset, "limit": 1000}).json()
        ids += [r["id"] for r in page["items"]]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            break
    for name, key in keys.items():
        person = httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": key}, timeout=120)
        for start in range(0, len(ids), 100):
            items = [{"record_id": rid, "status": "submitted",
                      "values": {"label": {"value": "yes" if (hash(rid + name) % 2) else "no"}}}
                     for rid in ids[start:start + 100]]
            reply = person.post("/api/v1/me/responses/bulk", json={"items": items})
            reply.raise_for_status()
            errors = [i for i in reply.json()["items"] if i.get("error")]
            assert not errors, errors[:2]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--naive-repeat", type=int, default=1, help="runs of the slow peers A and D (default 1)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # so that `kill` still stops the server stack
    import argilla as rg

    n = args.n
    times: dict[str, list[float]] = {k: [] for k in
                                     ("push", "peer_a", "peer_b", "repush", "pull", "peer_c", "peer_d", "again")}
    with running_stack() as stack, tempfile.TemporaryDirectory() as tmp:
        os.environ["ARGILLA_API_URL"] = stack.url
        os.environ["ARGILLA_API_KEY"] = stack.owner_key
        root = RunRoot(Path(tmp) / "runs")
        client = rg.Argilla(api_url=stack.url, api_key=stack.owner_key)
        owner = httpx.Client(base_url=stack.url, headers={"X-Argilla-Api-Key": stack.owner_key}, timeout=120)
        for rep in range(args.repeat):
            run, rows = make_run(root, f"bench{rep}", n)
            times["push"].append(timed(lambda run=run: push_round(run, 1, annotators=list(stack.annotator_keys))))
            times["repush"].append(timed(lambda run=run: push_round(run, 1)))
            records = sdk_records(run, rows)
            if rep < args.naive_repeat:
                ds_a = peer_dataset(client, run, f"peer-a-{rep}")
                times["peer_a"].append(timed(lambda ds=ds_a, rs=records: [ds.records.log([r]) for r in rs]))
                records = sdk_records(run, rows)
            ds_b = peer_dataset(client, run, f"peer-b-{rep}")
            times["peer_b"].append(timed(lambda ds=ds_b, rs=records: ds.records.log(rs)))

            dataset_id = run.destinations()["argilla"]["dataset_id"]
            annotate_all(stack.url, stack.annotator_keys, dataset_id, stack.owner_key)
            result: dict = {}
            times["pull"].append(timed(lambda run=run, out=result: out.update(vars(pull_responses(run)))))
            assert result["new_events"] == 2 * n, result["new_events"]
            ds = client.datasets(name=f"bench{rep}", workspace="alloop")

            def sdk_pull(ds=ds):
                got = [(r.id, a.user_id, a.value) for r in ds.records(with_responses=True) for a in r.responses]
                assert len(got) == 2 * n, len(got)

            times["peer_c"].append(timed(sdk_pull))
            record_ids = [r["id"] for page in [owner.get(f"/api/v1/datasets/{dataset_id}/records",
                                                         params={"limit": 1000, "offset": o}).json()["items"]
                                               for o in range(0, n, 1000)] for r in page]

            def one_by_one(ids=record_ids):
                got = 0
                for rid in ids:
                    reply = owner.get(f"/api/v1/records/{rid}", params={"include": ["responses"]})
                    got += len(reply.json()["responses"])
                assert got == 2 * n, got

            if rep < args.naive_repeat:
                times["peer_d"].append(timed(one_by_one))
            times["again"].append(timed(lambda run=run: pull_responses(run)))
            assert len(run.labels()) == 2 * n

    med = {k: statistics.median(v) for k, v in times.items()}
    lines = [
        f"Argilla push and pull, {n} records, median of {args.repeat} (peers A and D: {args.naive_repeat}) "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, argilla-server 2.8.0 with "
        "SQLite, redis and noida-db on loopback; client argilla SDK 2.8.0).",
        "",
        "| step | what | seconds | records/s | peer / alloop |",
        "|---|---|---:|---:|---:|",
        f"| push | alloop push_to_argilla (checks + bulk upsert) | {med['push']:.2f} | {n / med['push']:.0f} | 1.00 |",
        f"| push | peer A: SDK `records.log([r])` per record | {med['peer_a']:.2f} | {n / med['peer_a']:.0f} | "
        f"{med['peer_a'] / med['push']:.2f} |",
        f"| push | peer B: SDK `records.log(records)` in bulk | {med['peer_b']:.2f} | {n / med['peer_b']:.0f} | "
        f"{med['peer_b'] / med['push']:.2f} |",
        f"| push | alloop re-push of the same batch (updates) | {med['repush']:.2f} | {n / med['repush']:.0f} | "
        f"{med['repush'] / med['push']:.2f} |",
        f"| pull | alloop pull_from_argilla ({2 * n} answers → label events) | {med['pull']:.2f} | "
        f"{2 * n / med['pull']:.0f} | 1.00 |",
        f"| pull | peer C: SDK `records(with_responses=True)` iteration | {med['peer_c']:.2f} | "
        f"{2 * n / med['peer_c']:.0f} | {med['peer_c'] / med['pull']:.2f} |",
        f"| pull | peer D: GET /api/v1/records/{{id}} per record | {med['peer_d']:.2f} | "
        f"{2 * n / med['peer_d']:.0f} | {med['peer_d'] / med['pull']:.2f} |",
        f"| pull | alloop pull again (adds nothing) | {med['again']:.2f} | {2 * n / med['again']:.0f} | "
        f"{med['again'] / med['pull']:.2f} |",
        "",
        "Raw seconds: " + "; ".join(f"{k} {', '.join(f'{x:.2f}' for x in v)}" for k, v in times.items()),
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
