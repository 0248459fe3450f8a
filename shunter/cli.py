"""The `shunter` command line: thin commands over the library. Heavy imports stay inside the
commands so `shunter --help` starts fast."""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from shunter.cli_options import JsonFlag, MaxParallel, ModelName, Workspace, YesFlag

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Shunter plans a request into a graph of subtasks and runs them with specialist agents.",
)


def _fail(message: str, code: int, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps({"status": "error", "error": message, "exit_code": code}))
    sys.stderr.write(f"shunter: {message}\n")
    raise typer.Exit(code)


def _guard(fn, as_json: bool = False):
    """Turn every typed error into one sentence and its exit code; never a traceback."""
    from runtime.errors import ShunterError

    try:
        return fn()
    except ShunterError as e:
        _fail(str(e), e.exit_code, as_json)
    except KeyboardInterrupt:
        _fail("Cancelled.", 130, as_json)


@app.callback()
def main_options(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output on stderr.")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
) -> None:
    from runtime.events import configure_stderr

    configure_stderr(-1 if quiet else verbose)
    _start_telemetry()


def _start_telemetry() -> None:
    """Export spans when OTEL_EXPORTER_OTLP_ENDPOINT is set and shunter[otel] is installed."""
    import atexit
    import os

    if not any(k.startswith("OTEL_EXPORTER_OTLP") for k in os.environ):
        return  # the common case imports nothing more
    from runtime.telemetry_setup import setup_from_env

    provider = setup_from_env()
    if provider is not None:
        atexit.register(provider.shutdown)  # flushes the spans still batched


@app.command()
def plan(
    request: Annotated[str, typer.Argument(help="What you want done.")] = "",
    workspace: Workspace = Path("."),
    as_json: JsonFlag = False,
    fmt: Annotated[str, typer.Option("--format", help="tree, mermaid or json.")] = "tree",
    model: ModelName = None,
) -> None:
    """Dry run: the plan graph, its parallel waves and the cost estimate. Calls only the planner."""
    from shunter.commands import plan_command

    if fmt not in ("tree", "mermaid", "json"):
        _fail(f"Unknown --format {fmt!r}; use tree, mermaid or json.", 2, as_json)
    _guard(
        lambda: plan_command(request, workspace, "json" if as_json else fmt, model), as_json or fmt == "json"
    )


@app.command()
def run(
    request: Annotated[str, typer.Argument(help="What you want done.")] = "",
    workspace: Workspace = Path("."),
    yes: YesFlag = False,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            help="Budget in USD: refuse to start above it, stop on reaching it. Needs the whole plan "
            "first, so planning is then not streamed.",
        ),
    ] = None,
    max_parallel: MaxParallel = None,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop everything at the first failed subtask.")
    ] = False,
    model: ModelName = None,
    as_json: JsonFlag = False,
    continue_: Annotated[
        bool, typer.Option("--continue", help="Follow up on the latest conversation.")
    ] = False,
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="Follow up on this conversation id.")
    ] = None,
    from_run: Annotated[
        str | None, typer.Option("--from", help="Branch a new conversation line from this run.")
    ] = None,
    no_stream_plan: Annotated[
        bool,
        typer.Option(
            "--no-stream-plan",
            help="Wait for the whole plan (and show it with its estimate) before anything starts. "
            "Streaming is also off with --max-cost.",
        ),
    ] = False,
    replan: Annotated[
        int | None,
        typer.Option(
            "--replan",
            help="After failed subtasks, go back to the planner up to N times (it then reads their "
            "results, quoted as data; no new agents or tools). Default 0.",
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="local (this process, the default) or dbos: enqueue the run for `shunter worker` "
            "processes on the engine database ([engine] url or SHUNTER_ENGINE_URL).",
        ),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option("--detach", help="With --engine dbos: print the run id and return at once."),
    ] = False,
) -> None:
    """Plan, show the estimate, execute with approvals and live progress, print the answer and usage.

    Planning is streamed: each subtask starts as soon as its part of the plan has arrived, unless
    --no-stream-plan or --max-cost is given."""
    from shunter.commands import RunOptions, run_command

    opts = RunOptions(
        yes=yes,
        max_cost=max_cost,
        max_parallel=max_parallel,
        fail_fast=fail_fast,
        model=model,
        as_json=as_json,
        continue_=continue_,
        conversation=conversation,
        from_run=from_run,
        stream_plan=not no_stream_plan,
        replan=replan,
        engine=engine,
        detach=detach,
    )
    code = _guard(lambda: run_command(request, workspace, opts), as_json)
    raise typer.Exit(code or 0)


