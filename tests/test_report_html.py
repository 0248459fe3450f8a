"""`shunter show RUN_ID --html`: the report of the demo run and of a scripted run that waits for
a slot, the rate limiter and an approval and carries hostile text; read as HTML and rendered by
headless Chromium (Debian `chromium`, which .ci/run installs)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from runtime.store import Store
from runtime.testserver import Text, ToolCalls
from shunter.api import prepare
from shunter.api import run as api_run
from tests.server_fixtures import TEST_API_KEY


def shunter(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SHUNTER_"))}
    return subprocess.run(
        [sys.executable, "-m", "shunter.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class Page(HTMLParser):
    """The report's elements that carry data-* attributes, and its text."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)

    def bars(self, kind: str | None = None, lane: str | None = None) -> list[tuple[float, float]]:
        return [
            (float(a["data-start"]), float(a["data-end"]))
            for tag, a in self.elements
            if tag == "rect"
            and "data-kind" in a
            and (kind is None or a["data-kind"] == kind)
            and (lane is None or a["data-lane"] == lane)
        ]

    def with_class(self, cls: str) -> list[dict[str, str]]:
        return [a for _, a in self.elements if cls in a.get("class", "").split()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    ws = tmp_path_factory.mktemp("demo") / "ws"
    out = shunter("demo", "--json", "--latency", "0.05", "--workspace", str(ws))
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout)
    shown = shunter("show", run["run_id"], "--html", "--workspace", str(ws))
    assert shown.returncode == 0, shown.stderr
    path = Path(shown.stdout.strip())
    details = json.loads(shunter("show", run["run_id"], "--json", "--workspace", str(ws)).stdout)
    return {"ws": ws, "run": run, "path": path, "html": path.read_text(), "details": details}


def test_the_report_goes_to_the_workspace_and_loads_nothing(demo):
    assert demo["path"] == demo["ws"] / ".shunter" / "reports" / f"{demo['run']['run_id']}.html"
    html = demo["html"]
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    # Self-contained: no link, no external script, image or font; nothing fetched from anywhere.
    assert not re.search(r"<link|<iframe|@import|\ssrc=|url\((?!#)", html)
    assert "http://" not in html and "https://" not in html
    assert "default-src 'none'" in html


def test_the_plan_graph_has_every_subtask_in_columns(demo):
    page = Page(demo["html"])
    nodes = {a["data-lane"]: a for a in page.with_class("node")}
    assert set(nodes) == {"t1", "t2", "t3", "t4", "synthesis"}
    assert all("status-succeeded" in nodes[t]["class"] for t in ("t1", "t2", "t3", "t4"))
    # t1..t3 form the first generation, t4 the second: the graph has 3 edges into t4, and one from it.
    assert len(page.with_class("edge")) == 4
    rects = re.findall(r'data-lane="(t\d)"><title>.*?</title><rect x="(\d+)"', demo["html"])
    xs = {lane: int(x) for lane, x in rects}
    assert xs["t1"] == xs["t2"] == xs["t3"] < xs["t4"]


def test_the_timeline_shows_the_parallel_subtasks_overlapping(demo):
    page = Page(demo["html"])
    lanes = [a["data-lane"] for a in page.with_class("lane")]
    assert lanes == ["planner", "t1", "t2", "t3", "t4", "synthesis"]
    running = {lane: page.bars("running", lane)[0] for lane in ("t1", "t2", "t3", "t4")}
    (s1, e1), (s2, e2), (s3, e3) = running["t1"], running["t2"], running["t3"]
    assert max(s1, s2, s3) < min(e1, e2, e3)  # all three at once
    assert running["t4"][0] >= max(e1, e2, e3)  # t4 waits for them
    waits = page.bars("wait-dependency", "t4")
    assert len(waits) == 1 and abs(waits[0][1] - max(e1, e2, e3)) < 0.01
    assert 'data-peak-parallel="3"' in demo["html"]
    assert len(page.bars("tool", "t1")) == 1 and len(page.bars("model", "t4")) == 2
    assert page.bars("wait-approval", "t4")  # the write was approved (at once: --json approves all)


