/*
 * alloop-text.js: the texts a participant reads, as HTML that shows them literally.
 *
 * jsPsych plugins parse stimuli, prompts, labels, options and button texts as HTML, but no text
 * of an alloop study is HTML: item texts and every config text are data. So the experiment
 * escapes the config once, and each item once, on their way into the timeline (escapeAll), and
 * builds its HTML only from those escaped copies; a config text added later is escaped without
 * anyone having to remember it. Works in the browser (window.AlloopText) and in Node
 * (module.exports), where the tests run it.
 */
(function (root) {
  "use strict";

  /** Text → HTML that shows it literally, in element content and in quoted attribute values. */
  function escapeHtml(value) {
    return String(value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  /** A copy of a JSON value with every string escaped (numbers, booleans, null and keys as they are). */
  function escapeAll(value) {
    if (typeof value === "string") return escapeHtml(value);
    if (Array.isArray(value)) return value.map(escapeAll);
    if (value !== null && typeof value === "object") {
      const copy = {};
      Object.keys(value).forEach(function (key) { copy[key] = escapeAll(value[key]); });
      return copy;
    }
    return value;
  }

  /** Escaped text → paragraphs: a blank line starts a new one (the only formatting a text has). */
  function paragraphs(html) {
    return String(html || "").split(/\n\s*\n/).map(function (p) { return "<p>" + p.trim() + "</p>"; }).join("");
  }

  const api = { escapeHtml: escapeHtml, escapeAll: escapeAll, paragraphs: paragraphs };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  root.AlloopText = api;
})(typeof window !== "undefined" ? window : globalThis);
