"""Research tools: `fetch_url` reads a web page, `web_search` asks a search provider.

Both only read: they never touch the workspace. Every failure comes back as one sentence of
text; a refused address raises ToolDenied, which the registry reports as a refusal.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2

from runtime.config import ToolSettings
from runtime.context import ApprovalRequest, RunContext
from runtime.errors import ToolDenied
from tools.base import tool
from tools.html_text import html_to_text
from tools.netguard import Target, UnresolvedHost, aresolve_url

USER_AGENT = "Shunter/0.1 (+research agent)"
MAX_REDIRECTS = 5
_REDIRECT_CODES = {301, 302, 303, 307, 308}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_TEXT_TYPES = {
    "application/json", "application/xml", "application/javascript", "application/ecmascript",
    "application/x-javascript", "application/x-ndjson", "application/yaml", "application/x-yaml",
    "application/toml", "application/sql", "application/csv", "application/x-sh", "application/rss+xml",
    "application/atom+xml",
}  # fmt: skip


class FetchFailed(Exception):
    """A fetch or search that failed for a reason worth one sentence to the agent."""


# --------------------------------------------------------------------------------------
# fetch_url
# --------------------------------------------------------------------------------------


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


@dataclass
class Redirect:
    location: str


def _approve_fetch(ctx: RunContext, args: dict) -> ApprovalRequest | None:
    # Private data plus untrusted pages plus a way out is how data leaks: a page can ask the
    # agent to put what it read from the workspace into a URL. Once this subtask has read
    # workspace files, every fetch is shown to the user first.
    if ctx.subtask_id not in ctx.workspace_readers:
        return None
    return ApprovalRequest(
        kind="other",
        tool="fetch_url",
        summary=f"fetch {args['url']}",
        detail="This subtask has read workspace files; check that the URL carries none of their content.",
        subtask_id=ctx.subtask_id,
        agent=ctx.agent,
    )


@tool(effect="network", approval=_approve_fetch)
async def fetch_url(ctx: RunContext, url: str, max_chars: int | None = None) -> str:
    """Fetch a web page or document over http(s) and return it as readable text.

    HTML is converted to text with its links kept as `text (url)`; JSON is pretty-printed;
    binary files are described, not shown. Private and local network addresses are refused.

    Args:
        url: The full http:// or https:// address to fetch.
        max_chars: Keep at most this many characters of the text (default: all of it).
    """
    settings = ctx.settings.tools
    if max_chars is not None and max_chars < 1:
        return "max_chars must be at least 1; leave it out to get the whole page."
    try:
        async with asyncio.timeout(settings.fetch_timeout_s):
            page = await fetch_page(url, settings)
    except (FetchFailed, UnresolvedHost) as e:
        return str(e)
    except TimeoutError:
        return _timeout_sentence(url, settings.fetch_timeout_s)
    # Parsing a 2 MB page takes most of a second: off the event loop, so parallel work goes on.
    return await asyncio.to_thread(render_page, page, max_chars)


async def fetch_page(url: str, settings: ToolSettings, *, verify: ssl.SSLContext | bool = True) -> Page:
    """GET `url`, following up to MAX_REDIRECTS redirects, each hop checked by netguard.

    `verify` is the TLS verification of httpx2 (a context trusting a test CA in tests)."""
    history: list[str] = []
    # No environment proxies: a proxy would resolve the name itself and undo the address check.
    async with httpx2.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        timeout=httpx2.Timeout(settings.fetch_timeout_s),
        follow_redirects=False,
        trust_env=False,
        verify=verify,
    ) as client:
        current = url
        while True:
            try:
                target = await aresolve_url(
                    current,
                    allow_private=settings.fetch_allow_private,
                    allow_hosts=settings.fetch_allow_hosts,
                )
            except ToolDenied as e:
                if history:
                    raise ToolDenied(f"{e} It was reached by a redirect from {history[-1]}.") from None
                raise
            if history and target.host != httpx2.URL(history[-1]).raw_host.decode("ascii"):
                client.cookies.clear()  # cookies never follow a redirect to another host
            answer = await _get(client, target, settings)
            if isinstance(answer, Page):
                answer.redirected_from = history
                return answer
            if len(history) >= MAX_REDIRECTS:
                raise FetchFailed(
                    f"Stopped after {MAX_REDIRECTS} redirects at {current}; the page redirects too often "
                    "(a loop?), so try the final address directly."
                )
            history.append(str(target.url))
            try:
                current = str(target.url.join(answer.location))
            except httpx2.InvalidURL:
                raise FetchFailed(
                    f"{current} redirected to an invalid address {answer.location!r}."
                ) from None


async def _get(client: httpx2.AsyncClient, target: Target, settings: ToolSettings) -> Page | Redirect:
    """One GET to the checked addresses of `target` (the next one only if a connection fails)."""
    shown = str(target.url)
    # DNS rebinding: connect to the address that was checked, with the name in Host and SNI.
    headers = {"Host": target.url.netloc.decode("ascii")}
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    last_error: Exception | None = None
    for address in target.addresses:
        try:
            request_url = target.url.copy_with(host=address)
            async with client.stream("GET", request_url, headers=headers, extensions=extensions) as response:
                return await _read(response, shown, settings.fetch_max_bytes)
        except httpx2.ConnectError as e:
            last_error = e  # e.g. an IPv6 address without an IPv6 route: try the next address
        except httpx2.TimeoutException:
            raise FetchFailed(_timeout_sentence(shown, settings.fetch_timeout_s)) from None
        except (httpx2.RequestError, httpx2.InvalidURL) as e:
            raise FetchFailed(f"The connection to {shown} failed ({_reason(e)}); try again later.") from None
    raise FetchFailed(
        f"Could not connect to {target.host} port {target.port} ({_reason(last_error)}); "
        "the server may be down or the URL may be wrong."
    )


async def _read(response: httpx2.Response, url: str, max_bytes: int) -> Page | Redirect:
    status = response.status_code
    location = response.headers.get("location")
    if status in _REDIRECT_CODES and location:
        return Redirect(location)  # its body is never needed
    if status >= 400:
        raise FetchFailed(_status_sentence(url, status, response.reason_phrase))
    body, cut = await _read_capped(response, max_bytes)
    length = response.headers.get("content-length", "")
    declared = int(length) if length.isdigit() else None
    return Page(url, status, response.headers.get("content-type", ""), body, cut, declared)


async def _read_capped(response: httpx2.Response, max_bytes: int) -> tuple[bytes, bool]:
    """The body up to `max_bytes`; stops reading (and says so) instead of buffering more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        room = max_bytes - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _status_sentence(url: str, status: int, reason: str) -> str:
    advice = {
        401: "the page needs a login",
        403: "the server refuses access to it",
        404: "the page does not exist",
        410: "the page was removed",
        429: "the server is limiting requests, so try again later",
    }.get(status)
    if advice is None:
        advice = (
            "the server failed, so try again later" if status >= 500 else "the server refused the request"
        )
    return f"{url} returned HTTP {status} {reason}: {advice}."


