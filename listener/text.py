"""Plain text from the HTML fragments sources receive (feed items, API comments, pages)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_PARAGRAPH = "\x00"
_LINE = "\x01"
_PRE_LINE = "\x02"  # a newline inside <pre>: kept, with the indentation after it
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dialog", "div", "dl",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
        "h5", "h6", "header", "hr", "main", "nav", "ol", "p", "pre", "section",
        "table", "ul",
    }
)  # fmt: skip
_LINE_TAGS = frozenset({"br", "li", "dt", "dd", "tr", "caption"})
_CELL_TAGS = frozenset({"td", "th"})
_SKIPPED_TAGS = frozenset({"script", "style", "template", "noscript", "head", "title", "svg"})
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0\u200b]+")


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment, marking block and line boundaries."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(_PARAGRAPH)
            if tag == "pre":
                self._pre_depth += 1
        elif tag in _LINE_TAGS:
            self.parts.append(_LINE)
        elif tag in _CELL_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(_PARAGRAPH)
        elif tag in _LINE_TAGS:
            self.parts.append(_LINE)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(_PARAGRAPH)
            if tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)
        elif tag in _LINE_TAGS and tag != "br":
            self.parts.append(_LINE)

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._pre_depth:
            self.parts.append(data.replace("\r\n", "\n").replace("\n", _PRE_LINE))
        else:
            self.parts.append(_SPACES.sub(" ", data))


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, paragraphs kept.

    Block elements (``p``, ``div``, headings, lists, ``pre`` …) become paragraphs
    separated by a blank line, ``br`` and list items become line breaks, and runs
    of whitespace inside a paragraph collapse to one space (except in ``pre``).
    Scripts and styles are dropped. Broken HTML is tolerated.
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    paragraphs = []
    for block in "".join(parser.parts).split(_PARAGRAPH):
        lines = [line.strip(" ") for line in block.split(_LINE)]
        text = "\n".join(line for line in lines if line).replace(_PRE_LINE, "\n").strip("\n")
        if text.strip():
            paragraphs.append(text)
    return "\n\n".join(paragraphs)
