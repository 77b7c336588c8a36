"""The plain-text part, derived once per template from its (protected) HTML.

Run at compile time on the inlined HTML whose per-customer constructs are still placeholders,
so the result is itself a text *template*: a link becomes ``label: {{ url }}``, a block element a
line break, a hidden element (the preheader) nothing, an image nothing. Per message only a
cheap tidy-up of blank lines remains (:func:`tidy`).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "ul", "ol", "section"}
BLOCKS |= {"center", "header", "footer", "article", "blockquote", "td", "th"}
SKIP = {"style", "script", "head", "title"}
PLACEHOLDER_COMMENT = re.compile(r"swj\d+")
_HIDDEN = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all", re.I)


class _Text(HTMLParser):
    def __init__(self, kept: list[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.kept = kept
        self.parts: list[str] = []
        self.skip = 0
        self.hidden: list[str] = []  # open tags of a hidden element
        self.links: list[tuple[str, int]] = []

    @property
    def muted(self) -> bool:
        return bool(self.skip or self.hidden)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in SKIP:
            self.skip += 1
        elif self.hidden or _HIDDEN.search(a.get("style") or ""):
            if tag not in VOID:
                self.hidden.append(tag)
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "hr":
            self.parts.append("\n----------\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self.links.append((a.get("href") or "", len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP:
            self.skip = max(0, self.skip - 1)
        elif self.hidden:
            if self.hidden[-1] == tag:
                self.hidden.pop()
        elif tag in BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.parts[start:]).strip()
            if not label or not href or href.startswith(("mailto:", "#")):
                return
            self.parts.append(f" ({href})" if label != href else "")

    def handle_data(self, data: str) -> None:
        if not self.muted:
            self.parts.append(re.sub(r"\s+", " ", data))

    def handle_comment(self, data: str) -> None:
        if not PLACEHOLDER_COMMENT.fullmatch(data):
            return
        # statements ({% if %}) are kept even in hidden parts, to stay balanced
        if not self.muted or not self.kept[int(data[3:])].startswith("{{"):
            self.parts.append(f"<!--{data}-->")


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


def html_to_text(html: str, kept: list[str]) -> str:
    """Readable text of ``html`` (placeholders kept as ``<!--swjN-->``; ``kept`` holds the
    constructs they stand for)."""
    parser = _Text(kept)
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    return tidy(text)


_BLANKS = re.compile(r"\n{3,}")


def tidy(text: str) -> str:
    """Lines stripped of spaces and tabs, at most one blank line in a row; runs per message,
    so line by line (half the time of a regular expression over the text)."""
    lines = text.split("\n")
    if len(lines) > 1:
        middle = [line.strip(" \t") for line in lines[1:-1]]
        text = "\n".join([lines[0].rstrip(" \t"), *middle, lines[-1].lstrip(" \t")])
    return _BLANKS.sub("\n\n", text).strip() + "\n"