@app.command()
def batch(
    file: Annotated[Path, typer.Argument(help='JSONL: one {"request": ..., "workspace": DIR} per line.')],
    workspace: Workspace = Path("."),
    yes: YesFlag = False,
    detach: Annotated[bool, typer.Option("--detach", help="Enqueue and return the run ids at once.")] = False,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost", help="One dollar cap for the whole batch, held across every worker."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Enqueue one run per line on the DBOS engine and, unless --detach, wait for them all."""
    from shunter.engine.commands import batch_command

    raise typer.Exit(
        _guard(lambda: batch_command(file, workspace, yes, detach, as_json, max_cost), as_json) or 0
    )


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="The run to stop (a DBOS engine run).")],
    workspace: Workspace = Path("."),
    as_json: JsonFlag = False,
) -> None:
    """Cancel a run on the DBOS engine, and its subtasks, wherever they run."""
    from shunter.engine.commands import cancel_command

    raise typer.Exit(_guard(lambda: cancel_command(run_id, workspace, as_json), as_json) or 0)


@app.command()
def worker(
    workspace: Workspace = Path("."),
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", min=1, help="Runs, and subtasks, taken at a time ([engine] concurrency, 4)."
        ),
    ] = None,
) -> None:
    """Run a DBOS engine worker until Ctrl-C or SIGTERM: it takes runs and subtasks from the
    engine's queues and recovers those of workers that died."""
    from shunter.engine.commands import worker_command

    raise typer.Exit(_guard(lambda: worker_command(workspace, concurrency)) or 0)


@app.command()
def workers(workspace: Workspace = Path("."), as_json: JsonFlag = False) -> None:
    """The DBOS engine's live workers and how many runs and subtasks are queued and running."""
    from shunter.engine.commands import workers_command

    raise typer.Exit(_guard(lambda: workers_command(workspace, as_json), as_json) or 0)


@app.command()
def agents(workspace: Workspace = Path("."), as_json: JsonFlag = False) -> None:
    """The registered specialists, built-in and plugins."""
    from shunter.catalog import agents_command

    _guard(lambda: agents_command(workspace, as_json), as_json)


@app.command()
def tools(workspace: Workspace = Path("."), as_json: JsonFlag = False) -> None:
    """Every tool a run can use (built-in, plugin, MCP) with its agents and its effect."""
    from shunter.catalog import tools_command

    _guard(lambda: tools_command(workspace, as_json), as_json)


@app.command("check-command")
def check_command(
    command: Annotated[str, typer.Argument(help="A shell command to judge.")],
    workspace: Workspace = Path("."),
    as_json: JsonFlag = False,
) -> None:
    """The shell policy's verdict on a command: allow, ask or deny, with the reason."""
    from runtime.config import load_settings
    from tools.policy import check_command as verdict_of

    network = _guard(lambda: load_settings(workspace.resolve()).tools.shell_network, as_json)
    verdict = verdict_of(command, allow_network=network)
    if as_json:
        print(json.dumps(verdict.to_dict()))
    else:
        print(f"{verdict.decision}: {verdict.reason}")


