/*
 * jatos.js DOUBLE for alloop's tests. This is NOT JATOS's jatos.js.
 *
 * Written from JATOS's documented jatos.js behaviour (the jatos.js reference on jatos.org and
 * the jatos.js 3.10 source): jatos.onLoad runs its callback once the init data (ids, URL query
 * parameters, study/component/batch properties and input, the batch session and its version)
 * is loaded; jatos.batchSession.get/getAll/find/test/defined read the local copy;
 * set/add/replace/remove/setAll/clear send a JSON Patch with the local version; with
 * batchSessionVersioning (the default) the server applies a patch only if the version is the
 * current one, otherwise the promise is rejected ("SESSION_FAIL"), and only one patch may be
 * in flight at a time; submitResultData (PUT) replaces and appendResultData (POST) appends the
 * component's result data; endStudy / endStudyWithoutRedirect / endStudyAndRedirect take
 * (resultData?, successful?, message?) and call the study's end endpoint.
 *
 * The one deliberate difference: the batch channel is plain HTTP (POST batchSession, whose
 * answer carries the current data and version, standing in for JATOS's WebSocket broadcast)
 * instead of a WebSocket. It is served at the same path as the real jatos.js (next to the
 * component's HTML file) by tests/jspsych/jatos_double.py.
 */
