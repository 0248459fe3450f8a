"""Research tools against a local HTTP server on 127.0.0.1; nothing here reaches the internet.

Name resolution for made-up names (*.test) goes through a fake getaddrinfo, so DNS is never
asked either.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from runtime.config import Settings, ToolSettings
from runtime.context import RunContext, approve_all
from runtime.errors import ToolDenied
from tools import research
from tools.html_text import html_to_text
from tools.netguard import UnresolvedHost, blocked_reason, check_url, resolve_url
from tools.registry import ToolRegistry, aexecute_tool, execute_tool
from tools.research.fetch import FetchFailed, fetch_page
from tools.research.search import search_provider

PAGE = b"""<!doctype html><html><head><title>Test  Page</title>
<style>.x { color: red }</style><script>alert("hidden script")</script></head>
<body><h1>Welcome</h1>
<p>Read the <a href="/docs/guide.html">guide</a> or   <a href="https://example.org/about">about us</a>.</p>
<ul><li>first</li><li>second</li></ul></body></html>"""
DATA = {"name": "shunter", "items": [1, 2, 3], "nested": {"ok": True}}
BIG_SIZE = 50_000
BRAVE_KEY = "brave-test-key-123456"


class Handler(BaseHTTPRequestHandler):
    server: LocalServer

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.server.hits[path] += 1
        route = ROUTES.get(path)
        if route is None:
            self.send(404, b"not found", "text/plain")
        else:
            route(self)

    def send(self, status: int, body: bytes, content_type: str | None, headers: dict[str, str] | None = None):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (size cap, timeout): expected

    def redirect(self, location: str) -> None:
        self.send(302, b"", None, {"Location": location})

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}


def slow(h: Handler) -> None:
    h.server.release.wait(5)  # released when the fixture ends
    h.send(200, b"late", "text/plain")


def searxng(h: Handler) -> None:
    if h.query.get("format") != "json":
        return h.send(400, b"format missing", "text/plain")
    q = h.query["q"]
    results = [
        {"title": f"About {q}", "url": "https://one.example/a", "content": "First &amp; best"},
        {"title": "Duplicate", "url": "https://one.example/a", "content": "same URL again"},
        {"title": "Second", "url": "https://two.example/b", "content": "Another   result"},
        {"title": "Third", "url": "https://three.example/c", "content": ""},
    ]
    h.send(200, json.dumps({"query": q, "results": results}).encode(), "application/json")


def brave(h: Handler) -> None:
    if h.headers.get("X-Subscription-Token") != BRAVE_KEY:
        return h.send(401, b'{"error": "bad key"}', "application/json")
    hits = [
        {
            "title": "<strong>Brave</strong> hit",
            "url": "https://brave.example/",
            "description": "a <strong>match</strong>",
        }
    ]
    h.send(200, json.dumps({"web": {"results": hits}}).encode(), "application/json")


ROUTES = {
    "/page.html": lambda h: h.send(200, PAGE, "text/html; charset=utf-8"),
    "/data.json": lambda h: h.send(200, json.dumps(DATA, separators=(",", ":")).encode(), "application/json"),
    "/big.txt": lambda h: h.send(200, b"x" * BIG_SIZE, "text/plain"),
    "/image.png": lambda h: h.send(200, b"\x89PNG\r\n\x1a\n" + bytes(1016), "image/png"),
    "/latin1.html": lambda h: h.send(200, "<p>café</p>".encode("latin-1"), "text/html; charset=ISO-8859-1"),
    "/untyped": lambda h: h.send(200, b"plain words", None),
    "/hop1": lambda h: h.redirect("/hop2"),
    "/hop2": lambda h: h.redirect(f"http://127.0.0.1:{h.server.server_port}/page.html"),
    "/loop": lambda h: h.redirect("/loop"),
    "/to-metadata": lambda h: h.redirect("http://169.254.169.254/latest/meta-data/"),
    "/to-private": lambda h: h.redirect("http://10.0.0.1/admin"),
    "/to-localhost": lambda h: h.redirect(f"http://localhost:{h.server.server_port}/secret"),
    "/secret": lambda h: h.send(200, b"the secret", "text/plain"),
    "/host": lambda h: h.send(200, f"Host: {h.headers['Host']}".encode(), "text/plain"),
    "/slow": slow,
    "/broken": lambda h: h.send(500, b"oops", "text/plain"),
    "/search": searxng,
    "/nojson/search": lambda h: h.send(403, b"Forbidden", "text/html"),
    "/brave/res/v1/web/search": brave,
}


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    httpd = LocalServer()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


def make_ctx(tmp_path: Path, **tool_settings: object) -> RunContext:
    settings = Settings(tools=ToolSettings(**{"fetch_allow_hosts": ["127.0.0.1"], **tool_settings}))
    return RunContext(
        workspace=tmp_path, settings=settings, approve=approve_all, tools=ToolRegistry(research.TOOLS)
    )


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Answers for made-up names; every other name goes to the real getaddrinfo."""
    answers: dict[str, list[str] | Exception | Callable[[], list[str]]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        answer = answers.get(host)
        if answer is None:
            return real(host, port, *args, **kwargs)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            answer = answer()
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port)) for a in answer
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


