"""`shunter show RUN_ID --html`: one self-contained HTML file about a run, to look at offline.

Everything the run produced (the answer, results, tool arguments, diffs, errors) is untrusted
text: it is redacted of known secrets, then HTML-escaped, and never placed inside a script. The
page's own CSS and JS are package data (report.css, report.js), inlined.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import html
from importlib import resources
from pathlib import Path
from typing import Any

from router.summaries import run_details
from router.timeline import Timeline, build_timeline, read_events
from runtime.events import Redactor
from runtime.store import Store
from shunter.report_svg import plan_graph, timeline

DIFF_LINES = 600  # per file change; the rest is counted, not shown
LEGEND = [
    ("running", "running"),
    ("wait-dependency", "waiting for a dependency"),
    ("wait-slot", "waiting for a free slot"),
    ("wait-approval", "waiting for an approval"),
    ("wait-rate", "waiting for the rate limiter"),
    ("model", "model call"),
    ("tool", "tool call"),
    ("retry", "retry backoff"),
]


def default_path(workspace: Path, run_id: str) -> Path:
    return workspace / ".shunter" / "reports" / f"{run_id}.html"


def write_report(
    store: Store, workspace: Path, ref: str, out: Path | None, secrets: list[str]
) -> tuple[str, Path]:
    """Write the report of run `ref` to `out` (default .shunter/reports/RUN_ID.html): (run id, path)."""
    data = run_details(store, ref)
    events = read_events(workspace / ".shunter" / "logs" / "events.jsonl", data["run_id"])
    tl = build_timeline(events, data["plan"])
    page = render(data, tl, store.file_changes(data["run_id"]), Redactor(secrets))
    path = out if out is not None else default_path(workspace, data["run_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return data["run_id"], path


def render(data: dict[str, Any], tl: Timeline, changes: list[dict[str, Any]], redact: Redactor) -> str:
    def esc(value: object) -> str:
        return html.escape(redact("" if value is None else str(value)), quote=True)

    asset = resources.files("shunter")
    css = asset.joinpath("report.css").read_text(encoding="utf-8")
    js = asset.joinpath("report.js").read_text(encoding="utf-8")
    sections = [
        _header(data, tl, esc),
        _section("Plan", plan_graph(data["plan"] or {}, _node_facts(data), esc), "plan"),
        _section(
            "Timeline",
            _legend() + f'<div class="scroll">{timeline(tl, esc, _agents(data))}</div>',
            "timeline",
        ),
        _section("Usage and cost", _costs(data, esc), "costs"),
        _section("Answer", f'<pre class="answer">{esc(data["answer"] or "(no answer)")}</pre>', "answer"),
        _section("Subtasks", _subtasks(data, esc), "subtasks"),
        _section("Files changed", _files(changes, esc), "files"),
        _section("Errors and warnings", _errors(data, tl, esc), "errors"),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        # Nothing may load from anywhere: the file must work offline and run no injected code.
        # Only the page's own script (by its hash) may run, even if escaping ever missed something.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        f"style-src 'unsafe-inline'; script-src '{_script_hash(js)}'; img-src data:\">"
        f"<title>Shunter run {esc(data['run_id'])}</title><style>{css}</style></head>\n"
        f"<body><main>{''.join(sections)}</main><script>{js}</script></body></html>\n"
    )


def _script_hash(js: str) -> str:
    digest = hashlib.sha256(js.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>\n'


def usd(value: Any) -> str:
    if not isinstance(value, int | float):
        return "unknown"
    return f"${value:.4f}" if value < 10 else f"${value:,.2f}"


def _header(d: dict[str, Any], tl: Timeline, esc) -> str:
    u = d["usage"] or {}
    facts = [
        ("status", f'<span class="badge status-{esc(d["status"])}">{esc(d["status"])}</span>'),
        ("started", esc(d["created_at"])),
        ("took", f"{tl.duration:.2f} s" if tl.bars else esc(f"{d.get('seconds') or 0:.2f} s")),
        ("subtasks", str(len(d["subtasks"]))),
        ("at once", f"up to {tl.peak_parallel}" if tl.bars else "unknown"),
        ("tokens", f"{u.get('total_tokens', 0):,}"),
        ("requests", str(u.get("requests", 0))),
        ("tool calls", str(u.get("tool_calls", 0))),
        ("cost", esc(usd(u.get("cost_usd")))),
    ]
    items = "".join(f'<div class="fact"><span>{k}</span><b>{v}</b></div>' for k, v in facts)
    extra = ""
    if d.get("parent_run_id"):
        extra += f'<p class="muted">Follows run {esc(d["parent_run_id"])} in conversation {esc(d["conversation_id"])}.</p>'
    if d.get("undone_at"):
        extra += f'<p class="muted">Undone at {esc(d["undone_at"])}.</p>'
    goal = (d["plan"] or {}).get("goal")
    return (
        f'<header><h1>Run <code>{esc(d["run_id"])}</code></h1><p class="request">{esc(d["request"])}</p>'
        + (f'<p class="goal">Goal: {esc(goal)}</p>' if goal else "")
        + f'<div class="facts" id="facts" data-peak-parallel="{tl.peak_parallel}">{items}</div>{extra}</header>\n'
    )


def _agents(d: dict[str, Any]) -> dict[str, str]:
    return {s["id"]: s["agent"] for s in (d["plan"] or {}).get("subtasks", [])}


def _node_facts(d: dict[str, Any]) -> dict[str, dict]:
    out = {}
    for s in d["subtasks"]:
        secs = s.get("seconds")
        out[s["id"]] = {
            "status": s["status"],
            "time": f"{secs:.2f} s" if isinstance(secs, int | float) else "",
            "cost": usd((s.get("usage") or {}).get("cost_usd")) if s.get("usage") else "",
        }
    return out


def _legend() -> str:
    items = "".join(
        f'<span class="key"><svg width="22" height="12"><rect class="bar {k}" width="22" height="12" rx="2"'
        + (f' fill="url(#t-{k})"' if k.startswith("wait-") and k != "wait-slot" else "")
        + f"/></svg>{html.escape(label)}</span>"
        for k, label in LEGEND
    )
    return f'<div class="legend">{items}</div>'


def _tokens(u: dict[str, Any] | None) -> int:
    u = u or {}
    return int(u.get("input_tokens", 0) or 0) + int(u.get("output_tokens", 0) or 0)


def _costs(d: dict[str, Any], esc) -> str:
    rows = []
    for agent, u in (d.get("usage_by_agent") or {}).items():
        rows.append(
            f"<tr><td>{esc(agent)}</td><td>{u.get('requests', 0)}</td><td>{u.get('input_tokens', 0):,}</td>"
            f"<td>{u.get('output_tokens', 0):,}</td><td>{u.get('tool_calls', 0)}</td><td>{esc(usd(u.get('cost_usd')))}</td></tr>"
        )
    by_agent = (
        '<h3>Per agent</h3><table class="num" id="per-agent"><tr><th>agent</th><th>requests</th><th>input</th>'
        "<th>output</th><th>tool calls</th><th>cost</th></tr>" + "".join(rows) + "</table>"
    )
    return by_agent + _estimate_vs_actual(d, esc)


def _estimate_vs_actual(d: dict[str, Any], esc) -> str:
    est = d.get("estimate") or {}
    if not est:
        return "<p class='muted'>No estimate was recorded for this run.</p>"
    per = {s["id"]: s for s in est.get("subtasks", [])}
    agents = d.get("usage_by_agent") or {}
    lines = []
    if est.get("planner"):
        p = est["planner"]  # the planner's cost is known when the estimate is made
        actual = agents.get("planner") or {}
        lines.append(
            ("planner", "planner", p, p.get("cost_usd"), p.get("cost_usd"), p.get("cost_usd"), actual)
        )
    for s in d["subtasks"]:
        e = per.get(s["id"], {})
        lines.append(
            (
                s["id"],
                s["agent"],
                e,
                e.get("low_usd"),
                e.get("expected_usd"),
                e.get("high_usd"),
                s.get("usage"),
            )
        )
    if est.get("synthesis"):
        e = est["synthesis"]
        lines.append(
            (
                "synthesis",
                "synthesis",
                e,
                e.get("low_usd"),
                e.get("expected_usd"),
                e.get("high_usd"),
                agents.get("synthesis"),
            )
        )
    rows = []
    for sid, agent, e, low, mid, high, actual in lines:
        cost = (actual or {}).get("cost_usd")
        rows.append(
            f'<tr data-subtask="{esc(sid)}"><td>{esc(sid)}</td><td>{esc(agent)}</td>'
            f"<td>{_tokens(e):,}</td><td>{_tokens(actual):,}</td>"
            f"<td>{esc(usd(mid))} <small>({esc(usd(low))}–{esc(usd(high))})</small></td>"
            f"<td>{esc(usd(cost))}</td><td>{_range_bar(low, mid, high, cost)}</td></tr>"
        )
    total = (d["usage"] or {}).get("cost_usd")
    rows.append(
        f"<tr class='total'><td>run</td><td></td><td>{_tokens(est):,}</td><td>{_tokens(d['usage']):,}</td>"
        f"<td>{esc(usd(est.get('expected_usd')))} <small>({esc(usd(est.get('low_usd')))}–{esc(usd(est.get('high_usd')))})</small></td>"
        f"<td>{esc(usd(total))}</td><td>{_range_bar(est.get('low_usd'), est.get('expected_usd'), est.get('high_usd'), total)}</td></tr>"
    )
    return (
        '<h3>Estimate against actual</h3><table class="num" id="estimate"><tr><th>step</th><th>agent</th>'
        "<th>tokens est.</th><th>tokens</th><th>cost est. (low–high)</th><th>cost</th><th>actual within the range</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _range_bar(low: Any, mid: Any, high: Any, actual: Any) -> str:
    """The low–high range as a band, the expected cost as a tick, the actual cost as a dot."""
    nums = [v for v in (low, mid, high, actual) if isinstance(v, int | float)]
    if not isinstance(actual, int | float) or not nums or max(nums) <= 0:
        return ""
    top, w = max(nums) * 1.1, 160

    def x(v: float) -> float:
        return 4 + v / top * (w - 8)

    band = ""
    if isinstance(low, int | float) and isinstance(high, int | float):
        band = (
            f'<rect class="range" x="{x(low):.1f}" y="5" width="{max(x(high) - x(low), 1):.1f}" height="8"/>'
        )
    if isinstance(mid, int | float):
        band += f'<line class="expected" x1="{x(mid):.1f}" x2="{x(mid):.1f}" y1="2" y2="16"/>'
    over = isinstance(high, int | float) and actual > high
    return (
        f'<svg class="rangebar" width="{w}" height="18">{band}<circle class="actual{" over" if over else ""}" '
        f'cx="{x(actual):.1f}" cy="9" r="4"/></svg>'
    )


def _subtasks(d: dict[str, Any], esc) -> str:
    steps = {s["id"]: s for s in (d["plan"] or {}).get("subtasks", [])}
    out = []
    for s in d["subtasks"]:
        step = steps.get(s["id"], {})
        after = f" · after {esc(', '.join(step['depends_on']))}" if step.get("depends_on") else ""
        text = s["result"] if s["status"] == "succeeded" else (s.get("error") or s.get("result"))
        out.append(
            f'<details id="st-{esc(s["id"])}" class="subtask"><summary><b>{esc(s["id"])}</b> {esc(s["agent"])} · '
            f'<span class="badge status-{esc(s["status"])}">{esc(s["status"])}</span>{after}</summary>'
            f'<p class="instruction">{esc(step.get("instruction", ""))}</p>'
            f'<pre class="result">{esc(text or "")}</pre></details>'
        )
    return "".join(out) or "<p class='muted'>No subtask ran.</p>"


def diff_text(path: str, before: bytes | None, after: bytes | None) -> tuple[list[str], int]:
    """A unified diff of one change (the lines to show, how many more were left out)."""

    def lines(data: bytes | None) -> list[str] | None:
        if data is None:
            return []
        if b"\0" in data[:8192]:
            return None
        try:
            return data.decode("utf-8").splitlines(keepends=False)
        except UnicodeDecodeError:
            return None

    old, new = lines(before), lines(after)
    if old is None or new is None:
        return [f"binary file: {len(before or b'')} bytes before, {len(after or b'')} bytes after"], 0
    diff = list(
        difflib.unified_diff(
            old,
            new,
            "/dev/null" if before is None else f"a/{path}",
            "/dev/null" if after is None else f"b/{path}",
            lineterm="",
        )
    )
    return diff[:DIFF_LINES], max(0, len(diff) - DIFF_LINES)


def _files(changes: list[dict[str, Any]], esc) -> str:
    if not changes:
        return "<p class='muted'>The run changed no files.</p>"
    out = []
    for ch in changes:
        action = "created" if ch["before"] is None else "deleted" if ch["after"] is None else "modified"
        shown, more = diff_text(ch["path"], ch["before"], ch["after"])
        body = "".join(f'<span class="{_line_class(line)}">{esc(line)}</span>\n' for line in shown) + (
            f'<span class="muted">… {more} more lines</span>\n' if more else ""
        )
        out.append(
            f'<details class="file" open><summary><code>{esc(ch["path"])}</code> {action} by '
            f'{esc(ch["subtask_id"] or "?")}</summary><pre class="diff">{body}</pre></details>'
        )
    return "".join(out)


def _line_class(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "d-head"
    return {"+": "d-add", "-": "d-del", "@": "d-hunk"}.get(line[:1], "d-ctx")


def _errors(d: dict[str, Any], tl: Timeline, esc) -> str:
    items = []
    if d.get("error"):
        items.append(f"<li><b>run</b>: {esc(d['error'])}</li>")
    for s in d["subtasks"]:
        if s.get("error"):
            items.append(f"<li><b>{esc(s['id'])}</b> {esc(s['status'])}: {esc(s['error'])}</li>")
    for p in tl.problems:
        data = p["data"]
        what = data.get("error") or data.get("reason") or data.get("summary") or data.get("tool") or ""
        if p["event"] == "tool.result":
            why = f": {data['error']}" if data.get("error") else ""
            what = f"{data.get('tool')} failed{why} (this went back to the model as the tool's result)"
        elif p["event"] == "approval":
            what = f"refused: {data.get('summary')}"
        items.append(
            f"<li><span class='muted'>{p['at']:.3f} s</span> <b>{esc(p['subtask_id'] or 'run')}</b> "
            f"<code>{esc(p['event'])}</code> {esc(what)}</li>"
        )
    if not items:
        return '<p class="muted" id="no-errors">No errors.</p>'
    return f"<ul class='errors'>{''.join(items)}</ul>"
