"""
Message bodies: Markdown (CommonMark, raw HTML disabled) to HTML, and HTML to the plain-text alternative.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from markdown_it import MarkdownIt

# Raw HTML in a body is shown as text (html=False), links are checked by markdown-it (no javascript:).
_markdown = MarkdownIt("commonmark", {"html": False, "breaks": True})
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")


def markdown_escape(value: str) -> str:
    """A variable's value as literal Markdown text: punctuation backslash-escaped, one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(value.splitlines()))


def markdown_html(source: str) -> str:
    return _markdown.render(source)


_BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "tr", "blockquote", "pre", "hr"}


class _TextWriter(HTMLParser):
    """HTML to readable text: blocks become paragraphs, links "text (url)", list items "- item"."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str | None] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head", "title"):
            self.skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a" and self.links:
            href = self.links.pop()
            text = self.parts[-1].strip() if self.parts else ""
            if href and href != text and not href.startswith("#"):
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_text(html: str) -> str:
    """The plain-text alternative of an HTML message."""
    writer = _TextWriter()
    writer.feed(html)
    writer.close()
    lines = [line.strip() for line in "".join(writer.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
