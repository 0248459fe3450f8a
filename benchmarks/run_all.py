"""Run the benchmarks and print the headline table.

    python -m benchmarks.run_all                 # everything (python3 dev.py bench)
    python -m benchmarks.run_all parallel tokens # some of them
    python -m benchmarks.run_all --quick         # one repetition each: a smoke run, numbers not for publishing

Each benchmark runs in its own interpreter (start-up, GC and log-sink state of one must not
leak into the next), prints its table and writes benchmarks/results/<name>.json. The headline
table is then built from the result files and written into benchmarks/README.md between the
`results:start` / `results:end` markers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, RESULTS, machine, python_bin, say, table

BENCHMARKS = [
    "startup",
    "overhead",
    "parallel",
    "streaming",
    "langgraph_compare",
    "tokens",
    "compiled",
    "cancel_latency",
    "estimate_accuracy",
    "engine",
]
EXTRAS = ["policy_corpus", "pathscope_corpus", "estimate_calibration", "memory_recall"]
"""Scripts other parts of the project keep here (security corpora, estimate calibration): run
too when present, listed but not part of the headline table."""
README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _ok(flag: bool | None) -> str:
    return "–" if flag is None else ("met" if flag else "**missed**")


def headline() -> list[list[str]]:
    """[measure, result, target, verdict] rows from whatever result files exist."""
    rows: list[list[str]] = []
    if d := _load("parallel"):
        s = d["summary"]
        per_call = s.get("shunter_ms_per_call_over_floor_in_process") or [0.0]
        rows.append(
            [
                "Parallel efficiency, in-process, 50 ms/call, 4 shapes, not capped",
                f"worst {s['worst_uncapped_ratio_in_process']:.2f} x ideal (bare asyncio: "
                f"{s.get('worst_uncapped_floor_ratio_in_process', 0):.2f} x; Shunter adds "
                f"{min(per_call):.1f}-{max(per_call):.1f} ms per model call)",
                "<= 1.10 x",
                _ok(s["target_met_in_process"]),
            ]
        )
        slow = ", ".join(f"{r:.2f}" for r in s.get("http_at_250ms", []))
        rows.append(
            [
                "Parallel efficiency, over HTTP (openai SDK + local server), 50 ms/call",
                f"worst {s['worst_uncapped_ratio_http']:.2f} x ideal (bare asyncio over the same HTTP: "
                f"{s['worst_uncapped_floor_ratio_http']:.2f} x); {slow} x at 250 ms/call",
                "<= 1.10 x",
                _ok(s["target_met_http"]),
            ]
        )
    if d := _load("streaming"):
        s = d["summary"]
        speedups = ", ".join(f"{k} {v:.2f} x" for k, v in s["speedup_vs_whole_plan"].items())
        rows.append(
            [
                "Streamed planning, plan paced over 1 s, 250 ms/call, over HTTP",
                f"first subtask starts at {s['worst_first_start_fraction']:.2f} of the stream; makespan "
                f"{s['worst_ratio_to_streamed_ideal']:.2f} x streamed ideal; faster than waiting for the plan: {speedups}",
                "<= 0.25; <= 1.10 x",
                _ok(s["target_met"]),
            ]
        )
    if d := _load("overhead"):
        s = d["summary"]
        rows.append(
            [
                "Framework overhead per subtask, N = 10 / 100 / 1,000, event log + run store",
                f"worst {s['worst_ms_per_subtask']:.2f} ms, growth 100 -> 1,000 x{s['worst_growth_100_to_1000']:.2f}"
                + "".join(
                    f"; fails: {f.split(':')[0]} ({f.split(': ', 1)[1].split(':')[0]})"
                    for f in s.get("failures", [])
                ),
                "< 2 ms, linear",
                _ok(s["target_met"]),
            ]
        )
    if d := _load("langgraph_compare"):
        s = d["summary"]
        if s.get("langgraph_installed"):
            uni, jit = s["by_profile"].get("uniform", []), s["by_profile"].get("jittered", [])
            rows.append(
                [
                    f"Makespan Shunter / LangGraph {s['langgraph_version']} (same DAGs, same latency)",
                    f"uniform 50 ms: {min(uni):.2f}-{max(uni):.2f}; jittered 10-90 ms: {min(jit):.2f}-{max(jit):.2f}",
                    "report",
                    "–",
                ]
            )
        else:
            rows.append(["Makespan Shunter / LangGraph", "LangGraph not installed", "report", "–"])
    if d := _load("tokens"):
        by = {(r["scenario"], r["system"]): r for r in d["rows"]}
        for size in ("small", "large"):
            sh, seq, bat = (
                by.get((size, "Shunter")),
                by.get((size, "ReAct sequential")),
                by.get((size, "ReAct batched")),
            )
            if sh and seq and bat:
                rows.append(
                    [
                        f"Tokens, review scenario ({size} files): Shunter vs one ReAct agent (sequential / batched)",
                        f"input {sh['input_tokens']:,} vs {seq['input_tokens']:,} / {bat['input_tokens']:,}; output "
                        f"{sh['output_tokens']:,} vs {seq['output_tokens']:,} / {bat['output_tokens']:,}; requests "
                        f"{sh['requests']} vs {seq['requests']} / {bat['requests']}",
                        "report",
                        "–",
                    ]
                )
        if apis := d["summary"].get("apis"):
            sh = apis["Shunter"]
            rows.append(
                [
                    "Same scenario over HTTP, Chat Completions / Responses API (small files)",
                    f"requests {sh['requests'][0]} / {sh['requests'][1]}; input {sh['input_tokens'][0]:,} / "
                    f"{sh['input_tokens'][1]:,}; output {sh['output_tokens'][0]:,} / {sh['output_tokens'][1]:,}; "
                    f"wall x{sh['responses_wall_over_chat']:.2f}",
                    "report",
                    "–",
                ]
            )
        for size in ("small", "large"):
            comp, bat = by.get((size, "Shunter compiled")), by.get((size, "ReAct batched"))
            if comp and bat:
                ratio = comp["input_tokens"] / bat["input_tokens"]
                wall = comp["wall_s"] / bat["wall_s"]
                rows.append(
                    [
                        f"Compiled plan, review scenario ({size} files) vs the batched ReAct agent",
                        f"requests {comp['requests']} vs {bat['requests']}; input {comp['input_tokens']:,} vs "
                        f"{bat['input_tokens']:,} (x{ratio:.2f}); wall x{wall:.2f}",
                        "requests <= 3, input <= 0.5 x, wall <= 1 x",
                        _ok(comp["requests"] <= bat["requests"] and ratio <= 0.5 and wall <= 1.0),
                    ]
                )
    if d := _load("compiled"):
        for r in d["rows"]:
            rows.append(
                [
                    f"Compiled wide plan (16 read calls + a joining write), {r['latency_s'] * 1000:.0f} ms/call",
                    f"{r['compiled_over_ideal']:.2f} x (planner + one tool round); {r['compiled_requests']} request "
                    f"vs {r['agent_only_requests']}, x{r['compiled_over_agent_only']:.2f} the agent-only makespan",
                    "<= 1.10 x",
                    _ok(r["compiled_over_ideal"] <= 1.10),
                ]
            )
    if d := _load("cancel_latency"):
        s = d["summary"]
        rows.append(
            [
                "Cancellation: SIGINT to exit with no child alive (1 command + 2 streams)",
                f"median {s['median_all_gone_ms']:.0f} ms, worst {s['worst_all_gone_ms']:.0f} ms",
                "< 500 ms",
                _ok(s["target_met"]),
            ]
        )
    if d := _load("startup"):
        c = d["commands"]
        rows.append(
            [
                "Start-up, fresh process (`--help` / `check-command ls`)",
                f"{c['shunter --help']['median_ms']:.0f} ms / {c['shunter check-command ls']['median_ms']:.0f} ms",
                "< 400 ms",
                _ok(d["summary"]["target_met"]),
            ]
        )
    if d := _load("estimate_accuracy"):
        for name, s in d["summary"].items():
            if s.get("runs"):
                rows.append(
                    [
                        f"Estimate accuracy, {s['runs']} scripted runs, {name}",
                        f"{s['inside_share']:.0%} inside [low, high]; median error of expected {s['median_expected_error']:+.0%}",
                        "report",
                        "–",
                    ]
                )
    if d := _load("engine"):
        s = d["summary"]
        rpm, up = s["runs_per_min"], s["speedup_end_to_end"]
        rows.append(
            [
                f"DBOS engine on SQLite, {d['batch_runs']} runs, {d['latency_s'] * 1000:.0f} ms/call: "
                f"1 / 2 / 4 workers x {d['concurrency_per_worker']}",
                f"{rpm['1']:.0f} / {rpm['2']:.0f} / {rpm['4']:.0f} runs/min end to end "
                f"(x{up['2']:.2f} / x{up['4']:.2f}) on {s['cores']} cores",
                "report",
                "–",
            ]
        )
        rows.append(
            [
                "DBOS engine vs local, one run of 6 parallel subtasks, zero latency",
                f"execution {s['local_exec_s'] * 1000:.0f} ms vs {s['dbos_exec_s'] * 1000:.0f} ms "
                f"({s['dbos_ms_per_subtask_exec']:+.0f} ms per subtask); whole CLI command "
                f"{s['local_cli_wall_s']:.2f} s vs {s['dbos_cli_wall_s']:.2f} s",
                "report",
                "–",
            ]
        )
    return rows


def headline_markdown() -> str:
    m = machine()
    dates = [d["machine"]["date"] for n in BENCHMARKS if (d := _load(n))]
    when = max(dates) if dates else m["date"]
    return (
        table(["measure", "result", "target", ""], headline())
        + f"\n\nMeasured {when[:10]} on {m['cores']} cores, Python {m['python']}, {m['platform']}."
    )


def update_readme(text: str) -> bool:
    if not README.exists():
        return False
    body = README.read_text()
    if START not in body or END not in body:
        return False
    head, rest = body.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    return True


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("-")] or [
        *BENCHMARKS,
        *(e for e in EXTRAS if (REPO / "benchmarks" / f"{e}.py").exists()),
    ]
    unknown = [n for n in names if not (REPO / "benchmarks" / f"{n}.py").exists()]
    if unknown:
        say(f"Unknown benchmark(s): {', '.join(unknown)}. Known: {', '.join(BENCHMARKS + EXTRAS)}.")
        return 2
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if quick:
        env["SHUNTER_BENCH_QUICK"] = "1"
    durations, failed = {}, []
    for name in names:
        say(f"\n=== {name} ===")
        t0 = time.perf_counter()
        rc = subprocess.call([python_bin(), "-m", f"benchmarks.{name}"], cwd=REPO, env=env)
        durations[name] = round(time.perf_counter() - t0, 1)
        if rc != 0:
            failed.append(f"{name} (exit {rc})")
    say("\nseconds per benchmark: " + ", ".join(f"{k} {v:.0f}" for k, v in durations.items()))
    if quick:
        say("quick run: results went to a temp folder; benchmarks/results and the README are unchanged.")
    else:
        md = headline_markdown()
        say("\n=== headline ===\n" + md)
        if update_readme(md):
            say(f"updated the results table in {README.relative_to(REPO)}")
    if failed:
        say("FAILED: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