async def fetch(ctx: RunContext, url: str, **args: object) -> str:
    return await aexecute_tool("fetch_url", {"url": url, **args}, ctx)


# --- fetch_url ------------------------------------------------------------------------


async def test_html_page_becomes_text_with_header_and_absolute_links(server, tmp_path):
    out = await fetch(make_ctx(tmp_path), f"{server.base}/page.html")
    header, _, body = out.partition("\n\n")
    assert header == f"URL: {server.base}/page.html (status 200, text/html, {len(PAGE):,} bytes)"
    assert body.splitlines()[0] == "Test Page"
    assert "# Welcome" in body
    assert f"guide ({server.base}/docs/guide.html)" in body
    assert "about us (https://example.org/about)" in body
    assert "- first\n- second" in body
    assert "hidden script" not in body and "color: red" not in body


async def test_json_is_pretty_printed(server, tmp_path):
    out = await fetch(make_ctx(tmp_path), f"{server.base}/data.json")
    header, _, body = out.partition("\n\n")
    assert "(status 200, application/json," in header
    assert json.loads(body) == DATA
    assert '\n  "items": [' in body


async def test_body_is_cut_at_the_size_cap_and_says_so(server, tmp_path):
    out = await fetch(make_ctx(tmp_path, fetch_max_bytes=10_000), f"{server.base}/big.txt")
    header, _, body = out.partition("\n\n")
    assert f"cut at 10,000 of {BIG_SIZE:,} bytes by the size cap" in header
    assert body == "x" * 10_000


async def test_max_chars_cuts_the_text_and_says_so(server, tmp_path):
    out = await fetch(make_ctx(tmp_path), f"{server.base}/big.txt", max_chars=100)
    assert "x" * 100 + f"\n[cut at 100 of {BIG_SIZE:,} characters" in out
    assert "x" * 101 not in out


async def test_binary_content_is_described_not_shown(server, tmp_path):
    out = await fetch(make_ctx(tmp_path), f"{server.base}/image.png")
    assert out.endswith("binary content of type image/png (1,024 bytes); not shown.")
    assert "PNG" not in out


async def test_charset_from_header_and_sniffed_type(server, tmp_path):
    ctx = make_ctx(tmp_path)
    assert (await fetch(ctx, f"{server.base}/latin1.html")).endswith("café")
    untyped = await fetch(ctx, f"{server.base}/untyped")
    assert "(status 200, text/plain, 11 bytes)" in untyped and untyped.endswith("plain words")


async def test_redirect_chain_is_followed_and_reported(server, tmp_path):
    out = await fetch(make_ctx(tmp_path), f"{server.base}/hop1")
    assert out.startswith(f"URL: {server.base}/page.html (status 200, text/html,")
    assert f"Redirected from: {server.base}/hop1 -> {server.base}/hop2" in out
    assert "# Welcome" in out


