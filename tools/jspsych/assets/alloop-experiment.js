/*
 * alloop-experiment.js: the jsPsych 8 timeline of an alloop study.
 *
 * Reads data/config.json, data/items.json, data/lists.json and data/distribution.json,
 * assigns a list over the JATOS batch session (read, patch, retry on a version conflict),
 * orders the list's items with the participant's seed, runs the trials and appends each
 * trial's data to the JATOS result as one JSON line as soon as it is done (so a participant
 * who leaves half-way still leaves their answers). Without jatos.js (opened from a plain web
 * server) it runs standalone.
 *
 * Item text, labels and every config text are shown as text: the config is escaped once, in
 * start(), and each item once, in makeTrial() (AlloopText.escapeAll); the HTML below is built only
 * from those escaped copies (`shown`, `s`), the raw values serve the logic alone.
 */
(function () {
  "use strict";
  const A = window.AlloopAssign;
  const T = window.AlloopText;
  const hasJatos = typeof window.jatos === "object" && window.jatos !== null && typeof window.jatos.onLoad === "function";

  /** An escaped item as HTML. */
  function itemHtml(s) {
    return '<div class="alloop-item" data-item-id="' + s.id + '">' +
      s.texts.map(function (t) { return "<p>" + t + "</p>"; }).join("") + "</div>";
  }

  /** An escaped prompt as HTML. */
  function promptHtml(prompt) {
    return prompt ? '<div class="alloop-prompt">' + prompt + "</div>" : "";
  }

  async function loadJson(path) {
    const response = await fetch(path, { cache: "no-store" });
    if (!response.ok) throw new Error("could not load " + path + " (HTTP " + response.status + ")");
    return response.json();
  }

  function showMessage(text, isError) {
    document.body.innerHTML = "";
    const div = document.createElement("div");
    div.className = isError ? "alloop-error" : "alloop-page";
    div.id = isError ? "alloop-error" : "alloop-message";
    div.textContent = text;
    document.body.appendChild(div);
  }

  // -- participant and batch session -------------------------------------------------------

  function participant() {
    const params = {};
    new URLSearchParams(window.location.search).forEach(function (v, k) { params[k] = v; });
    if (hasJatos && jatos.urlQueryParameters) {
      Object.keys(jatos.urlQueryParameters).forEach(function (k) { params[k] = jatos.urlQueryParameters[k]; });
    }
    const workerId = hasJatos ? String(jatos.workerId) : null;
    const resultId = hasJatos ? String(jatos.studyResultId) : null;
    const id = workerId || params.PROLIFIC_PID || ("local-" + Math.random().toString(36).slice(2));
    return { id: id, workerId: workerId, resultId: resultId, params: params };
  }

  /** Read–patch–retry over the JATOS batch session (AlloopAssign.updateWithRetry). */
  function updateBatch(name, compute) {
    return A.updateWithRetry(jatos.batchSession, name, compute);
  }

  async function assignList(dist, who) {
    const debugParam = who.params.alloop_debug_list;
    if (dist.debug_list !== null && dist.debug_list !== undefined) return { list: dist.debug_list, debug: true };
    if (dist.allow_debug_param && debugParam !== undefined) {
      const pinned = parseInt(debugParam, 10);
      if (!(pinned >= 0 && pinned < dist.n_lists)) throw new Error("alloop_debug_list must be 0.." + (dist.n_lists - 1));
      return { list: pinned, debug: true };
    }
    const ctx = { resultKey: who.resultId, params: who.params, rand: Math.random };
    if (!hasJatos) {
      const outcome = A.assign(dist, null, ctx);
      return outcome.error ? outcome : { list: outcome.list, debug: false };
    }
    const name = "alloop-" + dist.study_key;
    const outcome = await updateBatch(name, function (state) { return A.assign(dist, state, ctx); });
    return outcome.error ? outcome : { list: outcome.list, debug: false };
  }

  async function markCompleted(dist, assignment, who) {
    if (!hasJatos || assignment.debug) return;
    const name = "alloop-" + dist.study_key;
    await updateBatch(name, function (state) {
      return { state: A.complete(dist, state, assignment.list, who.resultId) };
    });
  }

  function endWithoutRedirect(successful, message) {
    if (!hasJatos) return;
    // endStudyWithoutRedirect is 3.10's name; 3.8 and 3.9 call it endStudyAjax.
    const end = jatos.endStudyWithoutRedirect || jatos.endStudyAjax;
    try { end.call(jatos, successful, message); } catch (err) { console.error(err); }
  }

  // -- trials ------------------------------------------------------------------------------

  /** `shown` is the escaped config: what the participant reads comes from it, never from `config`. */
  function makeTrialFactory(jsPsych, config, shown, rand) {
    const labels = config.labels;
    const t = config.trial;
    const st = shown.trial;
    const widget = config.widget;
    const minMs = config.min_trial_ms || 0;

    function optionsOf(item) { return item.choices || labels; }

    // Counterbalanced positions: a shuffled bag of rotations per option count, so that over
    // every n trials with n options each option sits in each position once.
    const bags = {};
    function positions(n) {
      if (!bags[n] || !bags[n].length) bags[n] = A.shuffle(Array.from({ length: n }, function (_, i) { return i; }), rand);
      const shift = bags[n].pop();
      return Array.from({ length: n }, function (_, p) { return (p + shift) % n; });
    }

    /** Number keys 1..n tick the n points of a Likert scale. */
    function likertKeys(n) {
      const onKey = function (e) {
        const k = parseInt(e.key, 10);
        if (!(k >= 1 && k <= n)) return;
        const radio = document.querySelector("input[name='Q0'][value='" + (k - 1) + "']");
        if (radio) { radio.checked = true; radio.focus(); }
      };
      return {
        on_load: function () { document.addEventListener("keydown", onKey); },
        on_end: function () { document.removeEventListener("keydown", onKey); },
      };
    }

    function lookup(options, shownOptions, value) {
      // Survey plugins hand back the option text (or its escaped form): map it to the original option.
      for (let i = 0; i < options.length; i++) {
        if (value === options[i] || value === shownOptions[i]) return options[i];
      }
      return null;
    }

    function withMinDuration(trial) {
      if (!minMs) return trial;
      const onLoad = trial.on_load;
      trial.on_load = function () {
        const el = jsPsych.getDisplayElement();
        el.classList.add("alloop-wait");
        const block = function (e) { e.stopImmediatePropagation(); e.preventDefault(); };
        window.addEventListener("keydown", block, true);
        setTimeout(function () {
          el.classList.remove("alloop-wait");
          window.removeEventListener("keydown", block, true);
        }, minMs);
        if (onLoad) onLoad();
      };
      return trial;
    }

    function spr(item, s) {
      const words = item.texts.join(" ").split(/\s+/).filter(Boolean);
      return {
        type: jsPsychCallFunction,
        async: true,
        func: function (done) {
          const el = jsPsych.getDisplayElement();
          el.innerHTML = '<div class="alloop-item alloop-spr" id="alloop-spr" data-item-id="' + s.id + '"></div>' +
            '<div class="alloop-keys">Press the space bar to see the next word.</div>';
          const line = el.querySelector("#alloop-spr");
          const rts = [];
          let index = -1;
          let shownAt = performance.now();
          function render() {
            line.textContent = words.map(function (w, i) {
              return i === index ? w : w.replace(/\S/g, "_");
            }).join(" ");
          }
          render();
          function onKey(e) {
            if (e.key !== " " && e.code !== "Space") return;
            e.preventDefault();
            const now = performance.now();
            if (index >= 0) rts.push(Math.round(now - shownAt));
            shownAt = now;
            index += 1;
            if (index >= words.length) {
              document.removeEventListener("keydown", onKey);
              el.innerHTML = "";
              done({ word_rts: rts, words: words });
              return;
            }
            render();
          }
          document.addEventListener("keydown", onKey);
        },
      };
    }

    function baseTrial(item) {
      const s = T.escapeAll(item);
      const options = optionsOf(item);
      const shownOptions = s.choices || shown.labels;
      const stim = itemHtml(s) + promptHtml(st.prompt);
      switch (config.task_type + ":" + widget) {
        case "forced_choice:buttons": {
          // The options are the stimuli: large buttons, their positions counterbalanced and recorded.
          const order = positions(options.length);
          return {
            type: jsPsychHtmlButtonResponse, stimulus: stim,
            choices: order.map(function (i) { return shownOptions[i]; }),
            button_html: function (choice) { return '<button class="jspsych-btn alloop-choice">' + choice + "</button>"; },
            positions: order,
            toLabel: function (d) {
              if (d.response === null) return null;
              const i = order[d.response];
              return item.choices && labels.length === options.length ? labels[i] : options[i];
            },
          };
        }
        case "binary:buttons":
        case "categorical:buttons":
          return {
            type: jsPsychHtmlButtonResponse, stimulus: stim,
            choices: shownOptions,
            toLabel: function (d) {
              if (d.response === null) return null;
              // Per-item options with one label per position: the label names the position.
              return item.choices && labels.length === options.length ? labels[d.response] : options[d.response];
            },
          };
        case "binary:keys":
          return {
            type: jsPsychHtmlKeyboardResponse,
            stimulus: stim + '<div class="alloop-keys">' + st.keys.map(function (k, i) {
              return '<span class="alloop-key">' + k + "</span> = " + shownOptions[i];
            }).join(" &nbsp; ") + "</div>",
            choices: t.keys,
            toLabel: function (d) {
              const i = t.keys.map(function (k) { return k.toLowerCase(); }).indexOf(String(d.response).toLowerCase());
              return i < 0 ? null : options[i];
            },
          };
        case "categorical:multiple_choice":
          return {
            type: jsPsychSurveyMultiChoice, preamble: itemHtml(s), button_label: st.button_label,
            questions: [{ prompt: st.prompt, options: shownOptions, required: t.required, name: "response" }],
            toLabel: function (d) { return lookup(options, shownOptions, d.response.response); },
          };
        case "multi_select:checkboxes":
          return {
            type: jsPsychSurveyMultiSelect, preamble: itemHtml(s), button_label: st.button_label,
            questions: [{ prompt: st.prompt, options: shownOptions, required: t.required, name: "response" }],
            toLabel: function (d) {
              return (d.response.response || []).map(function (v) { return lookup(options, shownOptions, v); });
            },
          };
        case "ordinal_scale:likert": {
          const ends = st.scale_ends.length === 2
            ? '<span class="alloop-scale-ends"><span>' + st.scale_ends[0] + "</span><span>" + st.scale_ends[1] + "</span></span>"
            : "";
          const keys = options.length <= 9 ? likertKeys(options.length) : null;
          const hint = keys ? '<div class="alloop-keys">Keys 1–' + options.length + " choose a point.</div>" : "";
          return {
            type: jsPsychSurveyLikert, preamble: itemHtml(s) + hint, button_label: st.button_label,
            questions: [{ prompt: st.prompt + ends, labels: shownOptions, required: t.required, name: "response" }],
            on_load: keys ? keys.on_load : undefined, on_end: keys ? keys.on_end : undefined,
            toLabel: function (d) {
              const i = d.response.response;
              return i === "" || i === undefined || i === null ? null : options[i];
            },
          };
        }
        case "ordinal_scale:slider":
          return {
            type: jsPsychHtmlSliderResponse, stimulus: stim, labels: shownOptions,
            min: 0, max: options.length - 1, step: 1, slider_start: Math.floor((options.length - 1) / 2),
            require_movement: t.required, button_label: st.button_label,
            toLabel: function (d) { return options[Number(d.response)]; },
          };
        case "magnitude:slider":
          return {
            type: jsPsychHtmlSliderResponse, stimulus: stim, labels: st.slider_labels,
            min: t.min, max: t.max, step: t.step, slider_start: (t.min + t.max) / 2,
            require_movement: t.required, button_label: st.button_label,
            toLabel: function (d) { return Number(d.response); },
          };
        case "magnitude:number":
          return {
            type: jsPsychSurveyHtmlForm, preamble: itemHtml(s), button_label: st.button_label,
            html: '<div class="alloop-form"><label for="alloop-number">' + st.prompt + "</label>" +
              '<input type="number" id="alloop-number" name="response" min="' + t.min + '" max="' + t.max +
              '" step="' + t.step + '"' + (t.required ? " required" : "") + "></div>",
            toLabel: function (d) {
              const v = d.response.response;
              return v === "" || v === undefined ? null : Number(v);
            },
          };
        case "magnitude:spr": {
          const trial = spr(item, s);
          trial.toLabel = function (d) {
            const rts = d.response.word_rts;
            const total = rts.reduce(function (a, b) { return a + b; }, 0);
            return t.spr_summary === "total" ? total : (rts.length ? total / rts.length : 0);
          };
          return trial;
        }
        case "free_text:text":
          return {
            type: jsPsychSurveyText, preamble: itemHtml(s), button_label: st.button_label,
            questions: [{ prompt: st.prompt, rows: t.rows, required: t.required, name: "response" }],
            toLabel: function (d) { return d.response.response; },
          };
        case "cloze:blanks": {
          // The cloze plugin splits its text on "%": every literal % becomes &#37; first.
          const noPercent = function (html) { return html.replace(/%/g, "&#37;"); };
          const marker = noPercent(st.blank_marker);
          const text = s.texts.map(function (x) { return noPercent(x).split(marker).join("%%"); }).join("<br>");
          return {
            type: jsPsychCloze,
            text: '<div class="alloop-item" data-item-id="' + noPercent(s.id) + '">' + text + "</div>" +
              noPercent(promptHtml(st.prompt)),
            button_text: st.button_label, allow_blanks: !t.required,
            mistake_fn: function () { alert("Please fill in every blank."); },
            toLabel: function (d) { return d.response.length === 1 ? d.response[0] : d.response; },
          };
        }
      }
      throw new Error("no trial for " + config.task_type + " with widget " + widget);
    }

    return function makeTrial(item, role, listIndex, onDone) {
      const trial = baseTrial(item);
      const toLabel = trial.toLabel;
      const order = trial.positions;
      const onEnd = trial.on_end;
      delete trial.toLabel;
      delete trial.positions;
      delete trial.on_end;
      if (t.iti_ms) trial.post_trial_gap = t.iti_ms;
      trial.data = {
        alloop_role: role, item_id: item.id, list: listIndex,
        condition: item.condition === undefined ? null : item.condition,
        task_type: config.task_type, widget: widget, has_choices: !!item.choices,
      };
      if (item.expected !== undefined && item.expected !== null) trial.data.expected = item.expected;
      if (order) trial.data.positions = order;
      trial.on_finish = function (data) {
        if (onEnd) onEnd();
        if (order) data.chosen_position = data.response;
        if (data.response === undefined && data.value !== undefined) data.response = data.value;
        data.label = toLabel(data);
        if (role === "attention") data.passed = JSON.stringify(data.label) === JSON.stringify(item.expected);
        if (minMs) data.min_trial_ms = minMs;
        if (onDone) onDone(data);
      };
      const timed = widget === "spr" ? trial : withMinDuration(trial);
      return t.fixation_ms ? { timeline: [fixation(t.fixation_ms), timed] } : timed;
    };
  }

  /** A fixation cross before an item, for `ms` milliseconds. */
  function fixation(ms) {
    return {
      type: jsPsychHtmlKeyboardResponse, choices: "NO_KEYS", trial_duration: ms,
      stimulus: '<div class="alloop-fixation" aria-hidden="true">+</div>', data: { alloop_role: "fixation" },
    };
  }

  function demographicsTrial(config, shown) {
    const html = config.demographics.map(function (q, i) {
      const sq = shown.demographics[i];
      const id = "alloop-demo-" + sq.name;
      let input;
      if (q.type === "choice") {
        input = '<select id="' + id + '" name="' + sq.name + '"' + (q.required ? " required" : "") + '><option value=""></option>' +
          sq.options.map(function (o) { return '<option value="' + o + '">' + o + "</option>"; }).join("") + "</select>";
      } else {
        input = '<input type="' + (q.type === "number" ? "number" : "text") + '" id="' + id + '" name="' + sq.name + '"' +
          (q.required ? " required" : "") + ">";
      }
      return '<label for="' + id + '">' + sq.prompt + "</label>" + input;
    }).join("");
    return {
      type: jsPsychSurveyHtmlForm, html: '<div class="alloop-form" id="alloop-demographics">' + html + "</div>",
      button_label: shown.trial.button_label, data: { alloop_role: "demographics" },
    };
  }

  /** Spread the attention checks evenly through the main trials. */
  function interleave(main, checks) {
    if (!checks.length) return main;
    const out = main.slice();
    const step = (main.length + 1) / (checks.length + 1);
    for (let i = checks.length - 1; i >= 0; i--) out.splice(Math.round(step * (i + 1)), 0, checks[i]);
    return out;
  }

  /**
   * Feedback after a practice item. Only an item with a right answer (`expected`) says whether
   * the answer was it; otherwise the feedback shows the answer and the researcher's explanation,
   * so it never contradicts instructions that say there are no right or wrong answers.
   */
  function feedbackHtml(label, expected, s, hasAnswer) {
    const show = function (v) { return Array.isArray(v) ? v.join(", ") : String(v); };
    // The answer is the participant's own data, escaped here; the rest is escaped config.
    let html = "<p>You answered: " + T.escapeHtml(show(label)) + "</p>";
    if (hasAnswer) {
      const right = JSON.stringify(label) === JSON.stringify(expected);
      html += right ? "<p>That is the right answer.</p>" : "<p>The right answer here is: " + show(s.expected) + "</p>";
    }
    return html + (s.explanation ? T.paragraphs(s.explanation) : "");
  }

  /** The end of a local preview (no JATOS): nothing was saved, so offer the data as a download. */
  function previewEnd(jsPsych) {
    return {
      type: jsPsychHtmlButtonResponse, data: { alloop_role: "completion" }, choices: ["Finish"],
      stimulus: '<div class="alloop-page" id="alloop-complete"><p>This was a preview outside JATOS: ' +
        "your answers were not sent anywhere.</p>" +
        '<p><a id="alloop-download" download="alloop-preview-data.json" href="#">Download the preview data</a></p></div>',
      on_load: function () {
        const rows = jsPsych.data.get().values().filter(function (r) { return r.alloop_role !== "save"; });
        const blob = new Blob([JSON.stringify(rows, null, 1)], { type: "application/json" });
        document.getElementById("alloop-download").href = URL.createObjectURL(blob);
      },
    };
  }

  const MIN_WIDTH = 700;

  /** The device check: a screen at least MIN_WIDTH wide and a fine pointer (not touch only). */
  function bigEnough() {
    const touchOnly = window.matchMedia && window.matchMedia("(any-pointer: fine)").matches === false;
    return window.innerWidth >= MIN_WIDTH && !touchOnly;
  }

  // -- the study ---------------------------------------------------------------------------

  async function start() {
    let config, items, lists, dist;
    try {
      [config, items, lists, dist] = await Promise.all([
        loadJson("data/config.json"), loadJson("data/items.json"),
        loadJson("data/lists.json"), loadJson("data/distribution.json"),
      ]);
    } catch (err) {
      showMessage("The study could not be loaded: " + err.message, true);
      return;
    }
    if (config.device_check && !bigEnough()) {
      showMessage("This study needs a computer with a keyboard and a screen at least " + MIN_WIDTH +
        " pixels wide. Please open the link again on such a device.", true);
      endWithoutRedirect(false, "alloop: device check failed");
      return;
    }
    const who = participant();
    let assignment;
    try {
      assignment = await assignList(dist, who);
    } catch (err) {
      showMessage("The study could not start: " + err.message, true);
      endWithoutRedirect(false, "alloop: assignment failed");
      return;
    }
    if (assignment.error) {
      showMessage(assignment.message, true);
      endWithoutRedirect(false, "alloop: " + assignment.error);
      return;
    }
    const listIndex = assignment.list;
    const seedKey = String(config.seed) + ":" + (who.resultId || who.id);
    const rand = A.rng(seedKey);
    let mainItems = lists[listIndex].map(function (id) { return items[id]; });
    let orderOk = true;
    if (config.order.randomize) {
      const field = config.order.no_adjacent_field;
      if (field) {
        const result = A.constrainedShuffle(mainItems, function (it) { return it.meta[field]; }, config.order.max_run, rand);
        mainItems = result.order;
        orderOk = result.satisfied;
      } else {
        mainItems = A.shuffle(mainItems, rand);
      }
    }

    let declined = false;
    let finished = false;
    const appends = [];
    const jsPsych = initJsPsych({
      show_progress_bar: !!config.progress_bar,
      auto_update_progress_bar: false,
      on_data_update: function () {
        if (!hasJatos) return;
        const row = jsPsych.data.get().last(1).values()[0];
        if (!row || ["save", "completion", "fixation"].indexOf(row.alloop_role) >= 0) return;
        appends.push(Promise.resolve(jatos.appendResultData(JSON.stringify(row) + "\n")).catch(function (err) {
          console.error("result data not appended", err);
        }));
      },
      on_finish: function () {
        if (declined) {
          endWithoutRedirect(false, "alloop: consent declined");
          return;
        }
        if (!finished) return;
        if (hasJatos) {
          if (config.completion_url) jatos.endStudyAndRedirect(config.completion_url, true);
          else jatos.endStudy(true);
        }
      },
    });
    jsPsych.data.addProperties({
      alloop_study_key: config.study_key, alloop_list: listIndex, alloop_debug: !!assignment.debug,
      alloop_seed: seedKey, alloop_order_ok: orderOk,
      jatos_worker_id: who.workerId, jatos_study_result_id: who.resultId,
      prolific_pid: who.params.PROLIFIC_PID || null,
    });
    // The one place where config texts become HTML: everything the participant reads comes from `shown`.
    const shown = T.escapeAll(config);
    const makeTrial = makeTrialFactory(jsPsych, config, shown, A.rng(seedKey + ":positions"));
    const timeline = [];
    if (config.consent) {
      timeline.push({
        type: jsPsychHtmlButtonResponse,
        stimulus: '<div class="alloop-page" id="alloop-consent">' + T.paragraphs(shown.consent) + "</div>",
        choices: [shown.consent_agree, shown.consent_decline],
        data: { alloop_role: "consent" },
        on_finish: function (data) {
          data.consented = data.response === 0;
          if (!data.consented) {
            declined = true;
            jsPsych.abortExperiment("You did not agree to take part; the study has ended. You can close this page.");
          }
        },
      });
    }
    if (config.instructions.length) {
      timeline.push({
        type: jsPsychInstructions, show_clickable_nav: true, data: { alloop_role: "instructions" },
        pages: shown.instructions.map(function (p) { return '<div class="alloop-page">' + T.paragraphs(p) + "</div>"; }),
      });
    }
    if (config.demographics.length) timeline.push(demographicsTrial(config, shown));
    config.practice.forEach(function (item, i) {
      timeline.push(makeTrial(item, "practice", listIndex));
      const hasAnswer = item.expected !== undefined && item.expected !== null;
      if (hasAnswer || shown.practice[i].explanation) {
        timeline.push({
          type: jsPsychHtmlButtonResponse, data: { alloop_role: "feedback" },
          choices: [shown.trial.button_label],
          stimulus: function () {
            const last = jsPsych.data.get().filter({ alloop_role: "practice" }).last(1).values()[0] || {};
            return '<div class="alloop-page" id="alloop-feedback">' +
              feedbackHtml(last.label, item.expected, shown.practice[i], hasAnswer) + "</div>";
          },
        });
      }
    });
    const total = mainItems.length + config.attention_checks.length;
    let done = 0;
    const progress = function () {
      done += 1;
      if (config.progress_bar) jsPsych.progressBar.progress = Math.min(1, done / total);
    };
    const main = mainItems.map(function (item) { return makeTrial(item, "item", listIndex, progress); });
    const checks = config.attention_checks.map(function (item) { return makeTrial(item, "attention", listIndex, progress); });
    interleave(main, checks).forEach(function (trial) { timeline.push(trial); });
    timeline.push({
      type: jsPsychCallFunction, async: true, data: { alloop_role: "save" },
      func: function (doneSaving) {
        Promise.all(appends)
          .then(function () { return markCompleted(dist, assignment, who); })
          .then(function () { finished = true; doneSaving({ saved: true }); },
                function (err) { console.error(err); finished = true; doneSaving({ saved: false, error: String(err) }); });
      },
    });
    timeline.push(hasJatos ? {
      type: jsPsychHtmlButtonResponse, data: { alloop_role: "completion" },
      stimulus: '<div class="alloop-page" id="alloop-complete">' + T.paragraphs(shown.completion_message) + "</div>",
      choices: [config.completion_url ? "Return to Prolific" : "Finish"],
    } : previewEnd(jsPsych));
    jsPsych.run(timeline);
  }

  if (hasJatos) jatos.onLoad(start);
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
