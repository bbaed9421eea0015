"""Hostile text and what a real browser does with a page that shows it.

`HOSTILE` is markup that, if a page inserted it unescaped, would run script (an inline
<script> and an <img> whose onerror fires) and set `window.__pwned`. `render_in_chromium`
loads a page in Debian's chromium (through tests.browser) and reports what it shows and
whether anything ran, so each test asserts the same four things: the text is shown as
the characters typed, `window.__pwned` stays unset, the payload made no element, and the
console logged no error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec

from tests.browser import CHROMIUM, CHROMIUM_ARGS, sync_playwright

__all__ = ["HOSTILE", "Rendered", "render_in_chromium"]

HOSTILE: Final = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


class Rendered(msgspec.Struct, frozen=True):
    """What the browser made of a page."""

    text: str  # document.body.innerText
    pwned: object  # window.__pwned: None unless a payload ran
    hostile_elements: int  # <script> and <img src=x> elements in the document
    errors: list[str]  # console errors, page errors and dialogs


def render_in_chromium(*, html: str | None = None, path: Path | None = None) -> Rendered:
    """Load `html` (as the page's content) or the file at `path`, wait, and look."""
    start = sync_playwright()
    errors: list[str] = []
    with start() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
            if path is not None:
                page.goto(path.resolve().as_uri(), wait_until="load")
            else:
                page.set_content(html or "", wait_until="load")
            page.wait_for_timeout(200)  # an onerror handler runs after the failed load
            return Rendered(
                text=page.inner_text("body"),
                pwned=page.evaluate("window.__pwned"),
                hostile_elements=page.evaluate(
                    "document.querySelectorAll('script, img[src=\"x\"]').length"
                ),
                errors=errors,
            )
        finally:
            browser.close()