def test_usage_and_estimate_are_shown_per_agent_and_per_subtask(demo):
    html, details = demo["html"], demo["details"]
    per_agent = html[html.index('id="per-agent"') : html.index('id="estimate"')]
    for agent, usage in details["usage_by_agent"].items():
        assert f"<td>{agent}</td>" in per_agent
        assert f"${usage['cost_usd']:.4f}" in per_agent
    estimate = html[html.index('id="estimate"') :]
    for sid in ("planner", "t1", "t2", "t3", "t4", "synthesis"):
        assert f'data-subtask="{sid}"' in estimate
    assert f"${details['estimate']['expected_usd']:.4f}" in estimate
    assert f"${details['usage']['cost_usd']:.4f}" in estimate


def test_the_answer_and_the_diff_are_in_the_report(demo):
    html = demo["html"]
    assert demo["run"]["answer"] in html
    assert "TODO.md</code> created by t4" in html
    assert '<span class="d-add">+# TODO</span>' in html
    assert '<span class="d-head">+++ b/TODO.md</span>' in html
    assert 'id="no-errors"' in html


def test_json_output_file_and_bad_input(demo, tmp_path):
    rid, ws = demo["run"]["run_id"], str(demo["ws"])
    target = tmp_path / "out" / "report.html"
    out = shunter("show", rid[:6], "--html", "--json", "-o", str(target), "--workspace", ws)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"run_id": rid, "report": str(target)}
    assert target.read_text().startswith("<!DOCTYPE html>")
    unknown = shunter("show", "nosuchrun", "--html", "--workspace", ws)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "No run" in unknown.stderr
    stray = shunter("show", rid, "-o", str(target), "--workspace", ws)
    assert stray.returncode == 2 and "add --html" in stray.stderr
    into_dir = shunter("show", rid, "--html", "-o", str(tmp_path), "--workspace", ws)
    assert (
        into_dir.returncode == 2
        and "is a directory" in into_dir.stderr
        and "Traceback" not in into_dir.stderr
    )


# --- a scripted run that waits for everything and carries hostile text ----------------------------

HOSTILE_ANSWER = (
    'Done. <script>document.body.setAttribute("data-pwned", "answer")</script>'
    "<img src=x onerror=\"document.body.setAttribute('data-pwned', 'img')\"> & more"
    f" (the model echoed a key: {TEST_API_KEY})"
)
HOSTILE_FILE = '<script>document.body.setAttribute("data-pwned", "diff")</script>\n'
PLAN = {
    "goal": "Read, count, write notes",
    "subtasks": [
        {"id": "t1", "agent": "file", "instruction": "Read a.txt", "depends_on": [], "read_only": True},
        {"id": "t2", "agent": "file", "instruction": "Read nope.txt", "depends_on": [], "read_only": True},
        {"id": "t3", "agent": "shell", "instruction": "Count lines", "depends_on": [], "read_only": True},
        {
            "id": "t4",
            "agent": "file",
            "instruction": "Write notes.md",
            "depends_on": ["t1", "t2", "t3"],
            "read_only": False,
        },
    ],
}


def brain(body: dict):
    messages = body["messages"]
    system, last = messages[0]["content"], messages[-1]
    if system.startswith("You are the planner"):
        return Text(json.dumps(PLAN))
    if system.startswith("You write the final answer"):
        return Text(HOSTILE_ANSWER)
    instruction = messages[1]["content"]
    if last["role"] != "tool":
        if "Count lines" in instruction:
            return ToolCalls([("run_command", {"command": "wc -l a.txt"})])
        if "Write notes.md" in instruction:
            return ToolCalls([("write_file", {"path": "notes.md", "content": HOSTILE_FILE})])
        return ToolCalls([("read_file", {"path": "nope.txt" if "nope" in instruction else "a.txt"})])
    return Text("done")


async def slow_approval(request) -> bool:
    await asyncio.sleep(0.3)  # someone reading the prompt before saying yes
    return True