async def test_redirect_loop_stops_after_five_hops(server, tmp_path):
    before = server.hits["/loop"]
    out = await fetch(make_ctx(tmp_path), f"{server.base}/loop")
    assert out == (
        f"Stopped after 5 redirects at {server.base}/loop; the page redirects too often (a loop?), "
        "so try the final address directly."
    )
    assert server.hits["/loop"] - before == 6


async def test_redirect_to_cloud_metadata_is_refused(server, tmp_path):
    out = await fetch(make_ctx(tmp_path), f"{server.base}/to-metadata")
    assert out.startswith(
        "fetch_url was refused: Refusing to fetch http://169.254.169.254/latest/meta-data/: "
        "169.254.169.254 is a link-local (cloud metadata) address;"
    )
    assert f"It was reached by a redirect from {server.base}/to-metadata." in out


async def test_redirect_to_private_network_is_refused(server, tmp_path):
    out = await fetch(make_ctx(tmp_path), f"{server.base}/to-private")
    assert "Refusing to fetch http://10.0.0.1/admin: 10.0.0.1 is a private address" in out


async def test_redirect_to_refused_host_never_connects(server, tmp_path):
    before = server.hits["/secret"]
    out = await fetch(make_ctx(tmp_path), f"{server.base}/to-localhost")
    assert "Refusing to fetch http://localhost:" in out
    assert "localhost resolves to 127.0.0.1, which is a loopback address" in out
    assert server.hits["/secret"] == before
    # Control: once the user allows the host, the same redirect does reach the server.
    allowed = await fetch(
        make_ctx(tmp_path, fetch_allow_hosts=["127.0.0.1", "localhost"]), f"{server.base}/to-localhost"
    )
    assert allowed.endswith("the secret")
    assert server.hits["/secret"] == before + 1


async def test_direct_fetch_of_loopback_is_refused_without_allow_hosts(server, tmp_path):
    before = server.hits["/secret"]
    out = await fetch(make_ctx(tmp_path, fetch_allow_hosts=[]), f"{server.base}/secret")
    assert out.startswith(
        f"fetch_url was refused: Refusing to fetch {server.base}/secret: 127.0.0.1 is a loopback"
    )
    assert server.hits["/secret"] == before


async def test_slow_server_times_out(server, tmp_path):
    out = await fetch(make_ctx(tmp_path, fetch_timeout_s=0.3), f"{server.base}/slow")
    assert out.startswith(f"Timed out after 0.3 s fetching {server.base}/slow;")


async def test_http_errors_are_one_sentence(server, tmp_path):
    ctx = make_ctx(tmp_path)
    missing = await fetch(ctx, f"{server.base}/missing")
    assert missing == f"{server.base}/missing returned HTTP 404 Not Found: the page does not exist."
    broken = await fetch(ctx, f"{server.base}/broken")
    assert (
        broken
        == f"{server.base}/broken returned HTTP 500 Internal Server Error: the server failed, so try again later."
    )


async def test_connection_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    out = await fetch(make_ctx(tmp_path), f"http://127.0.0.1:{port}/")
    assert out.startswith(f"Could not connect to 127.0.0.1 port {port} (connection refused);")


async def test_unknown_host(tmp_path, fake_dns):
    fake_dns["no-such-host.test"] = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    out = await fetch(make_ctx(tmp_path), "http://no-such-host.test/")
    assert out == "Could not resolve the host 'no-such-host.test' (Name or service not known); check the URL."


