"""web_search: a query to the configured search provider (SearXNG or Brave), answered as a
numbered list of title, URL and snippet."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2

from runtime.config import ToolSettings
from runtime.context import RunContext
from runtime.errors import ToolFailed
from tools.base import tool
from tools.html_text import html_to_text
from tools.research.fetch import USER_AGENT, FetchFailed, error_reason


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
            f"Could not reach {label} ({error_reason(e)}); check that it is running and that tools.search_url is right."
        ) from None
    except (httpx2.RequestError, httpx2.InvalidURL) as e:
        raise FetchFailed(f"The request to {label} failed ({error_reason(e)}); try again later.") from None
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
        raise ToolFailed("The search query is empty; pass some words to search for.")
    max_results = min(max(max_results, 1), 20)
    try:
        provider = search_provider(ctx.settings.tools)
        hits = await provider.search(query, max_results)
    except FetchFailed as e:
        raise ToolFailed(str(e)) from None
    return format_hits(query, provider.name, hits)
