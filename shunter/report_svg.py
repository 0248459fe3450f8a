"""The two drawings of the run report, as inline SVG laid out here (no library, no network):
the plan graph in columns by topological generation, and the timeline with one lane per subtask.

Every piece of run data that reaches the SVG goes through `esc` (HTML escaping, after redaction).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import networkx as nx

from router.timeline import MODEL, RETRY, STATE_KINDS, TOOL, Bar, Timeline

Esc = Callable[[object], str]

NODE_W, NODE_H, COL_GAP, ROW_GAP = 196, 54, 64, 22

# Drawn as patterns so a wait reads as "not running" even in greyscale.
_HATCH = (
    '<pattern id="{p}-{kind}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
    '<rect width="6" height="6" class="hatch-bg {kind}"/><line x1="0" y1="0" x2="0" y2="6" class="hatch-line {kind}"/>'
    "</pattern>"
)
HATCHED = ("wait-dependency", "wait-approval", "wait-rate")
_PATTERNS = (
    "<defs>"
    + "".join(_HATCH.replace("{kind}", k) for k in HATCHED)
    + '<marker id="{p}-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
    'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrow"/></marker></defs>'
)


def plan_graph(plan: dict, statuses: dict[str, dict], esc: Esc) -> str:
    """The plan's subtasks in columns (each column can run at once), edges for depends_on, and the
    synthesis that reads them all at the end."""
    steps = plan.get("subtasks", [])
    if not steps:
        return '<p class="muted">No plan was recorded.</p>'
    g = nx.DiGraph()
    for s in steps:
        g.add_node(s["id"])
        for d in s.get("depends_on", []):
            if d in {x["id"] for x in steps}:
                g.add_edge(d, s["id"])
    try:
        columns = [list(c) for c in nx.topological_generations(g)]
    except nx.NetworkXUnfeasible:  # a stored plan is validated, but do not fail on a bad one
        columns = [[s["id"] for s in steps]]
    order = {s["id"]: n for n, s in enumerate(steps)}
    place: dict[str, tuple[float, float]] = {}
    tallest = max(len(c) for c in columns)
    for ci, col in enumerate(columns):
        # Next to the nodes they depend on (mean row of their predecessors): fewer crossings.
        def pull(n: str) -> tuple[float, int]:
            ys = [place[p][1] for p in g.predecessors(n) if p in place]
            return (sum(ys) / len(ys) if ys else 0.0, order.get(n, 0))

        col.sort(key=pull)
        top = (tallest - len(col)) * (NODE_H + ROW_GAP) / 2
        for ri, n in enumerate(col):
            place[n] = (20 + ci * (NODE_W + COL_GAP), 20 + top + ri * (NODE_H + ROW_GAP))
    sx = 20 + len(columns) * (NODE_W + COL_GAP)
    sy = 20 + (tallest - 1) * (NODE_H + ROW_GAP) / 2
    width, height = sx + NODE_W + 20, 40 + tallest * (NODE_H + ROW_GAP) - ROW_GAP
    parts = [
        f'<svg class="plan" id="plan-graph" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-label="plan graph">',
        _PATTERNS.format(p="g"),
    ]
    for a, b in g.edges:
        parts.append(_edge(place[a], place[b], "edge"))
    for n in [n for n in g if g.out_degree(n) == 0]:
        parts.append(_edge(place[n], (sx, sy), "edge edge-synth"))
    by_id = {s["id"]: s for s in steps}
    for n, (x, y) in place.items():
        s, st = by_id[n], statuses.get(n, {})
        status = st.get("status") or "pending"
        line2 = " · ".join(x for x in (status, st.get("time", ""), st.get("cost", "")) if x)
        parts.append(
            f'<a href="#st-{esc(n)}"><g class="node status-{esc(status)}" data-lane="{esc(n)}">'
            f"<title>{esc(n)} ({esc(s.get('agent'))}): {esc(s.get('instruction', ''))}</title>"
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="8"/>'
            f'<text x="{x + 10}" y="{y + 21}" class="node-id">{esc(n)} '
            f'<tspan class="node-agent">{esc(s.get("agent"))}{" · writes" if not s.get("read_only") else ""}</tspan></text>'
            f'<text x="{x + 10}" y="{y + 41}" class="node-sub">{esc(line2)}</text></g></a>'
        )
    parts.append(
        f'<g class="node node-synth" data-lane="synthesis"><rect x="{sx}" y="{sy}" width="{NODE_W}" '
        f'height="{NODE_H}" rx="8"/><text x="{sx + 10}" y="{sy + 21}" class="node-id">synthesis</text>'
        f'<text x="{sx + 10}" y="{sy + 41}" class="node-sub">the answer</text></g>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _edge(a: tuple[float, float], b: tuple[float, float], cls: str) -> str:
    x1, y1 = a[0] + NODE_W, a[1] + NODE_H / 2
    x2, y2 = b[0], b[1] + NODE_H / 2
    mid = (x1 + x2) / 2
    return (
        f'<path class="{cls}" d="M {x1:.1f} {y1:.1f} C {mid:.1f} {y1:.1f}, {mid:.1f} {y2:.1f}, '
        f'{x2 - 2:.1f} {y2:.1f}" marker-end="url(#g-arrow)"/>'
    )


LABEL_W, PLOT_W, STATE_H, CALL_H, GAP, AXIS_H = 120, 1000, 18, 11, 3, 26
MIN_BAR_PX = 3.0


def nice_step(span: float, ticks: int = 8) -> float:
    """A tick step of 1, 2 or 5 times a power of ten giving about `ticks` ticks over `span`."""
    raw = max(span, 1e-6) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _rows(bars: list[Bar], shortest: float) -> list[list[Bar]]:
    """Calls of one lane in as few rows as they fit without overlapping (a tool running while
    another runs goes one row down). A bar is drawn at least `shortest` long, so a 1 ms tool call
    between two model calls gets a row of its own rather than vanishing under the next one."""
    rows: list[list[Bar]] = []
    for b in sorted(bars, key=lambda b: (b.start, b.end)):
        for row in rows:
            if max(row[-1].end, row[-1].start + shortest) <= b.start + 1e-9:
                row.append(b)
                break
        else:
            rows.append([b])
    return rows


def timeline(tl: Timeline, esc: Esc, agents: dict[str, str] | None = None) -> str:
    """Lanes top to bottom in plan order. The top row of a lane is its state (waiting for a
    dependency or a slot, running, waiting for an approval or the rate limiter); the rows under
    it are its model calls, tool calls and retry backoffs."""
    if not tl.bars:
        return '<p class="muted">No events were logged for this run, so there is no timeline.</p>'
    scale = PLOT_W / tl.duration
    lanes, y = [], AXIS_H
    for lane in tl.lanes:
        mine = tl.in_lane(lane)
        if not mine:
            continue
        rows = _rows([b for b in mine if b.kind in (MODEL, TOOL, RETRY)], MIN_BAR_PX / scale)
        height = STATE_H + GAP + len(rows) * (CALL_H + GAP) + 6
        lanes.append((lane, mine, rows, y, height))
        y += height
    total_h = y + 4
    width = LABEL_W + PLOT_W + 20
    out = [
        f'<svg class="timeline" id="timeline" viewBox="0 0 {width} {total_h}" width="{width}" '
        f'height="{total_h}" role="img" aria-label="timeline">',
        _PATTERNS.format(p="t"),
    ]
    step = nice_step(tl.duration)
    t = 0.0
    while t <= tl.duration + 1e-9:
        x = LABEL_W + t * scale
        out.append(f'<line class="tick" x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{total_h}"/>')
        out.append(f'<text class="tick-label" x="{x:.1f}" y="{AXIS_H - 10}">{t:g} s</text>')
        t = round(t + step, 9)
    for n, (lane, mine, rows, top, height) in enumerate(lanes):
        agent = (agents or {}).get(lane, "")
        agent = f" {agent}" if agent and agent != lane else ""
        out.append(
            f'<g class="lane" data-lane="{esc(lane)}"><rect class="lane-bg lane-{n % 2}" x="0" y="{top}" '
            f'width="{width}" height="{height}"/><text class="lane-label" x="8" y="{top + 14}">{esc(lane)}'
            f'<tspan class="lane-agent">{esc(agent)}</tspan></text>'
        )
        # Waits inside a running span are drawn over it, so they come after it.
        state = sorted((b for b in mine if b.kind in STATE_KINDS), key=lambda b: b.kind != "running")
        for b in state:
            out.append(_bar(b, top + 2, STATE_H - 4, scale, esc))
        for ri, row in enumerate(rows):
            for b in row:
                out.append(_bar(b, top + STATE_H + GAP + ri * (CALL_H + GAP), CALL_H, scale, esc))
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def _bar(b: Bar, y: float, h: float, scale: float, esc: Esc) -> str:
    x = LABEL_W + b.start * scale
    w = max((b.end - b.start) * scale, MIN_BAR_PX)  # a 1 ms call is still a visible mark
    tip = f"{b.lane} · {b.kind} {b.label} · {b.start:.3f}–{b.end:.3f} s ({b.end - b.start:.3f} s)"
    if b.detail:
        tip += f" · {b.detail}"
    fill = f' fill="url(#t-{b.kind})"' if b.kind in HATCHED else ""
    return (
        f'<rect class="bar {esc(b.kind)} st-{esc(b.status or "none")}" x="{x:.2f}" y="{y:.1f}" width="{w:.2f}" '
        f'height="{h}" rx="2"{fill} data-lane="{esc(b.lane)}" data-kind="{esc(b.kind)}" '
        f'data-start="{b.start:.4f}" data-end="{b.end:.4f}"><title>{esc(tip)}</title></rect>'
    )