def _timeout_sentence(url: str, seconds: float) -> str:
    return (
        f"Timed out after {seconds:g} s fetching {url}; the server is slow or unreachable, "
        "so try again later (a user can raise tools.fetch_timeout_s)."
    )


def _reason(error: BaseException | None) -> str:
    """The most telling cause in an exception chain ('connection refused', 'No route to host')."""
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    for e in seen:
        if isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower():
            return "connection refused"
    for e in reversed(seen):
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
    text = str(seen[0]).strip() if seen else ""
    return text or (type(seen[0]).__name__ if seen else "unknown error")


# --------------------------------------------------------------------------------------
# Turning a page into text
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# web_search
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str = ""


class SearchProvider(Protocol):
    name: str

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        """Up to `max_results` hits; raises FetchFailed with one sentence on failure."""
        ...


NO_PROVIDER = (
    "No web search provider is configured, so web_search cannot run; a user can add these lines "
    'to .shunter/config.toml:\n[tools]\nsearch_provider = "searxng"\nsearch_url = "http://localhost:8888"\n'
    '(or search_provider = "brave" with the BRAVE_API_KEY environment variable set). '
    "Meanwhile fetch_url can read pages whose address you know."
)


@dataclass
class SearxngProvider:
    """A SearXNG instance's JSON API (its settings.yml must list json under search.formats)."""

    base_url: str
    timeout_s: float
    name: str = "SearXNG"

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        data = await _get_json(
            self.base_url.rstrip("/") + "/search",
            params={"q": query, "format": "json"},
            headers={},
            timeout_s=self.timeout_s,
            label=f"the SearXNG instance at {self.base_url}",
            advice={403: "add json to search.formats in its settings.yml"},
        )
        items = data.get("results") if isinstance(data, dict) else None
        return _hits(items or [], "content", max_results)


@dataclass
class BraveProvider:
    """The Brave Search API; the key comes from BRAVE_API_KEY and is never shown or logged."""

    api_key: str = field(repr=False)
    timeout_s: float
    base_url: str = "https://api.search.brave.com"
    name: str = "Brave Search"

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        data = await _get_json(
            self.base_url.rstrip("/") + "/res/v1/web/search",
            params={"q": query, "count": str(min(max_results, 20))},
            headers={"Accept": "application/json", "X-Subscription-Token": self.api_key},
            timeout_s=self.timeout_s,
            label="the Brave Search API",
            advice=dict.fromkeys((401, 403, 422), "check the BRAVE_API_KEY environment variable"),
            trust_env=True,
        )
        web = data.get("web") if isinstance(data, dict) else None
        items = web.get("results") if isinstance(web, dict) else None
        return _hits(items or [], "description", max_results)


