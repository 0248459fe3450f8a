"""The DBOS engine: throughput with 1, 2 and 4 worker processes, and what the engine path adds
to a single run next to the local scheduler.

Every `shunter` process (workers, `batch`, `run`) is a subprocess against the scripted
OpenAI-compatible test server (`runtime.testserver.TestServer`, in this process: the clients
are other processes, so its threads share no GIL with them), with the engine's database an
SQLite file in a temp folder (`SHUNTER_ENGINE_URL`). Each subtask is two model calls: a
`read_file` call, then its answer.

1. **Throughput**: a batch of 16 runs of a 3-subtask plan (two reads, then a third read that
   depends on both; read-only), 200 ms per model call, on 1, 2 and 4 workers each taking 2 runs
   and 2 subtasks at a time. A run is 8 model calls, 6 of them on its critical path (1.2 s).
   Runs per minute from the `shunter batch` command's own wall time (submit, follow, print:
   end to end), and from the span the model server saw (first request to last answer).
2. **Overhead**: one run of 6 independent read-only subtasks at zero latency through
   `shunter run --json`, in the process (`--engine local`) and on the engine with one worker
   already running (`--engine dbos`). From the run's JSON, timed inside the process that ran it
   (the CLI locally, the worker on the engine): `seconds` (execution: from the plan being ready
   to the answer) and `usage.wall_seconds` (planning included); and, apart from those, the CLI
   command's end-to-end wall time. Where the time goes is read from the run's event log.

Workers are stopped with SIGTERM (then SIGKILL to their process group) whatever happens,
SIGTERM to the benchmark itself included.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, median, python_bin, reps, say, table, write_result

NAME = "engine"
REPS = 3
LATENCY_S = 0.2
BATCH_RUNS = 16
"""A multiple of 4 workers x 2 runs at a time: with 12, four workers would idle half of the second wave."""
WORKER_COUNTS = (1, 2, 4)
CONCURRENCY = 2
OVERHEAD_SUBTASKS = 6
TEST_KEY = "sk-test-benchmark-not-a-real-key"

THROUGHPUT_PLAN = {
    "goal": "read two files, then a third once both are read",
    "subtasks": [
        {"id": "t1", "agent": "file", "instruction": "[t1] read a.txt", "depends_on": [], "read_only": True},
        {"id": "t2", "agent": "file", "instruction": "[t2] read b.txt", "depends_on": [], "read_only": True},
        {
            "id": "t3",
            "agent": "file",
            "instruction": "[t3] read c.txt now that a.txt and b.txt are read",
            "depends_on": ["t1", "t2"],
            "read_only": True,
        },
    ],
}
THROUGHPUT_FILES = {"t1": "a.txt", "t2": "b.txt", "t3": "c.txt"}
CALLS_PER_RUN = 1 + 2 * len(THROUGHPUT_PLAN["subtasks"]) + 1
CRITICAL_PATH_CALLS = 1 + 2 + 2 + 1  # planner, t1 (or t2), t3, synthesis

OVERHEAD_PLAN = {
    "goal": "read six files",
    "subtasks": [
        {
            "id": f"t{i}",
            "agent": "file",
            "instruction": f"[t{i}] read f{i}.txt",
            "depends_on": [],
            "read_only": True,
        }
        for i in range(1, OVERHEAD_SUBTASKS + 1)
    ],
}
OVERHEAD_FILES = {f"t{i}": f"f{i}.txt" for i in range(1, OVERHEAD_SUBTASKS + 1)}


# --- the scripted model ------------------------------------------------------------------------


class Brain:
    """Planner -> the plan; subtask tN -> a read_file call of its file, then 'result of tN';
    synthesis -> 'All done.'. Records when each request arrived (thread-safe)."""

    def __init__(self, plan: dict[str, Any], files: dict[str, str]):
        self.plan_json, self.files = json.dumps(plan), files
        self.arrived: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]):
        from runtime.testserver import Text, ToolCalls

        with self._lock:
            self.arrived.append(time.monotonic())
        messages = body["messages"]
        system = messages[0]["content"] or ""
        if system.startswith("You are the planner"):
            return Text(self.plan_json)
        if system.startswith("You write the final answer"):
            return Text("All done.")
        found = re.search(r"\[(t\d+)\]", messages[1]["content"] or "")
        sid = found.group(1) if found else "?"
        if not any(m["role"] == "assistant" for m in messages):
            return ToolCalls([("read_file", {"path": self.files.get(sid, "a.txt")})])
        return Text(f"result of {sid}")

    def reset(self) -> None:
        with self._lock:
            self.arrived.clear()


# --- processes ---------------------------------------------------------------------------------


def env_for(server: Any, url: str, home: Path) -> dict[str, str]:
    """The CLI's environment: the test server as the model, the engine URL, and config and data
    folders of its own (no user config: rate limits or prices there would change the numbers)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SHUNTER_"))}
    return env | {
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": TEST_KEY,
        "SHUNTER_MODEL": "scripted",
        "SHUNTER_ENGINE_URL": url,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "PYTHONPATH": str(REPO),
    }