@app.command("check-path")
def check_path(
    path: Annotated[str, typer.Argument(help="A path to judge against the workspace scope.")],
    workspace: Workspace = Path("."),
    as_json: JsonFlag = False,
    write: Annotated[
        bool, typer.Option("--write", help="Judge a write (protected paths are refused).")
    ] = False,
) -> None:
    """The path scope's verdict: whether a tool may touch PATH in the workspace."""
    from runtime.config import load_settings
    from tools.pathscope import PathScope
    from tools.pathscope import check_path as verdict_of

    def judge() -> dict:
        verdict_of(workspace, ".")  # one clear sentence when the workspace does not exist
        protected = load_settings(workspace.resolve()).tools.protected_paths
        return PathScope(workspace.resolve(), protected).check(path, write=write).to_dict()

    verdict = _guard(judge, as_json)
    if as_json:
        print(json.dumps(verdict))
    else:
        state = "allowed" if verdict["allowed"] else "refused"
        print(
            f"{state}: {verdict['reason']}" + (f" ({verdict['resolved']})" if verdict.get("resolved") else "")
        )


@app.command()
def demo(
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace", "-w", help="Run the demo in this directory (kept) instead of a temporary one."
        ),
    ] = None,
    as_json: JsonFlag = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary workspace and print its path.")
    ] = False,
    latency: Annotated[float, typer.Option("--latency", help="Scripted seconds per model call.")] = 0.25,
) -> None:
    """A complete run offline on the bundled scripted model, in a temporary workspace."""
    from shunter.commands import demo_command

    code = _guard(lambda: demo_command(as_json, keep, latency, workspace), as_json)
    raise typer.Exit(code or 0)


@app.command()
def mcp(
    workspace: Workspace = Path("."),
    http: Annotated[
        str | None,
        typer.Option("--http", help="Serve streamable HTTP on HOST:PORT (loopback) instead of stdio."),
    ] = None,
    yes: YesFlag = False,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow --http on a host other machines can reach.")
    ] = False,
    model: ModelName = None,
) -> None:
    """Serve Shunter as an MCP server (tools plan, run, runs, show) over stdio or streamable HTTP."""
    from shunter.mcp_server import serve

    _guard(lambda: serve(workspace, http=http, yes=yes, allow_remote=allow_remote, model=model))


def _register_state_commands() -> None:
    try:
        from shunter import cli_state
    except ImportError:
        return
    cli_state.register(app, _guard, _fail)


_register_state_commands()


def _register_memory_commands() -> None:
    from shunter import memory_cli

    memory_cli.register(app, _guard, _fail)


_register_memory_commands()


class _Recorder:
    """Passes writes through and remembers them, to see what a usage error printed."""

    def __init__(self, stream: Any):
        self.stream, self.text, self.written = stream, "", False

    def write(self, s: str) -> int:
        self.written = self.written or bool(s)
        self.text = (self.text + s)[-4000:]
        return self.stream.write(s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _usage_message(text: str) -> str:
    lines = [line.strip(" │╭╮╰╯─\t") for line in text.splitlines()]
    lines = [x for x in lines if x and not x.startswith(("Usage:", "Try ", "Error"))]
    return " ".join(lines) or "Bad usage; see --help."


def main() -> Any:
    # --json promises one JSON object on stdout even when typer rejects a flag or argument.
    as_json = "--json" in sys.argv[1:]
    out, err = sys.stdout, sys.stderr
    if as_json:
        sys.stdout, sys.stderr = _Recorder(out), _Recorder(err)
    try:
        app()
    except SystemExit as e:
        if as_json and e.code == 2 and not sys.stdout.written:  # type: ignore[union-attr]
            message = _usage_message(sys.stderr.text)  # type: ignore[union-attr]
            out.write(json.dumps({"status": "error", "error": message, "exit_code": 2}) + "\n")
        raise
    finally:
        sys.stdout, sys.stderr = out, err
        # Skip the collector's walk over every object at interpreter exit: it was most of the
        # time between a Ctrl-C and the process being gone.
        gc.freeze()


if __name__ == "__main__":
    main()
