"""The browser's list assignment (alloop-assign.js), run under Node: every distribution
strategy, the limits, and the seeded constrained order. The same file runs in the study."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest

from .helpers import has_node

ASSIGN_JS = Path(__file__).resolve().parents[2] / "tools" / "jspsych" / "assets" / "alloop-assign.js"

pytestmark = pytest.mark.skipif(not has_node(), reason="needs node (scripts/setup.sh --all installs it)")

SCRIPT = r"""
const A = require(process.argv[1]);
const cases = JSON.parse(process.argv[2]);
const out = cases.map(function (c) {
  const rand = A.rng(c.seed || "s");
  let state = null;
  const lists = [];
  for (let i = 0; i < c.people.length; i++) {
    const r = A.assign(c.dist, state, { resultKey: "r" + i, params: c.people[i], rand: rand });
    if (r.error) { lists.push(r.error); continue; }
    state = r.state || state;
    lists.push(r.list);
  }
  return { lists: lists, state: state };
});
process.stdout.write(JSON.stringify(out));
"""


def run_cases(*cases: dict) -> list[dict]:
    result = subprocess.run(
        ["node", "-e", SCRIPT, str(ASSIGN_JS), json.dumps(list(cases))],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return json.loads(result.stdout)


def dist(strategy: str, n: int = 3, **extra) -> dict:
    return {"strategy": strategy, "n_lists": n, "max_participants": None, **extra}


def test_every_strategy_assigns_as_documented() -> None:
    nobody = [{}] * 9
    random_, sequential, balanced, latin, weighted, quota, metadata, stratified = run_cases(
        {"dist": dist("random"), "people": nobody},
        {"dist": dist("sequential"), "people": nobody},
        {"dist": dist("balanced", count="assigned"), "people": nobody},
        {"dist": dist("latin_square"), "people": nobody},
        {"dist": dist("weighted_random", weights=[0, 1, 0]), "people": nobody},
        {"dist": dist("quota_based", quotas=[1, 2, 0]), "people": [{}] * 4},
        {"dist": dist("metadata_based", param="lang", mapping={"de": 2, "en": 0}, default=None),
         "people": [{"lang": "de"}, {"lang": "en"}, {"lang": "fr"}]},
        {"dist": dist("stratified", n=2, stratum_param="sex", strata=[]),
         "people": [{"sex": "f"}, {"sex": "f"}, {"sex": "m"}, {"sex": "m"}, {"sex": "f"}, {}]},
    )
    assert all(0 <= x < 3 for x in random_["lists"])
    assert sequential["lists"] == [0, 1, 2, 0, 1, 2, 0, 1, 2]
    assert sorted(balanced["lists"]) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert latin["lists"] == [0, 1, 2, 0, 1, 2, 0, 1, 2]
    assert weighted["lists"] == [1] * 9
    assert quota["lists"] == [1, 0, 1, "full"]
    assert metadata["lists"] == [2, 0, "no_list"]
    assert stratified["lists"] == [0, 1, 0, 1, 0, 0]
    assert stratified["state"]["strata"] == {"f": [2, 1], "m": [1, 1], "_none": [1, 0]}


def test_max_participants_and_returning_participants() -> None:
    (capped,) = run_cases({"dist": dist("balanced", max_participants=2), "people": [{}] * 3})
    assert capped["lists"] == [0, 1, "full"]
    script = (
        "const A = require(process.argv[1]);"
        "const d = {strategy: 'sequential', n_lists: 2};"
        "const a = A.assign(d, null, {resultKey: 'r1'});"
        "const b = A.assign(d, a.state, {resultKey: 'r1'});"
        "process.stdout.write(JSON.stringify([a.list, b.list, b.reused, b.state]));"
    )
    out = subprocess.run(["node", "-e", script, str(ASSIGN_JS)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [0, 0, True, None]  # a reload keeps its list and writes nothing


def test_seeded_order_keeps_conditions_apart_and_replays() -> None:
    script = (
        "const A = require(process.argv[1]);"
        "const items = [];"
        "for (let i = 0; i < 12; i++) items.push({id: 'i' + i, c: 'abc'[i % 3]});"
        "const run = (seed) => A.constrainedShuffle(items, (x) => x.c, 1, A.rng(seed));"
        "process.stdout.write(JSON.stringify([run('p1'), run('p1'), run('p2')]));"
    )
    out = subprocess.run(["node", "-e", script, str(ASSIGN_JS)], capture_output=True, text=True, check=True)
    first, again, other = json.loads(out.stdout)
    assert first["satisfied"] and first == again
    conditions = [x["c"] for x in first["order"]]
    assert all(a != b for a, b in itertools.pairwise(conditions))
    assert sorted(x["id"] for x in first["order"]) == sorted(f"i{i}" for i in range(12))
    assert [x["id"] for x in other["order"]] != [x["id"] for x in first["order"]]


RACE = r"""
// N participants start at once against one versioned batch session, modelled as JATOS runs
// it: a write carries the writer's version and is refused when another write came first;
// members' local copies change only when the server's broadcast reaches them (after a delay).
const A = require(process.argv[1]);
const n = Number(process.argv[2]);
const dist = { strategy: "balanced", n_lists: 3, count: "assigned", max_participants: null };
const server = { version: 0, data: {} };
const members = [];
const clone = (x) => (x === undefined ? undefined : JSON.parse(JSON.stringify(x)));
function member() {
  const m = { local: { version: 0, data: {} } };
  m.session = {
    get: (name) => clone(m.local.data[name]),
    // Like jatos.js, the patch carries the version of the local copy when it is sent.
    set: (name, value, version = m.local.version) => new Promise((resolve, reject) => setTimeout(() => {
      if (version !== server.version) return reject("SESSION_FAIL");
      server.data[name] = clone(value);
      server.version += 1;
      const snapshot = { version: server.version, data: clone(server.data) };
      m.local = snapshot;
      const later = (o) => () => { if (o.local.version < snapshot.version) o.local = clone(snapshot); };
      members.forEach((o) => { if (o !== m) setTimeout(later(o), Math.random() * 15); });
      resolve();
    }, Math.random() * 5)),
  };
  members.push(m);
  return m;
}
const people = Array.from({ length: n }, member);
Promise.all(people.map((m, i) => A.updateWithRetry(m.session, "alloop-x",
  (state) => A.assign(dist, state, { resultKey: "r" + i }), { tries: 60 })))
  .then((outcomes) => {
    process.stdout.write(JSON.stringify({
      lists: outcomes.map((o) => o.list), attempts: outcomes.map((o) => o.attempts), state: server.data["alloop-x"],
    }));
  });
"""


def test_read_patch_retry_balances_simultaneous_starters() -> None:
    out = subprocess.run(["node", "-e", RACE, str(ASSIGN_JS), "30"], capture_output=True, text=True, check=True,
                         timeout=120)
    result = json.loads(out.stdout)
    assert sorted(result["lists"]) == [0] * 10 + [1] * 10 + [2] * 10
    assert result["state"]["assigned"] == [10, 10, 10] and result["state"]["n"] == 30
    assert len(result["state"]["byResult"]) == 30
    assert max(result["attempts"]) > 1  # they did collide, and the retries sorted it out