async def test_connects_to_the_checked_address_with_the_original_host_header(server, tmp_path, fake_dns):
    # A rebinding name: the first answer is allowed, any later one would be hostile.
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])
    lookups = []
    fake_dns["rebind.test"] = lambda: lookups.append(1) or next(answers)
    ctx = make_ctx(tmp_path, fetch_allow_hosts=["rebind.test"])
    out = await fetch(ctx, f"http://rebind.test:{server.server_port}/host")
    assert out.startswith(f"URL: http://rebind.test:{server.server_port}/host (status 200")
    assert out.endswith(f"Host: rebind.test:{server.server_port}")
    assert len(lookups) == 1  # resolved once, and the connection went to that answer


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[LocalServer, Path, list[str]]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for secure.test."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed; it makes the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=secure.test",
         "-addext", "subjectAltName=DNS:secure.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    server_names: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    httpd = LocalServer()
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield httpd, cert, server_names
    httpd.shutdown()
    httpd.server_close()


async def test_https_to_the_checked_address_keeps_sni_and_verifies_the_name(tls_server, fake_dns):
    httpd, cert, server_names = tls_server
    fake_dns["secure.test"] = ["127.0.0.1"]
    fake_dns["impostor.test"] = ["127.0.0.1"]
    settings = ToolSettings(fetch_allow_hosts=["secure.test", "impostor.test"])
    verify = ssl.create_default_context(cafile=str(cert))
    page = await fetch_page(f"https://secure.test:{httpd.server_port}/host", settings, verify=verify)
    assert page.body == f"Host: secure.test:{httpd.server_port}".encode()
    assert server_names == ["secure.test"]
    # Connecting by address must not weaken verification: the certificate is not for this name.
    with pytest.raises(FetchFailed, match="certificate verify failed"):
        await fetch_page(f"https://impostor.test:{httpd.server_port}/host", settings, verify=verify)


def test_sync_execute_tool_works(server, tmp_path):
    out = execute_tool("fetch_url", {"url": f"{server.base}/data.json"}, make_ctx(tmp_path))
    assert json.loads(out.partition("\n\n")[2]) == DATA


async def test_max_chars_must_be_positive(server, tmp_path):
    out = await fetch(make_ctx(tmp_path), f"{server.base}/page.html", max_chars=0)
    assert out == "max_chars must be at least 1; leave it out to get the whole page."


def test_research_tools_are_network_tools():
    assert [t.name for t in research.TOOLS] == ["fetch_url", "web_search"]
    assert all(t.effect == "network" and t.read_only for t in research.TOOLS)
    assert research.web_search.approval is None and research.fetch_url.approval is not None
    params = research.fetch_url.schema()["function"]["parameters"]
    assert params["required"] == ["url", "max_chars"] and params["additionalProperties"] is False


# --- netguard -------------------------------------------------------------------------

REFUSED = [
    ("http://127.0.0.1/", "loopback"),
    ("http://localhost/", "loopback"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::1]/", "loopback"),
    ("http://[::]/", "unspecified"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://017700000001/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local (cloud metadata)"),
    ("http://[::ffff:127.0.0.1]/", "loopback (IPv4 127.0.0.1 inside IPv6)"),
    ("http://[::ffff:a9fe:a9fe]/", "link-local (cloud metadata) (IPv4 169.254.169.254 inside IPv6)"),
    ("http://[64:ff9b::a00:1]/", "private (IPv4 10.0.0.1 inside IPv6)"),
    ("http://[2002:c0a8:101::]/", "private (IPv4 192.168.1.1 inside IPv6)"),
    ("http://[fe80::1]/", "link-local"),
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.255/", "private"),
    ("http://192.168.0.1/", "private"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://[fd00::1]/", "unique-local"),
    ("http://[fd00:ec2::254]/", "unique-local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "private"),
    ("http://198.18.0.1/", "private"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_private_spellings_are_refused(url, reason):
    with pytest.raises(ToolDenied) as err:
        check_url(url, allow_private=False, allow_hosts=[])
    assert f"a {reason} address" in str(err.value) or f"an {reason} address" in str(err.value)
    assert str(err.value).startswith("Refusing to fetch ")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "not file:"),
        ("gopher://127.0.0.1:70/", "not gopher:"),
        ("ftp://example.com/x", "not ftp:"),
        ("javascript:alert(1)", "not javascript:"),
        ("example.com/page", "not a URL without a scheme"),
        ("http://user:pass@example.com/", "user name or password"),
        ("http://user@example.com/", "user name or password"),
        ("http:///nohost", "has no host name"),
    ],
)
def test_bad_url_forms_are_refused_before_any_lookup(url, message, fake_dns):
    fake_dns["example.com"] = AssertionError("must not be resolved")
    with pytest.raises(ToolDenied, match=message):
        check_url(url, allow_private=False, allow_hosts=["127.0.0.1"])


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://127.0.0.1:8080/", ["127.0.0.1"]),
        ("http://[::1]/", ["::1"]),
        ("http://[::1]/", ["[::1]"]),
        ("http://LocalHost/", ["localhost"]),
        ("http://10.1.2.3/", ["10.0.0.0/8"]),
    ],
)
def test_allow_hosts_lets_a_listed_host_through(url, allow):
    check_url(url, allow_private=False, allow_hosts=allow)


