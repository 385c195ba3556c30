/*
 * alloop-assign.js: list assignment and seeded ordering for alloop studies.
 *
 * Pure functions (no DOM, no jatos.js): the experiment code reads the batch session state,
 * calls assign() to get the new state, and writes it back with a versioned patch, retrying
 * on a version conflict. Works in the browser (window.AlloopAssign) and in Node (module.exports).
 */
(function (root) {
  "use strict";

  /** A 32-bit hash of a string (cyrb53, truncated), the seed of a participant's generator. */
  function hashString(text) {
    let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ ch, 2654435761);
      h2 = Math.imul(h2 ^ ch, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    return h1 >>> 0;
  }

  /** A seeded generator of floats in [0, 1) (mulberry32). */
  function rng(seed) {
    let a = (typeof seed === "number" ? seed : hashString(String(seed))) >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function shuffle(array, rand) {
    const out = array.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const tmp = out[i]; out[i] = out[j]; out[j] = tmp;
    }
    return out;
  }

  function runLength(out, key, keyOf) {
    let n = 0;
    for (let i = out.length - 1; i >= 0 && keyOf(out[i]) === key; i--) n++;
    return n;
  }

  /**
   * A seeded order in which no key repeats more than maxRun times in a row, where one exists.
   * Greedy: at each step pick among the allowed items, preferring keys with many items left
   * (so the largest group cannot be stranded at the end); restart on a dead end.
   * Returns {order, satisfied}.
   */
  function constrainedShuffle(items, keyOf, maxRun, rand, tries) {
    tries = tries || 200;
    let best = null;
    for (let attempt = 0; attempt < tries; attempt++) {
      const pool = shuffle(items, rand);
      const out = [];
      let dead = false;
      while (pool.length) {
        const left = {};
        pool.forEach(function (x) { const k = keyOf(x); left[k] = (left[k] || 0) + 1; });
        let choice = -1, weightSum = 0;
        const weights = pool.map(function (x) {
          const k = keyOf(x);
          if (runLength(out, k, keyOf) >= maxRun) return 0;
          return left[k] * left[k];
        });
        weights.forEach(function (w) { weightSum += w; });
        if (weightSum === 0) { dead = true; break; }
        let r = rand() * weightSum;
        for (let i = 0; i < weights.length; i++) {
          r -= weights[i];
          if (weights[i] > 0 && r < 0) { choice = i; break; }
        }
        if (choice < 0) choice = weights.findIndex(function (w) { return w > 0; });
        out.push(pool.splice(choice, 1)[0]);
      }
      if (!dead) return { order: out, satisfied: true };
      if (!best || out.length > best.length) best = out.concat(pool);
    }
    return { order: best, satisfied: false };
  }

  function zeros(n) { const a = []; for (let i = 0; i < n; i++) a.push(0); return a; }

  function argmin(values, order) {
    let best = order[0];
    order.forEach(function (i) { if (values[i] < values[best]) best = i; });
    return best;
  }

  function range(n, start) {
    const out = [];
    for (let i = 0; i < n; i++) out.push((start + i) % n);
    return out;
  }

  function emptyState(n) {
    return { n: 0, next: 0, assigned: zeros(n), completed: zeros(n), strata: {}, byResult: {} };
  }

  /**
   * Choose a list. dist: the study's data/distribution.json; state: the batch session entry
   * (null when empty); ctx: {resultKey, params, rand}. Returns {state, list} or {error, message}
   * where error is "full" (max participants or every quota reached) or "no_list".
   */
  function assign(dist, state, ctx) {
    const n = dist.n_lists;
    state = state ? JSON.parse(JSON.stringify(state)) : emptyState(n);
    if (!state.assigned || state.assigned.length !== n) state = emptyState(n);
    const key = ctx.resultKey;
    if (key && Object.prototype.hasOwnProperty.call(state.byResult, key)) {
      return { state: null, list: state.byResult[key], reused: true };
    }
    if (dist.max_participants && state.n >= dist.max_participants) {
      return { error: "full", message: "This study has all the participants it needs." };
    }
    const params = ctx.params || {};
    const rand = ctx.rand || Math.random;
    let list;
    let stratum = null;
    switch (dist.strategy) {
      case "random":
        list = Math.floor(rand() * n);
        break;
      case "sequential":
        list = state.next % n;
        break;
      case "balanced": {
        const counts = dist.count === "completed" ? state.completed : state.assigned;
        list = argmin(counts.map(function (c, i) { return c * 1e6 + state.assigned[i]; }), range(n, 0));
        break;
      }
      case "latin_square":
        list = argmin(state.assigned, range(n, state.next % n));
        break;
      case "stratified": {
        stratum = params[dist.stratum_param];
        stratum = stratum === undefined || stratum === null || stratum === "" ? "_none" : String(stratum);
        if (dist.strata && dist.strata.length && dist.strata.indexOf(stratum) < 0) {
          return { error: "no_list", message: "This link is not valid for this study (unknown " + dist.stratum_param + ")." };
        }
        const counts = state.strata[stratum] || zeros(n);
        list = argmin(counts, range(n, 0));
        break;
      }
      case "weighted_random": {
        const total = dist.weights.reduce(function (a, b) { return a + b; }, 0);
        let r = rand() * total;
        list = n - 1;
        for (let i = 0; i < n; i++) {
          r -= dist.weights[i];
          if (r < 0 && dist.weights[i] > 0) { list = i; break; }
        }
        break;
      }
      case "quota_based": {
        let bestLeft = 0;
        list = -1;
        for (let i = 0; i < n; i++) {
          const left = dist.quotas[i] - state.assigned[i];
          if (left > bestLeft) { bestLeft = left; list = i; }
        }
        if (list < 0) return { error: "full", message: "This study has all the participants it needs." };
        break;
      }
      case "metadata_based": {
        const value = params[dist.param];
        if (value !== undefined && Object.prototype.hasOwnProperty.call(dist.mapping, String(value))) {
          list = dist.mapping[String(value)];
        } else if (dist.default !== null && dist.default !== undefined) {
          list = dist.default;
        } else {
          return { error: "no_list", message: "This link is not valid for this study (no list for its " + dist.param + ")." };
        }
        break;
      }
      default:
        return { error: "no_list", message: "Unknown distribution strategy " + dist.strategy + "." };
    }
    state.n += 1;
    state.next = (dist.strategy === "latin_square" ? list + 1 : state.next + 1);
    state.assigned[list] += 1;
    if (stratum !== null) {
      state.strata[stratum] = state.strata[stratum] || zeros(n);
      state.strata[stratum][list] += 1;
    }
    if (key) state.byResult[key] = list;
    return { state: state, list: list, reused: false };
  }

  /** The state after a participant on `list` completed (null: nothing to write). */
  function complete(dist, state, list, resultKey) {
    if (!state || !state.completed) return null;
    state = JSON.parse(JSON.stringify(state));
    state.done = state.done || {};
    if (resultKey && state.done[resultKey]) return null;
    state.completed[list] += 1;
    if (resultKey) state.done[resultKey] = true;
    return state;
  }

  /**
   * Read, patch, retry: read the entry from the session's local copy, compute the new entry,
   * write it with a versioned patch; when another participant wrote first the write is
   * refused, so wait (random, growing) and try again on the fresher copy. `session` is
   * jatos.batchSession (get(name) reads the local copy; set(name, value) returns a promise
   * that rejects on a version conflict). compute(entry) returns {state, ...}; a null state
   * writes nothing. Resolves to compute's outcome with `attempts` added.
   */
  async function updateWithRetry(session, name, compute, options) {
    options = options || {};
    const tries = options.tries || 25;
    const rand = options.rand || Math.random;
    const sleep = options.sleep || function (ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); };
    let lastError = null;
    for (let attempt = 0; attempt < tries; attempt++) {
      const current = session.get(name);
      const outcome = compute(current === undefined ? null : current);
      outcome.attempts = attempt + 1;
      if (!outcome.state) return outcome;
      try {
        await session.set(name, outcome.state);
        return outcome;
      } catch (err) {
        lastError = err;
        await sleep(20 + rand() * 40 * Math.pow(2, Math.min(attempt, 5)));
      }
    }
    throw new Error("could not update the batch session after " + tries + " tries: " + lastError);
  }

  const api = {
    hashString: hashString, rng: rng, shuffle: shuffle, constrainedShuffle: constrainedShuffle,
    assign: assign, complete: complete, emptyState: emptyState, updateWithRetry: updateWithRetry,
  };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  root.AlloopAssign = api;
})(typeof window !== "undefined" ? window : globalThis);
