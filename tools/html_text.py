"""HTML to readable text for the research agent, with the standard library only.

The title comes first; scripts, styles and other invisible parts are dropped; blocks become
lines, headings get `#` markers, list items `- `, table cells ` | `; a link becomes
`text (absolute-url)` so the agent can follow it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin

# Never shown to a reader. `head` is dropped too, but its <title> is kept.
_HIDDEN = {"script", "style", "noscript", "svg", "head", "template", "iframe", "object", "canvas", "math"}
_BLOCK = {
    "address", "article", "aside", "blockquote", "body", "center", "dd", "details", "dialog", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "hr",
    "html", "legend", "li", "main", "menu", "nav", "ol", "p", "pre", "section", "summary", "table",
    "tbody", "tfoot", "thead", "tr", "ul", "caption", "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip
# Blocks that read as paragraphs get a blank line around them.
_PARAGRAPH = {"p", "pre", "blockquote", "table", "ul", "ol", "dl", "figure", *(f"h{n}" for n in range(1, 7))}
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_SPACE = re.compile(r"\s+")


class _TextParser(HTMLParser):
    def __init__(self, base_url: str):
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.parts: list[str] = []
        self.title: list[str] = []
        self.in_title = False
        self.hidden: list[str] = []
        self.pre = 0
        self.lists = 0
        self.link: tuple[str, int] | None = None
        """(href, index in parts where the link text starts) of the open <a>."""
        self.row_cells = 0

    # Output helpers -------------------------------------------------------------------

    def _tail(self) -> str:
        for part in reversed(self.parts):
            if part:
                return part[-1]
        return "\n"

    def _newlines(self, count: int) -> None:
        """End the current line, leaving at least `count` newlines (2 = a blank line)."""
        have = 0
        for part in reversed(self.parts):
            stripped = part.rstrip(" ")
            have += len(stripped) - len(stripped.rstrip("\n"))
            if stripped.strip("\n"):
                break
        else:
            return  # nothing written yet: no leading blank lines
        if have < count:
            self.parts.append("\n" * (count - have))

    def _write(self, text: str) -> None:
        if self.pre:
            self.parts.append(text)
            return
        text = _SPACE.sub(" ", text)
        if self._tail() in " \n":
            text = text.lstrip(" ")
        if text:
            self.parts.append(text)

    # Parser callbacks -----------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            # Only the document's own title: not an <svg><title>, not a second one.
            self.in_title = not self.title and self.hidden in ([], ["head"])
            return
        if tag == "body" and "head" in self.hidden:
            self.hidden.remove("head")  # a page that never closed its <head>
        if tag in _HIDDEN:
            self.hidden.append(tag)
            return
        if self.hidden:
            return
        attr = {k: v or "" for k, v in attrs}
        if tag == "base" and attr.get("href"):
            self.base_url = urljoin(self.base_url, attr["href"])
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "a":
            self._close_link()
            self.link = (attr.get("href", ""), len(self.parts))
        elif tag == "img" and self.link is not None and attr.get("alt"):
            self._write(attr["alt"])
        elif tag in ("td", "th"):
            if self.row_cells:
                self._write(" | ")
            self.row_cells += 1
        elif tag in _BLOCK:
            self._start_block(tag)

    def _gap(self, tag: str) -> int:
        # A nested list continues its parent item: no blank line around it.
        nested = tag in ("ul", "ol") and self.lists > 0
        return 2 if tag in _PARAGRAPH and not nested else 1

    def _start_block(self, tag: str) -> None:
        self._newlines(self._gap(tag))
        if tag in _HEADINGS:
            self.parts.append("#" * _HEADINGS[tag] + " ")
        elif tag == "li":
            self.parts.append("  " * max(self.lists - 1, 0) + "- ")
        elif tag in ("ul", "ol"):
            self.lists += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "tr":
            self.row_cells = 0
        elif tag == "hr":
            self.parts.append("---")
            self._newlines(1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <img/>, <path/>: a start without content; never opens a hidden section.
        if tag in _HIDDEN or tag == "title":
            return
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
            return
        if tag in self.hidden:
            while self.hidden and self.hidden.pop() != tag:
                pass
            return
        if self.hidden:
            return
        if tag == "a":
            self._close_link()
        elif tag in _BLOCK:
            if tag in ("ul", "ol"):
                self.lists = max(self.lists - 1, 0)
            elif tag == "pre":
                self.pre = max(self.pre - 1, 0)
            self._newlines(self._gap(tag))

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.hidden:
            self._write(data)

    # Links ----------------------------------------------------------------------------

    def _close_link(self) -> None:
        if self.link is None:
            return
        href, start = self.link
        self.link = None
        text = _SPACE.sub(" ", "".join(self.parts[start:])).strip()
        url = self._absolute(href)
        if url is None or url == text:
            return
        del self.parts[start:]
        if self._tail() not in " \n":
            self.parts.append(" ")
        self.parts.append(f"{text} ({url})" if text else url)

    def _absolute(self, href: str) -> str | None:
        """The absolute URL of a link worth showing; None for in-page and script links."""
        href = href.strip()
        if not href or href.startswith("#") or href.lower().startswith(("javascript:", "data:")):
            return None
        return urljoin(self.base_url, href)

    def text(self) -> str:
        self._close_link()
        body = "".join(self.parts)
        lines = [line.rstrip() for line in body.split("\n")]
        body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
        title = _SPACE.sub(" ", "".join(self.title)).strip()
        return f"{title}\n\n{body}" if title and body else title or body


def html_to_text(html: str, base_url: str = "") -> str:
    """Readable text of an HTML document; links are resolved against `base_url`."""
    parser = _TextParser(base_url)
    parser.feed(html)
    parser.close()
    return parser.text()
