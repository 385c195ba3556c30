"""jsPsych from npm at pinned versions: where the cache is, what a study copies or links.

scripts/setup.d/30-browser.sh installs the packages below into $ALLOOP_JSPSYCH_CACHE, else
~/.cache/alloop/jspsych; the builder copies each package's browser build into the study so it
runs offline, or links the same files on a CDN.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from alloop.tools.errors import StateError

CACHE_ENV = "ALLOOP_JSPSYCH_CACHE"
CDN_BASE = "https://cdn.jsdelivr.net/npm/"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    global_name: str
    """The global the browser build defines."""

    @property
    def file_name(self) -> str:
        """Its file name inside the study's jspsych/ folder."""
        return self.name.rsplit("/", 1)[-1] + ".js"

    @property
    def dist_path(self) -> str:
        return "dist/index.browser.min.js"

    @property
    def cdn_url(self) -> str:
        return f"{CDN_BASE}{self.name}@{self.version}/{self.dist_path}"


JSPSYCH = Package("jspsych", "8.3.0", "initJsPsych")
PLUGINS: tuple[Package, ...] = (
    Package("@jspsych/plugin-call-function", "2.1.0", "jsPsychCallFunction"),
    Package("@jspsych/plugin-cloze", "2.2.0", "jsPsychCloze"),
    Package("@jspsych/plugin-html-button-response", "2.1.0", "jsPsychHtmlButtonResponse"),
    Package("@jspsych/plugin-html-keyboard-response", "2.2.0", "jsPsychHtmlKeyboardResponse"),
    Package("@jspsych/plugin-html-slider-response", "2.1.0", "jsPsychHtmlSliderResponse"),
    Package("@jspsych/plugin-instructions", "2.1.0", "jsPsychInstructions"),
    Package("@jspsych/plugin-survey-html-form", "2.1.0", "jsPsychSurveyHtmlForm"),
    Package("@jspsych/plugin-survey-likert", "2.2.0", "jsPsychSurveyLikert"),
    Package("@jspsych/plugin-survey-multi-choice", "2.2.1", "jsPsychSurveyMultiChoice"),
    Package("@jspsych/plugin-survey-multi-select", "2.1.1", "jsPsychSurveyMultiSelect"),
    Package("@jspsych/plugin-survey-text", "2.1.1", "jsPsychSurveyText"),
)
PACKAGES: tuple[Package, ...] = (JSPSYCH, *PLUGINS)
CSS_PATH = "css/jspsych.css"
CSS_CDN_URL = f"{CDN_BASE}jspsych@{JSPSYCH.version}/{CSS_PATH}"


def cache_dir() -> Path:
    """The npm cache folder: $ALLOOP_JSPSYCH_CACHE, else ~/.cache/alloop/jspsych.

    A user folder, not one beside the code: installed from a wheel, the code sits in site-packages.
    """
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.home() / ".cache" / "alloop" / "jspsych"


def check_cache(cache: Path | None = None) -> Path:
    """The cache's node_modules, after checking every pinned package is there at its version."""
    cache = cache or cache_dir()
    modules = cache / "node_modules"
    problems = []
    for package in PACKAGES:
        manifest = modules / package.name / "package.json"
        if not manifest.is_file():
            problems.append(f"{package.name} missing")
            continue
        version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
        if version != package.version:
            problems.append(f"{package.name} is {version}, pinned {package.version}")
        elif not (modules / package.name / package.dist_path).is_file():
            problems.append(f"{package.name} has no {package.dist_path}")
    if problems:
        raise StateError(
            f"the jsPsych npm cache at {cache} is not ready ({'; '.join(problems)}): "
            "run `scripts/setup.sh --all` (or scripts/setup.d/30-browser.sh), set "
            f"{CACHE_ENV} to a folder where it ran, or build with jspsych_source='cdn'"
        )
    return modules