def test_allow_private_lets_everything_local_through():
    for url in ("http://localhost/", "http://169.254.169.254/", "http://[fd00::1]/", "http://2130706433/"):
        check_url(url, allow_private=True, allow_hosts=[])


def test_allowing_an_address_does_not_allow_other_names_for_it():
    for url in ("http://localhost/", "http://2130706433/", "http://127.0.0.2/"):
        with pytest.raises(ToolDenied):
            check_url(url, allow_private=False, allow_hosts=["127.0.0.1"])


def test_public_name_passes_and_any_private_answer_refuses(fake_dns):
    fake_dns["public.test"] = ["93.184.216.34", "2606:2800:220:1::1"]
    fake_dns["mixed.test"] = ["93.184.216.34", "10.0.0.5"]
    target = resolve_url("https://public.test/x", allow_private=False, allow_hosts=[])
    assert target.addresses == ["93.184.216.34", "2606:2800:220:1::1"]
    assert (target.host, target.port) == ("public.test", 443)
    with pytest.raises(ToolDenied, match="mixed.test resolves to 10.0.0.5, which is a private address"):
        check_url("http://mixed.test/", allow_private=False, allow_hosts=[])


def test_unresolvable_host_is_not_a_refusal(fake_dns):
    fake_dns["gone.test"] = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    with pytest.raises(UnresolvedHost, match="Could not resolve the host 'gone.test'"):
        check_url("http://gone.test/", allow_private=False, allow_hosts=[])


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses_are_not_blocked(address):
    assert blocked_reason(ipaddress.ip_address(address)) is None


# --- html_text ------------------------------------------------------------------------


def test_html_to_text_structure():
    html = """<html><head><title>T</title><meta charset=utf-8><script>x()</script></head><body>
    <base href="https://docs.example/v2/">
    <nav><a href="#top">Top</a> <a href="javascript:void(0)">menu</a></nav>
    <h2>Part   two</h2><p>Words
    over lines &amp; entities.<br>Next line.</p>
    <ol><li>a <ul><li>nested</li></ul></li></ol>
    <table><tr><th>k</th><th>v</th></tr><tr><td>1</td><td>2</td></tr></table>
    <pre>  keep
      spacing</pre>
    <a href="img"><img src="i.png" alt="Logo"></a><svg><title>icon</title></svg><noscript>no js</noscript>
    </body></html>"""
    text = html_to_text(html, "https://ignored.example/")
    assert text.splitlines()[0] == "T"
    assert "## Part two" in text
    assert "Words over lines & entities.\nNext line." in text
    assert "- a\n  - nested" in text
    assert "k | v\n1 | 2" in text
    assert "  keep\n      spacing" in text
    assert "Logo (https://docs.example/v2/img)" in text
    assert "Top" in text and "(#top)" not in text and "javascript" not in text
    assert "icon" not in text and "no js" not in text and "x()" not in text
    assert "\n\n\n" not in text


# --- web_search -----------------------------------------------------------------------