def scripted_run(ws: Path, server, rate_limit: float | None) -> str:
    if ws.exists():
        shutil.rmtree(ws)
    ws.mkdir(parents=True)
    (ws / "a.txt").write_text("alpha\n")
    overrides: dict = {
        "model": {"name": "scripted", "base_url": server.base_url, "api_key": TEST_API_KEY},
        "max_parallel": 2,
        # The shell agent on a model of its own, so the rate limit holds back only its calls.
        "agents": {"shell": {"model": "limited"}},
        "prices": {"limited": {"input": 0.4, "output": 1.6}},
    }
    if rate_limit is not None:
        overrides["rate_limits"] = {"limited": {"tokens_per_minute": rate_limit}}
    ctx = prepare(ws, overrides=overrides, approve=slow_approval)
    with Store.open(ws) as store:
        result = asyncio.run(api_run("read, count and write notes", ctx=ctx, store=store))
    assert result.status == "succeeded", result.error
    return result.run_id


def limited_requests(ws: Path) -> list[int]:
    log = (ws / ".shunter/logs/events.jsonl").read_text().splitlines()
    return [
        e["data"]["input_tokens"]
        for e in map(json.loads, log)
        if e["event"] == "model.request" and e["subtask_id"] == "t3"
    ]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict:
    from runtime.testserver import TestServer

    ws = tmp_path_factory.mktemp("hostile") / "ws"
    with TestServer() as server:
        server.handler = brain
        server.latency_s = 0.1
        # The bucket holds a minute's tokens, so it runs dry only past a minute's budget: measure
        # the shell agent's two requests, then allow a little less than both, so the second waits
        # about a second (the shortfall refilled at the per-minute rate).
        scripted_run(ws, server, None)
        first, second = limited_requests(ws)
        budget = (first + second) / (1 + 1.0 / 60)
        rid = scripted_run(ws, server, budget)
        assert limited_requests(ws) == [first, second]  # the same run again, now limited
    out = shunter("show", rid, "--html", "--workspace", str(ws))
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    return {"ws": ws, "run_id": rid, "path": path, "html": path.read_text()}


def test_waits_for_a_slot_the_rate_limiter_and_an_approval_are_drawn(hostile):
    page = Page(hostile["html"])
    (t3_start, _), *_ = page.bars("running", "t3")
    first_end = min(page.bars("running", "t1")[0][1], page.bars("running", "t2")[0][1])
    slot = page.bars("wait-slot", "t3")  # --max-parallel 2: t3 starts when t1 or t2 is done
    assert len(slot) == 1 and abs(slot[0][1] - t3_start) < 0.01 and abs(slot[0][1] - first_end) < 0.05
    (rs, re_), *_ = page.bars("wait-rate", "t3")
    assert re_ - rs > 0.3
    model_calls = page.bars("model", "t3")
    assert len(model_calls) == 2 and rs >= model_calls[0][1] - 0.01 and re_ <= model_calls[1][0] + 0.01
    (a_s, a_e), *_ = page.bars("wait-approval", "t4")
    assert a_e - a_s >= 0.25
    assert len(page.bars("wait-dependency", "t4")) == 1
    assert '<span class="badge status-succeeded">' in hostile["html"]


def test_untrusted_text_is_shown_as_text(hostile):
    html = hostile["html"]
    page = Page(html)
    assert len(page.scripts) == 1 and "data-pwned" not in page.scripts[0]  # only the page's own
    assert [t for t, _ in page.elements].count("img") == 0
    assert "&lt;script&gt;document.body.setAttribute(&quot;data-pwned&quot;, &quot;answer&quot;)" in html
    assert '<span class="d-add">+&lt;script&gt;document.body.setAttribute(&quot;data-pwned&quot;' in html
    assert "&amp; more" in html


def test_errors_list_the_failed_tool_call(hostile):
    html = hostile["html"]
    errors = html[html.index('id="errors"') :]
    assert "<b>t2</b> <code>tool.result</code> read_file failed: " in errors
    assert "nope.txt" in errors.split("read_file failed: ", 1)[1].split("</li>", 1)[0]  # says why
    page = Page(html)
    assert [a for _, a in page.elements if a.get("data-kind") == "tool" and "st-failed" in a["class"]]


