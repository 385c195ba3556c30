"""A participant who takes an alloop study in the browser, page by page, the way a person would:
it reads which item is shown, then clicks, types, drags or presses keys to answer it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PAGES = ", ".join(
    [
        "#alloop-complete",
        "#alloop-error",
        "#alloop-message",
        "#alloop-consent",
        "#alloop-feedback",
        "#jspsych-instructions-next",
        "#alloop-demographics",
        ".alloop-item[data-item-id]",
        "#jatos-end",
    ]
)


@dataclass
class Participant:
    """answer(item_id) gives the response to an item: a label, a list of labels, a number
    (slider, number box), text, or a list of words for the blanks of a cloze item."""

    widget: str
    options: list[str]
    answer: Callable[[str], Any]
    keys: list[str] = field(default_factory=lambda: ["f", "j"])
    demographics: dict[str, str] = field(default_factory=dict)
    consent: bool = True
    seen: list[str] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)
    stop_after: int | None = None
    """Leave the study after answering this many items (a participant who drops out)."""

    def take(self, page: Any, url: str | None, *, finish: bool = True) -> str:
        """Go through the study (from `url`, or from where the page is); returns how it ended:
        "complete", "error" or "declined"."""
        if url is not None:
            page.goto(url, wait_until="domcontentloaded")
        while True:
            handle = page.wait_for_selector(PAGES, state="attached")
            if page.query_selector("#alloop-error"):
                return "error"
            if page.query_selector("#alloop-message") or page.query_selector("#jatos-end"):
                return "declined" if not self.consent else "ended"
            if page.query_selector("#alloop-complete"):
                if finish:
                    page.click("#jspsych-html-button-response-btngroup button")
                return "complete"
            if page.query_selector("#alloop-feedback"):
                self.feedback.append(page.inner_text("#alloop-feedback"))
                page.click("#jspsych-html-button-response-btngroup button")
            elif page.query_selector("#alloop-consent"):
                page.locator("#jspsych-html-button-response-btngroup button").nth(0 if self.consent else 1).click()
                if not self.consent:
                    page.wait_for_selector("#jspsych-content, #alloop-message", state="attached")
                    return "declined"
            elif page.query_selector("#jspsych-instructions-next"):
                page.click("#jspsych-instructions-next")
            elif page.query_selector("#alloop-demographics"):
                for name, value in self.demographics.items():
                    element = page.query_selector(f"[name='{name}']")
                    if element.evaluate("e => e.tagName") == "SELECT":
                        element.select_option(value)
                    else:
                        element.fill(value)
                page.click("#jspsych-survey-html-form-next")
            else:
                if self.stop_after is not None and len(self.seen) >= self.stop_after:
                    return "left"
                item_id = handle.get_attribute("data-item-id")
                self.seen.append(item_id)
                self.respond(page, item_id, self.answer(item_id))
            handle.wait_for_element_state("hidden")

    def respond(self, page: Any, item_id: str, value: Any) -> None:
        w = self.widget
        if w == "buttons":
            buttons = page.locator("#jspsych-html-button-response-btngroup button")
            names = [b.strip() for b in buttons.all_inner_texts()]
            buttons.nth(names.index(value)).click()
        elif w == "keys":
            page.keyboard.press(self.keys[self.options.index(value)])
        elif w == "multiple_choice":
            page.click(f"#jspsych-survey-multi-choice-response-0-{self.options.index(value)}")
            page.click("#jspsych-survey-multi-choice-next")
        elif w == "checkboxes":
            for label in value:
                page.check(f"#jspsych-survey-multi-select-response-0-{self.options.index(label)}")
            page.click("#jspsych-survey-multi-select-next")
        elif w == "likert":
            page.check(f"input[name='Q0'][value='{self.options.index(value)}']")
            page.click("#jspsych-survey-likert-next")
        elif w in ("slider", "ordinal_slider"):
            position = self.options.index(value) if w == "ordinal_slider" else value
            slider = page.locator("#jspsych-html-slider-response-response")
            slider.evaluate(
                "(e, v) => { e.value = v; e.dispatchEvent(new Event('input', {bubbles: true}));"
                " e.dispatchEvent(new Event('change', {bubbles: true})); }",
                str(position),
            )
            page.click("#jspsych-html-slider-response-next")
        elif w == "number":
            page.fill("#alloop-number", str(value))
            page.click("#jspsych-survey-html-form-next")
        elif w == "spr":
            words = page.locator("#alloop-spr").inner_text().split()
            for _ in range(len(words) + 1):
                page.keyboard.press("Space")
        elif w == "text":
            page.fill("#input-0", value)
            page.click("#jspsych-survey-text-next")
        elif w == "blanks":
            words = value if isinstance(value, list) else [value]
            for i, word in enumerate(words):
                page.fill(f"#input{i}", word)
            page.click("#finish_cloze_button")
        else:
            raise AssertionError(f"no way to answer widget {w}")
