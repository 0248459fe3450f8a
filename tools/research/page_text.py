"""Turning a fetched page into text: HTML to readable text with its links, JSON pretty-printed,
other text decoded by its charset, binary content described rather than shown."""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass, field

from tools.html_text import html_to_text


@dataclass
class Page:
    url: str
    """The final URL (after redirects), with its host name, not the address used."""
    status: int
    content_type: str
    body: bytes
    cut: bool
    """The body was longer than the size cap and was cut there."""
    declared_length: int | None
    redirected_from: list[str] = field(default_factory=list)


_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_TEXT_TYPES = {
    "application/json", "application/xml", "application/javascript", "application/ecmascript",
    "application/x-javascript", "application/x-ndjson", "application/yaml", "application/x-yaml",
    "application/toml", "application/sql", "application/csv", "application/x-sh", "application/rss+xml",
    "application/atom+xml",
}  # fmt: skip


def render_page(page: Page, max_chars: int | None = None) -> str:
    """The header line, then the page as text (or a note that it is binary)."""
    mime, charset = _parse_content_type(page.content_type)
    if not mime:
        mime = _sniff(page.body)
    size = f"{len(page.body):,} bytes"
    if page.cut:
        of = f" of {page.declared_length:,}" if page.declared_length else ""
        size = f"cut at {len(page.body):,}{of} bytes by the size cap tools.fetch_max_bytes"
    lines = [f"URL: {page.url} (status {page.status}, {mime}, {size})"]
    if page.redirected_from:
        lines.append("Redirected from: " + " -> ".join(page.redirected_from))
    text = _body_text(page, mime, charset)
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars] + (
            f"\n[cut at {max_chars:,} of {len(text):,} characters; call again with a larger max_chars to see more]"
        )
    return "\n".join(lines) + "\n\n" + text


def _body_text(page: Page, mime: str, charset: str | None) -> str:
    if not page.body:
        return "(empty body)"
    if mime in _HTML_TYPES:
        return html_to_text(_decode(page.body, charset or _meta_charset(page.body)), page.url)
    if _is_json(mime):
        text = _decode(page.body, charset)
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return text  # cut by the size cap, or not really JSON: show it as it is
    if mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith("+xml"):
        return _decode(page.body, charset)
    return f"binary content of type {mime} ({len(page.body):,} bytes); not shown."


def _parse_content_type(header: str) -> tuple[str, str | None]:
    mime, _, params = header.partition(";")
    match = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", params, re.IGNORECASE)
    return mime.strip().lower(), (match.group(1) if match else None)


def _is_json(mime: str) -> bool:
    return mime in ("application/json", "text/json") or mime.endswith("+json")


def _sniff(body: bytes) -> str:
    """A content type for a response that sent none."""
    head = body[:1024].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    if b"\0" in head:
        return "application/octet-stream"
    try:
        body[:4096].decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < 4090:  # a character cut at the end of the sample is fine
            return "application/octet-stream"
    return "text/plain"


def _meta_charset(body: bytes) -> str | None:
    match = re.search(rb"<meta[^>]+charset\s*=\s*[\"']?([\w.:-]+)", body[:4096], re.IGNORECASE)
    return match.group(1).decode("ascii") if match else None


def _decode(body: bytes, charset: str | None) -> str:
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", errors="replace")
    try:
        codec = codecs.lookup(charset or "utf-8").name
    except LookupError:
        codec = "utf-8"
    return body.decode(codec, errors="replace")