(function () {
  "use strict";
  const jatos = {};
  window.jatos = jatos;
  jatos.version = "double-of-3.10";
  jatos.batchSessionVersioning = true;
  jatos.urlQueryParameters = {};
  jatos.studyInput = jatos.studyJsonInput = {};
  jatos.componentInput = jatos.componentJsonInput = {};
  jatos.batchInput = jatos.batchJsonInput = {};
  let batchData = {};
  let batchVersion = null;
  let initialized = false;
  let sending = false;
  let ending = false;
  const onLoadCallbacks = [];
  const base = window.location.pathname.replace(/[^/]*$/, "");

  function legacy(promise) {
    // JATOS returns a jQuery-style promise: thenable with done/fail/always.
    promise.done = function (f) { promise.then(f); return promise; };
    promise.fail = function (f) { promise.catch(f); return promise; };
    promise.always = function (f) { promise.then(f, f); return promise; };
    return promise;
  }

  function clone(value) { return value === undefined ? undefined : JSON.parse(JSON.stringify(value)); }

  function pointerGet(doc, path) {
    if (path === "") return doc;
    const parts = path.split("/").slice(1).map(function (p) { return p.replace(/~1/g, "/").replace(/~0/g, "~"); });
    let node = doc;
    for (const part of parts) {
      if (node === null || typeof node !== "object" || !(part in node)) return undefined;
      node = node[part];
    }
    return node;
  }

  async function init() {
    const response = await fetch(base + "initData" + window.location.search, { cache: "no-store" });
    const init = await response.json();
    Object.assign(jatos, init.ids);
    jatos.urlQueryParameters = init.urlQueryParameters || {};
    jatos.studyProperties = init.studyProperties || {};
    jatos.componentProperties = init.componentProperties || {};
    jatos.batchProperties = init.batchProperties || {};
    jatos.studyInput = jatos.studyJsonInput = init.studyInput || {};
    jatos.componentInput = jatos.componentJsonInput = init.componentInput || {};
    // jatos.js before 3.10 has endStudyAjax but no endStudyWithoutRedirect.
    if (String(init.jatosVersion).startsWith("3.8") || String(init.jatosVersion).startsWith("3.9")) {
      delete jatos.endStudyWithoutRedirect;
    }
    batchData = init.batchSession.data || {};
    batchVersion = init.batchSession.version;
    initialized = true;
    onLoadCallbacks.splice(0).forEach(function (cb) { cb(); });
  }

  jatos.onLoad = jatos.onload = function (callback) {
    if (initialized) callback();
    else onLoadCallbacks.push(callback);
  };

  function sendBatchSessionPatch(patches) {
    if (jatos.batchSessionVersioning && sending) {
      return legacy(Promise.reject("Can send only one batch session patch at a time."));
    }
    sending = true;
    const body = { version: batchVersion, versioning: !!jatos.batchSessionVersioning, patches: [].concat(patches) };
    return legacy(fetch(base + "batchSession", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    }).then(function (r) { return r.json(); }).then(function (answer) {
      // The broadcast: every member's copy follows the server's data and version.
      batchData = answer.data;
      batchVersion = answer.version;
      sending = false;
      if (!answer.ok) throw "Batch session update failed";
    }, function (err) { sending = false; throw err; }));
  }

  function patch(op, path, value, from) {
    const p = { op: op, path: path };
    if (value !== null && value !== undefined) p.value = value;
    if (from) p.from = from;
    return p;
  }

  jatos.batchSession = {
    get: function (name) { return clone(pointerGet(batchData, "/" + name)); },
    getAll: function () { return clone(batchData); },
    find: function (path) { return clone(pointerGet(batchData, path)); },
    test: function (path, value) { return pointerGet(batchData, path) === value; },
    defined: function (path) { return pointerGet(batchData, path) !== undefined; },
    getVersion: function () { return batchVersion; },
    set: function (name, value) { return sendBatchSessionPatch(patch("add", "/" + name, value)); },
    add: function (path, value) { return sendBatchSessionPatch(patch("add", path, value)); },
    replace: function (path, value) { return sendBatchSessionPatch(patch("replace", path, value)); },
    remove: function (path) { return sendBatchSessionPatch(patch("remove", path)); },
    setAll: function (value) { return sendBatchSessionPatch(patch("replace", "", value)); },
    clear: function () { return sendBatchSessionPatch(patch("replace", "", {})); },
  };

  function sendResultData(data, append) {
    if (data === Object(data)) data = JSON.stringify(data);
    return legacy(fetch(base + "resultData", { method: append ? "POST" : "PUT", body: data }).then(function (r) {
      if (!r.ok) throw "result data not saved (HTTP " + r.status + ")";
    }));
  }
  jatos.submitResultData = function (data) { return sendResultData(data, false); };
  jatos.appendResultData = function (data) { return sendResultData(data, true); };

  function endArgs(p1, p2, p3) {
    if (typeof p1 === "string" || (typeof p1 === "object" && p1 !== null)) return { data: p1, successful: p2, message: p3 };
    return { data: undefined, successful: p1, message: p2 };
  }

  function endUrl(args) {
    const q = new URLSearchParams();
    if (typeof args.successful === "boolean") q.set("successful", String(args.successful));
    if (typeof args.message === "string") q.set("message", args.message);
    return base + "end" + (q.toString() ? "?" + q.toString() : "");
  }

  jatos.endStudyWithoutRedirect = jatos.endStudyAjax = function (p1, p2, p3) {
    if (ending) return legacy(Promise.reject("Can end/abort study only once."));
    ending = true;
    const args = endArgs(p1, p2, p3);
    const before = args.data ? jatos.appendResultData(args.data) : Promise.resolve();
    return legacy(Promise.resolve(before).then(function () { return fetch(endUrl(args)); }).then(function () {}));
  };

  jatos.endStudyAndRedirect = function (url, p1, p2, p3) {
    jatos.endStudyWithoutRedirect(p1, p2, p3).then(function () { window.location.href = url; });
  };

  jatos.endStudy = function (p1, p2, p3) {
    if (ending) return;
    ending = true;
    const args = endArgs(p1, p2, p3);
    const before = args.data ? jatos.appendResultData(args.data) : Promise.resolve();
    Promise.resolve(before).then(function () { window.location.href = endUrl(args) + (endUrl(args).includes("?") ? "&" : "?") + "page=1"; });
  };

  jatos.addJatosIds = function (obj) {
    obj = obj || {};
    ["studyId", "batchId", "componentId", "workerId", "studyResultId", "componentResultId"].forEach(function (k) {
      obj[k] = jatos[k];
    });
    return obj;
  };
  jatos.showBeforeUnloadWarning = function () {};
  jatos.addAbortButton = function () {};

  init().catch(function (err) { console.error("jatos.js double: init failed", err); });
})();