async def test_searxng_results(server, tmp_path):
    # No fetch_allow_hosts: the user-configured search URL is exempt from the address check.
    ctx = make_ctx(tmp_path, fetch_allow_hosts=[], search_provider="searxng", search_url=server.base)
    out = await aexecute_tool("web_search", {"query": "rust async", "max_results": 2}, ctx)
    assert out == (
        "Results from SearXNG for 'rust async' (2):\n\n"
        "1. About rust async\n   https://one.example/a\n   First & best\n"
        "2. Second\n   https://two.example/b\n   Another result"
    )


async def test_search_without_provider_says_how_to_configure(tmp_path):
    out = await aexecute_tool("web_search", {"query": "x"}, make_ctx(tmp_path))
    assert out.startswith("No web search provider is configured")
    assert '[tools]\nsearch_provider = "searxng"\nsearch_url = "http://localhost:8888"' in out


async def test_searxng_without_url_and_unknown_provider(tmp_path):
    no_url = await aexecute_tool("web_search", {"query": "x"}, make_ctx(tmp_path, search_provider="searxng"))
    assert no_url.startswith('tools.search_provider is "searxng" but tools.search_url is not set;')
    unknown = await aexecute_tool("web_search", {"query": "x"}, make_ctx(tmp_path, search_provider="bing"))
    assert unknown.startswith("Unknown search provider 'bing' in tools.search_provider;")


async def test_searxng_json_disabled_and_unreachable(server, tmp_path):
    ctx = make_ctx(tmp_path, search_provider="searxng", search_url=f"{server.base}/nojson")
    out = await aexecute_tool("web_search", {"query": "x"}, ctx)
    assert out.endswith("answered HTTP 403 Forbidden; add json to search.formats in its settings.yml.")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = make_ctx(tmp_path, search_provider="searxng", search_url=f"http://127.0.0.1:{port}")
    out = await aexecute_tool("web_search", {"query": "x"}, ctx)
    assert out.startswith(
        f"Could not reach the SearXNG instance at http://127.0.0.1:{port} (connection refused);"
    )


async def test_brave_provider_uses_the_key_and_never_shows_it(server, tmp_path, monkeypatch):
    ctx = make_ctx(tmp_path, search_provider="brave", search_url=f"{server.base}/brave")
    monkeypatch.delenv("BRAVE_API_KEY", raising=False)
    missing = await aexecute_tool("web_search", {"query": "q"}, ctx)
    assert "BRAVE_API_KEY environment variable is not set" in missing
    monkeypatch.setenv("BRAVE_API_KEY", BRAVE_KEY)
    out = await aexecute_tool("web_search", {"query": "q"}, ctx)
    assert (
        out == "Results from Brave Search for 'q' (1):\n\n1. Brave hit\n   https://brave.example/\n   a match"
    )
    monkeypatch.setenv("BRAVE_API_KEY", "wrong-key-987654")
    denied = await aexecute_tool("web_search", {"query": "q"}, ctx)
    assert (
        denied
        == "the Brave Search API answered HTTP 401 Unauthorized; check the BRAVE_API_KEY environment variable."
    )
    assert "wrong-key" not in repr(search_provider(ctx.settings.tools))


async def test_fetching_after_reading_workspace_files_needs_approval(tmp_path):
    from runtime.context import RunContext
    from tools.registry import aexecute_tool

    (tmp_path / "notes.txt").write_text("internal roadmap\n")
    asked = []

    async def refuse(request):
        asked.append(request)
        return False

    ctx = RunContext(workspace=tmp_path, approve=refuse).for_subtask("t1", "research")
    assert research.fetch_url.approval(ctx, {"url": "http://example.test/"}) is None  # nothing read yet
    await aexecute_tool("read_file", {"path": "notes.txt"}, ctx)
    out = await aexecute_tool("fetch_url", {"url": "http://example.test/?q=internal+roadmap"}, ctx)
    assert "not approved" in out and asked[0].summary == "fetch http://example.test/?q=internal+roadmap"
    other = ctx.for_subtask("t2", "research")  # another subtask has read nothing
    assert research.fetch_url.approval(other, {"url": "http://example.test/"}) is None
