"""alloop.tools.jspsych: jsPsych 8 studies for a batch.

experiments (a run's experiments: names, the tools' shared input, what a build reads), config
(ExperimentConfig and the distribution strategies), lists (all, split, Latin square), npm (the
pinned jsPsych packages and their cache), build (the study folder), jzip (the JATOS study
archive), jatos (the JATOS client), results (trial data → LabelEvents); assets/ holds the
browser code (alloop-experiment.js, alloop-assign.js, alloop-text.js, alloop.css) and templates/ the
index.html template.
"""