def test_no_secret_reaches_the_report(hostile):
    # The answer carried the key; the report is made to be shared, so it shows it redacted.
    assert TEST_API_KEY not in hostile["html"]
    assert "(the model echoed a key: [REDACTED])" in hostile["html"]


def test_a_streamed_plan_shows_subtasks_starting_while_the_planner_still_writes(test_server, tmp_path):
    from runtime.testserver import Paced

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("alpha\n")
    first = PLAN["subtasks"][0]
    plan = {"goal": "read", "subtasks": [first, {**first, "id": "t2"}, {**first, "id": "t3"}]}

    def paced(body: dict):
        if body["messages"][0]["content"].startswith("You are the planner") and body.get("stream"):
            return Paced(0.8, Text(json.dumps(plan)))  # the plan takes a while to arrive
        return brain(body)

    test_server.handler = paced
    test_server.stream_piece_chars = 8
    overrides = {"model": {"name": "scripted", "base_url": test_server.base_url, "api_key": TEST_API_KEY}}
    ctx = prepare(ws, overrides=overrides)
    with Store.open(ws) as store:
        result = asyncio.run(api_run("read a thrice", ctx=ctx, store=store, stream_plan=True))
    assert result.status == "succeeded", result.error
    out = shunter("show", result.run_id, "--html", "--workspace", str(ws))
    page = Page(Path(out.stdout.strip()).read_text())
    (_, planning_end), *_ = page.bars("running", "planner")
    (t2_start, _), *_ = page.bars("running", "t2")
    assert page.bars("running", "t1")[0][0] < planning_end and t2_start < planning_end
    # t2 did not wait: it started as soon as its part of the plan had arrived (a part is whole
    # when the next one begins, so t3, the last, starts with the end of the plan).
    assert page.bars("wait-slot", "t2") == [] and page.bars("wait-dependency", "t2") == []


def test_a_log_cut_short_shows_the_subtask_as_unfinished(demo, tmp_path):
    from router.timeline import build_timeline, read_events

    lines = (demo["ws"] / ".shunter/logs/events.jsonl").read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if '"t4"' in line and "subtask.started" in line)
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(lines[: cut + 2]) + '\n{"ts": 1, "run_id": "' + demo["run"]["run_id"] + '", "ev')
    tl = build_timeline(read_events(log, demo["run"]["run_id"]), demo["details"]["plan"])
    (t4,) = [b for b in tl.in_lane("t4") if b.kind == "running"]
    assert t4.status == "interrupted" and t4.end == tl.duration
    assert [b.status for b in tl.in_lane("t4") if b.kind == "model"] == ["failed"]  # never answered


# --- headless Chromium ------------------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "Chromium is not installed; the report's rendering test needs it: apt-get install chromium "
            "(.ci/run installs it)."
        )
    return found


def browse(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={tmp / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def console_errors(stderr: str) -> list[str]:
    # Page console messages and uncaught errors come out as CONSOLE lines; the rest (dbus, GPU) is
    # the browser talking about the machine.
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


@pytest.mark.parametrize("which", ["demo", "hostile"])
def test_chromium_renders_the_report_with_no_error(which, demo, hostile, tmp_path):
    report = {"demo": demo, "hostile": hostile}[which]
    out = browse(report["path"], tmp_path, "--dump-dom")
    assert out.returncode == 0, out.stderr[-2000:]
    body = re.search(r"<body[^>]*>", out.stdout)
    assert body is not None, out.stdout[:500]
    assert 'data-ok="1"' in body.group(0), body.group(0)  # the page's script ran to its end
    assert "data-errors" not in body.group(0)
    assert "data-pwned" not in body.group(0)  # no injected script or handler ran
    bars = int(re.search(r'data-bars="(\d+)"', body.group(0)).group(1))
    assert bars == len(Page(report["html"]).bars())
    assert console_errors(out.stderr) == []


def test_chromium_screenshot_of_the_demo_report(demo, tmp_path):
    shot = tmp_path / "report.png"
    out = browse(
        demo["path"], tmp_path, f"--screenshot={shot}", "--window-size=1400,1500", "--hide-scrollbars"
    )
    assert out.returncode == 0, out.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a drawn page, not a blank one
    assert console_errors(out.stderr) == []
