"""alloop.tools.jspsych: jsPsych 8 studies for a batch.

config (ExperimentConfig and the distribution strategies), lists (all, split, Latin square),
npm (the pinned jsPsych packages and their cache), build (the study folder), results (trial
data → LabelEvents); assets/ holds the browser code (alloop-experiment.js, alloop-assign.js,
alloop.css) and templates/ the index.html template.
"""