def cli(env: dict[str, str], *args: str, timeout: float = 180) -> tuple[float, subprocess.CompletedProcess]:
    """A `shunter` command in a process of its own: (end-to-end wall seconds, the result)."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [python_bin(), "-m", "shunter.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"shunter {args[0]} exited {out.returncode}: {out.stderr[-2000:]}")
    return seconds, out


class Worker:
    """`shunter worker --concurrency N` in its own session; started when its banner is logged."""

    def __init__(self, env: dict[str, str], log: Path, concurrency: int):
        self.log = log
        with open(log, "w") as err:
            self.proc = subprocess.Popen(
                [python_bin(), "-m", "shunter.cli", "worker", "--concurrency", str(concurrency)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "Worker " not in self.log.read_text():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the worker exited {self.proc.returncode}: {self.log.read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start in {timeout:.0f} s")
            time.sleep(0.05)

    def terminate(self) -> None:
        """SIGTERM: the worker leaves cleanly (marks itself gone in the engine's database)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL to its whole process group if it lingers."""
        self.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@contextlib.contextmanager
def workers(env: dict[str, str], n: int, folder: Path, concurrency: int) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    try:
        for i in range(n):
            started.append(Worker(env, folder / f"worker{i}.log", concurrency))
        for w in started:
            w.wait_ready()
        yield started
    finally:
        for w in started:  # all at once: each takes about a second to leave
            w.terminate()
        deadline = time.monotonic() + 15
        for w in started:
            w.stop(timeout=max(0.1, deadline - time.monotonic()))


def workspace(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    for sid, name in files.items():
        (path / name).write_text(f"content of {name} for {sid}\n")
    return path


def user_config(home: Path) -> None:
    """The user config every process reads (a workspace config may not weaken the sandbox): no OS
    sandbox (file tools only; the numbers must not depend on bwrap), no retries."""
    config = home / "config" / "shunter" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[tools]\nsandbox = "none"\n\n[retry]\nattempts = 1\n')


# --- 1. throughput -----------------------------------------------------------------------------


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat (0, 0 where there is none)."""
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def one_batch(env: dict[str, str], brain: Brain, folder: Path, runs: int) -> dict[str, float]:
    spaces = [workspace(folder / f"ws{i}", THROUGHPUT_FILES) for i in range(runs)]
    batch = folder / "batch.jsonl"
    batch.write_text(
        "".join(
            json.dumps({"request": f"job {i}", "workspace": str(ws)}) + "\n" for i, ws in enumerate(spaces)
        )
    )
    brain.reset()
    busy0, total0 = cpu_times()
    started = time.monotonic()
    wall, out = cli(env, "batch", str(batch), "--yes", "--json", "--workspace", str(spaces[0]))
    ended = time.monotonic()
    busy1, total1 = cpu_times()
    done = json.loads(out.stdout)["runs"]
    bad = [r for r in done if r["status"] != "succeeded" or r["usage"]["requests"] != CALLS_PER_RUN]
    if bad:
        raise RuntimeError(f"{len(bad)} of {runs} runs did not succeed with {CALLS_PER_RUN} calls: {bad[0]}")
    arrived = sorted(brain.arrived)
    return {
        "wall_s": wall,
        "server_span_s": arrived[-1] + LATENCY_S - arrived[0],
        "to_first_request_s": arrived[0] - started,
        "after_last_answer_s": ended - (arrived[-1] + LATENCY_S),
        "run_wall_s": median(r["usage"]["wall_seconds"] for r in done),
        "cpu_busy": (busy1 - busy0) / (total1 - total0) if total1 > total0 else float("nan"),
    }


def throughput(server: Any, home: Path, n_reps: int) -> list[dict[str, Any]]:
    brain = Brain(THROUGHPUT_PLAN, THROUGHPUT_FILES)
    server.handler, server.latency_s = brain, LATENCY_S
    rows = []
    for n in WORKER_COUNTS:
        folder = home / f"throughput-{n}"
        folder.mkdir()
        env = env_for(server, f"sqlite:///{folder / 'engine.sqlite'}", home)
        with workers(env, n, folder, CONCURRENCY):
            # Warm-up, discarded: the schema, and each worker's first run (tokenizer, imports).
            one_batch(env, brain, folder / "warm", n * CONCURRENCY)
            measured = [one_batch(env, brain, folder / f"rep{k}", BATCH_RUNS) for k in range(n_reps)]

        def med(key: str, ms: list[dict[str, float]] = measured) -> float:
            return median(m[key] for m in ms)

        wall, span = med("wall_s"), med("server_span_s")
        rows.append(
            {
                "workers": n,
                "concurrency": CONCURRENCY,
                "runs": BATCH_RUNS,
                "batch_wall_s": round(wall, 3),
                "batch_walls_s": [round(m["wall_s"], 3) for m in measured],
                "server_span_s": round(span, 3),
                "to_first_request_s": round(med("to_first_request_s"), 3),
                "after_last_answer_s": round(med("after_last_answer_s"), 3),
                "runs_per_min_end_to_end": round(BATCH_RUNS * 60 / wall, 1),
                "runs_per_min_server_span": round(BATCH_RUNS * 60 / span, 1),
                "median_run_wall_s": round(med("run_wall_s"), 3),
                "cpu_busy_share": round(med("cpu_busy"), 2),
            }
        )
        say(f"  {NAME}: {n} worker(s): batch {wall:.2f} s, {BATCH_RUNS * 60 / wall:.1f} runs/min end to end")
    base = rows[0]
    for r in rows:
        r["speedup_end_to_end"] = round(r["runs_per_min_end_to_end"] / base["runs_per_min_end_to_end"], 2)
        r["speedup_server_span"] = round(r["runs_per_min_server_span"] / base["runs_per_min_server_span"], 2)
    return rows


# --- 2. overhead of the engine path ------------------------------------------------------------


def timeline(ws: Path, run_id: str) -> dict[str, float | None]:
    """Where a run's time went, from its event log (seconds)."""
    events = [
        e
        for e in map(json.loads, (ws / ".shunter" / "logs" / "events.jsonl").read_text().splitlines())
        if e.get("run_id") == run_id
    ]

    def at(name: str) -> list[float]:
        return [e["ts"] for e in events if e["event"] == name]

    ready, starts, ends = at("plan.ready"), at("subtask.started"), at("subtask.finished")
    if not (ready and starts and ends):
        return {}
    synthesis = [
        e["ts"]
        for e in events
        if e["event"] == "model.request"
        and e.get("subtask_id") in (None, "synthesis")
        and e["ts"] > max(ends)
    ]
    taken = {
        e["subtask_id"] or e["data"].get("subtask"): e["ts"] for e in events if e["event"] == "engine.subtask"
    }
    began = {e["subtask_id"]: e["ts"] for e in events if e["event"] == "subtask.started"}
    setup = [began[s] - t for s, t in taken.items() if s in began]
    return {
        "plan_ready_to_first_start_s": min(starts) - ready[0],
        "first_to_last_start_s": max(starts) - min(starts),
        "last_finish_to_synthesis_s": (synthesis[0] - max(ends)) if synthesis else None,
        "subtask_setup_s": median(setup) if setup else None,
    }


def one_run(env: dict[str, str], ws: Path, engine: str) -> dict[str, Any]:
    """One `shunter run --json` of the overhead plan: its times, from the outside and the JSON."""
    wall, out = cli(
        env,
        "run",
        "read six files",
        "--yes",
        "--json",
        "--no-stream-plan",  # the engine's runs wait for the whole plan; the same here
        "--max-parallel",
        str(OVERHEAD_SUBTASKS),
        "--engine",
        engine,
        "--workspace",
        str(ws),
    )
    data = json.loads(out.stdout)
    if data["status"] != "succeeded" or len(data["subtasks"]) != OVERHEAD_SUBTASKS:
        raise RuntimeError(f"the {engine} run {data['status']}: {data.get('error')}")
    sub = [s["seconds"] for s in data["subtasks"] if s.get("seconds") is not None]
    return {
        "cli_wall_s": wall,
        "exec_s": float(data["seconds"]),
        "run_wall_s": float(data["usage"]["wall_seconds"]),
        "subtask_s": median(sub) if sub else None,
        **timeline(ws, data["run_id"]),
    }


OVERHEAD_KEYS = (
    "cli_wall_s",
    "run_wall_s",
    "exec_s",
    "subtask_s",
    "plan_ready_to_first_start_s",
    "first_to_last_start_s",
    "last_finish_to_synthesis_s",
    "subtask_setup_s",
)


def overhead(server: Any, home: Path, n_reps: int) -> dict[str, Any]:
    server.handler, server.latency_s = Brain(OVERHEAD_PLAN, OVERHEAD_FILES), 0.0
    folder = home / "overhead"
    folder.mkdir()
    env = env_for(server, f"sqlite:///{folder / 'engine.sqlite'}", home)
    ws = workspace(folder / "ws", OVERHEAD_FILES)
    got: dict[str, list[dict[str, Any]]] = {"local": [], "dbos": []}
    with workers(env, 1, folder, OVERHEAD_SUBTASKS):
        one_run(env, ws, "local")  # warm-up, discarded: page cache, the workspace's store
        one_run(env, ws, "dbos")  # and the worker's first run
        for _ in range(n_reps):  # interleaved, so drift on the machine hits both alike
            for engine in ("local", "dbos"):
                got[engine].append(one_run(env, ws, engine))
    out: dict[str, Any] = {"subtasks": OVERHEAD_SUBTASKS, "model_calls": 2 * OVERHEAD_SUBTASKS + 2}
    for engine, runs in got.items():
        out[engine] = {}
        for key in OVERHEAD_KEYS:
            xs = [r[key] for r in runs if r.get(key) is not None]
            out[engine][key] = round(median(xs), 4) if xs else None
        out[engine]["runs"] = [
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in runs
        ]
    loc, dbo = out["local"], out["dbos"]
    for key in ("exec_s", "run_wall_s", "cli_wall_s"):
        out[f"{key}_ms_per_subtask"] = round((dbo[key] - loc[key]) * 1000 / OVERHEAD_SUBTASKS, 1)
    say(
        f"  {NAME}: overhead: execution {loc['exec_s']:.3f} s local, {dbo['exec_s']:.3f} s dbos; "
        f"CLI {loc['cli_wall_s']:.3f} s local, {dbo['cli_wall_s']:.3f} s dbos"
    )
    return out


# --- report ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from runtime.testserver import TestServer

    n_reps = reps(REPS)
    cores = os.cpu_count()
    # SIGTERM to the benchmark unwinds like an error, so the workers' `finally` stops them too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    say(
        f"{NAME}: DBOS engine on SQLite, {LATENCY_S * 1000:.0f} ms per model call, batches of {BATCH_RUNS} runs, "
        f"median of {n_reps}; {cores} cores"
    )
    with tempfile.TemporaryDirectory(prefix="shunter-bench-engine-") as tmp, TestServer() as server:
        home = Path(tmp)
        user_config(home)
        rows = throughput(server, home, n_reps)
        over = overhead(server, home, n_reps)
    ideal = BATCH_RUNS * 60 / (CRITICAL_PATH_CALLS * LATENCY_S)  # every run at once, no overhead
    by_workers = {r["workers"]: r for r in rows}
    summary = {
        "cores": cores,
        "runs_per_min": {str(r["workers"]): r["runs_per_min_end_to_end"] for r in rows},
        "speedup_end_to_end": {str(r["workers"]): r["speedup_end_to_end"] for r in rows},
        "speedup_server_span": {str(r["workers"]): r["speedup_server_span"] for r in rows},
        "best_workers": max(by_workers, key=lambda n: by_workers[n]["runs_per_min_end_to_end"]),
        "local_exec_s": over["local"]["exec_s"],
        "dbos_exec_s": over["dbos"]["exec_s"],
        "dbos_ms_per_subtask_exec": over["exec_s_ms_per_subtask"],
        "dbos_ms_per_subtask_run_wall": over["run_wall_s_ms_per_subtask"],
        "dbos_ms_per_subtask_cli": over["cli_wall_s_ms_per_subtask"],
        "local_cli_wall_s": over["local"]["cli_wall_s"],
        "dbos_cli_wall_s": over["dbos"]["cli_wall_s"],
    }
    write_result(
        NAME,
        {
            "latency_s": LATENCY_S,
            "repetitions": n_reps,
            "batch_runs": BATCH_RUNS,
            "concurrency_per_worker": CONCURRENCY,
            "calls_per_run": CALLS_PER_RUN,
            "critical_path_calls": CRITICAL_PATH_CALLS,
            "engine_database": "sqlite (one file in a temp folder)",
            "definitions": {
                "batch_wall_s": "end to end: the `shunter batch --yes --json` process, from start to exit "
                "(interpreter start, submitting, following every run, printing)",
                "server_span_s": "the model server's first request to its last answer (the CLI's own start "
                "and its noticing the end are left out)",
                "to_first_request_s / after_last_answer_s": "batch start to the first model request; the last "
                "answer to the batch's exit",
                "cpu_busy_share": "share of the machine's CPU time (all cores) busy during the batch, /proc/stat",
                "exec_s": "RunResult.seconds in the run's JSON: from the plan being ready to the answer "
                "(scheduling, subtasks, synthesis), timed in the process that ran the run: the CLI locally, "
                "the worker on the engine",
                "run_wall_s": "usage.wall_seconds in the run's JSON: from the run's context being made "
                "(planning included) to the end, in the same process",
                "cli_wall_s": "end to end: the `shunter run --json` process, from start to exit",
                "ms_per_subtask": "(dbos - local) / subtasks; the subtasks run in parallel, so this is the "
                "added time spread over them, not each one's own cost",
                "timeline": "from the run's event log: plan.ready to the first subtask.started; first to last "
                "subtask.started; last subtask.finished to the synthesis request; engine.subtask to "
                "subtask.started inside a subtask workflow (its context, store, agents, models)",
            },
            "throughput": rows,
            "overhead": over,
            "summary": summary,
        },
    )
    say(
        "\n"
        + table(
            [
                "workers",
                "x concurrency",
                "runs",
                "batch wall s",
                "runs/min (end to end)",
                "speed-up",
                "server span s",
                "runs/min (server span)",
                "speed-up",
                "to 1st request s",
                "after last answer s",
                "median run s",
                "CPU busy",
            ],
            [
                [
                    r["workers"],
                    r["concurrency"],
                    r["runs"],
                    r["batch_wall_s"],
                    r["runs_per_min_end_to_end"],
                    f"{r['speedup_end_to_end']:.2f} x",
                    r["server_span_s"],
                    r["runs_per_min_server_span"],
                    f"{r['speedup_server_span']:.2f} x",
                    r["to_first_request_s"],
                    r["after_last_answer_s"],
                    r["median_run_wall_s"],
                    f"{r['cpu_busy_share']:.0%}",
                ]
                for r in rows
            ],
        )
    )
    say(
        f"A run is {CALLS_PER_RUN} model calls of {LATENCY_S * 1000:.0f} ms, {CRITICAL_PATH_CALLS} on its critical "
        f"path ({CRITICAL_PATH_CALLS * LATENCY_S:.1f} s): all {BATCH_RUNS} at once would be {ideal:.0f} runs/min. "
        f"This machine has {cores} cores: a worker mostly waits for the model, so throughput is bounded by "
        "model latency and the engine's polling, not by CPU; 4 workers are more processes than cores."
    )
    loc, dbo = over["local"], over["dbos"]

    def ms(x: float | None) -> str:
        return "–" if x is None else f"{x * 1000:.0f} ms"

    say(
        "\n"
        + table(
            [
                "engine",
                "execution s (JSON `seconds`)",
                "run s (JSON `usage.wall_seconds`)",
                "CLI end to end s",
                "median subtask",
                "plan -> 1st start",
                "1st -> last start",
                "last finish -> synthesis",
                "subtask setup",
            ],
            [
                [
                    name,
                    d["exec_s"],
                    d["run_wall_s"],
                    d["cli_wall_s"],
                    ms(d["subtask_s"]),
                    ms(d["plan_ready_to_first_start_s"]),
                    ms(d["first_to_last_start_s"]),
                    ms(d["last_finish_to_synthesis_s"]),
                    ms(d["subtask_setup_s"]),
                ]
                for name, d in (("local", loc), ("dbos, 1 worker running", dbo))
            ]
            + [
                [
                    f"(dbos - local) / {OVERHEAD_SUBTASKS} subtasks",
                    f"{over['exec_s_ms_per_subtask']:+.1f} ms",
                    f"{over['run_wall_s_ms_per_subtask']:+.1f} ms",
                    f"{over['cli_wall_s_ms_per_subtask']:+.1f} ms",
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            ],
        )
    )
    say(
        f"One run of {OVERHEAD_SUBTASKS} independent read-only subtasks (2 model calls each) at zero latency, "
        f"--max-parallel {OVERHEAD_SUBTASKS}, worker --concurrency {OVERHEAD_SUBTASKS}. Execution and run "
        "seconds are timed inside the process that ran the run (the CLI locally, the warm worker on the "
        "engine); the CLI time is the whole command, interpreter start included, and on the engine "
        "submitting and following (polled every 0.2 s)."
    )
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
