"""fetch_url: one web page over http(s), every hop of its redirects checked by netguard, its
body capped at tools.fetch_max_bytes, and the page rendered as text (tools.research.page_text).

Also what web_search shares with it: FetchFailed, the User-Agent, and naming the cause of a
failed connection."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import httpx2

from runtime.config import ToolSettings
from runtime.context import ApprovalRequest, RunContext
from runtime.errors import ToolDenied, ToolFailed
from tools.base import tool
from tools.netguard import Target, UnresolvedHost, aresolve_url
from tools.research.page_text import Page, render_page

USER_AGENT = "Shunter/0.1 (+research agent)"
MAX_REDIRECTS = 5
_REDIRECT_CODES = {301, 302, 303, 307, 308}


class FetchFailed(Exception):
    """A fetch or search that failed for a reason worth one sentence to the agent."""


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
        raise ToolFailed("max_chars must be at least 1; leave it out to get the whole page.")
    try:
        async with asyncio.timeout(settings.fetch_timeout_s):
            page = await fetch_page(url, settings)
    except (FetchFailed, UnresolvedHost) as e:
        raise ToolFailed(str(e)) from None
    except TimeoutError:
        raise ToolFailed(_timeout_sentence(url, settings.fetch_timeout_s)) from None
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
            raise FetchFailed(
                f"The connection to {shown} failed ({error_reason(e)}); try again later."
            ) from None
    raise FetchFailed(
        f"Could not connect to {target.host} port {target.port} ({error_reason(last_error)}); "
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


def error_reason(error: BaseException | None) -> str:
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