def search_provider(settings: ToolSettings, env: Mapping[str, str] | None = None) -> SearchProvider:
    """The provider the settings name; raises FetchFailed saying how to configure one."""
    env = os.environ if env is None else env
    name = (settings.search_provider or "").strip().lower()
    if not name:
        raise FetchFailed(NO_PROVIDER)
    if name == "searxng":
        if not settings.search_url:
            raise FetchFailed(
                'tools.search_provider is "searxng" but tools.search_url is not set; a user can add '
                'search_url = "http://localhost:8888" (the SearXNG address) under [tools] in .shunter/config.toml.'
            )
        # The user configured this address, so it is not checked by netguard: a SearXNG on
        # localhost or the LAN is the normal setup. The result URLs are only text here; fetching
        # one goes through fetch_url and its checks.
        return SearxngProvider(settings.search_url, settings.fetch_timeout_s)
    if name == "brave":
        key = env.get("BRAVE_API_KEY", "").strip()
        if not key:
            raise FetchFailed(
                'tools.search_provider is "brave" but the BRAVE_API_KEY environment variable is not set; '
                "a user can set it to a Brave Search API key."
            )
        base = settings.search_url or BraveProvider.base_url
        return BraveProvider(key, settings.fetch_timeout_s, base)
    raise FetchFailed(
        f'Unknown search provider {settings.search_provider!r} in tools.search_provider; use "searxng" '
        '(with tools.search_url) or "brave" (with BRAVE_API_KEY).'
    )


async def _get_json(
    url: str,
    *,
    params: dict[str, str],
    headers: dict[str, str],
    timeout_s: float,
    label: str,
    advice: dict[int, str],
    trust_env: bool = False,
) -> Any:
    """GET a JSON API; every failure becomes one sentence naming `label` (never the headers,
    which may hold a key)."""
    try:
        async with httpx2.AsyncClient(
            headers={"User-Agent": USER_AGENT}, timeout=httpx2.Timeout(timeout_s), trust_env=trust_env
        ) as client:
            response = await client.get(url, params=params, headers=headers)
    except httpx2.TimeoutException:
        raise FetchFailed(f"{label} did not answer within {timeout_s:g} s; try again later.") from None
    except httpx2.ConnectError as e:
        raise FetchFailed(
            f"Could not reach {label} ({_reason(e)}); check that it is running and that tools.search_url is right."
        ) from None
    except (httpx2.RequestError, httpx2.InvalidURL) as e:
        raise FetchFailed(f"The request to {label} failed ({_reason(e)}); try again later.") from None
    if response.status_code >= 400:
        status = response.status_code
        hint = advice.get(status) or (
            "try again later" if status == 429 or status >= 500 else "check its settings"
        )
        raise FetchFailed(f"{label} answered HTTP {status} {response.reason_phrase}; {hint}.")
    try:
        return response.json()
    except ValueError:
        raise FetchFailed(
            f"{label} did not return JSON; check that tools.search_url points at its API."
        ) from None


def _hits(items: list[Any], snippet_key: str, max_results: int) -> list[SearchHit]:
    hits: list[SearchHit] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not item.get("url") or item["url"] in seen:
            continue
        seen.add(item["url"])
        # Brave marks matches with <strong>; SearXNG may send entities: both become plain text.
        title = html_to_text(str(item.get("title") or "")) or item["url"]
        snippet = html_to_text(str(item.get(snippet_key) or ""))
        hits.append(SearchHit(title, str(item["url"]), snippet))
        if len(hits) >= max_results:
            break
    return hits


def format_hits(query: str, provider: str, hits: list[SearchHit]) -> str:
    if not hits:
        return f"No results from {provider} for {query!r}; try other words."
    lines = [f"Results from {provider} for {query!r} ({len(hits)}):", ""]
    for n, hit in enumerate(hits, 1):
        lines.append(f"{n}. {hit.title}")
        lines.append(f"   {hit.url}")
        if hit.snippet:
            lines.append("   " + " ".join(hit.snippet.split()))
    return "\n".join(lines)


@tool(effect="network")
async def web_search(ctx: RunContext, query: str, max_results: int = 8) -> str:
    """Search the web and return the top results as title, URL and snippet.

    Read promising results with fetch_url.

    Args:
        query: What to search for, as you would type it into a search engine.
        max_results: How many results to return (1 to 20).
    """
    query = query.strip()
    if not query:
        return "The search query is empty; pass some words to search for."
    max_results = min(max(max_results, 1), 20)
    try:
        provider = search_provider(ctx.settings.tools)
        hits = await provider.search(query, max_results)
    except FetchFailed as e:
        return str(e)
    return format_hits(query, provider.name, hits)


TOOLS = [fetch_url, web_search]
