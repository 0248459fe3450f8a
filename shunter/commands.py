"""What the CLI commands do, kept apart from argument parsing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.registry import default_agents
from router.conversations import FollowUp
from router.records import RunResult
from router.run import Planned
from runtime.config import Settings
from runtime.context import approve_all
from runtime.errors import ConfigError, ModelError, RunCancelled
from runtime.store import STATE_FILE, Store
from shunter import render
from shunter.api import _provider, prepare
from shunter.api import plan as api_plan
from shunter.api import run as api_run
from shunter.approve import InteractiveApprover, announcing_approver, choose_approver
from shunter.progress import Progress
from shunter.wiring import OpenAIProvider, check_budget_can_be_enforced, check_workspace, settings_for

EXIT = {"succeeded": 0, "failed": 1, "cancelled": 130}


def _err(text: str) -> None:
    sys.stderr.write(text.rstrip() + "\n")


def flag_overrides(
    model: str | None = None,
    max_parallel: int | None = None,
    max_cost: float | None = None,
    fail_fast: bool = False,
    replan: int | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if replan is not None:
        if replan < 0:
            raise ConfigError(f"--replan must be 0 or more rounds, not {replan}.")
        out["planner"] = {"replan_rounds": replan}
    if model:
        out["model"] = {"name": model}
    if max_parallel is not None:
        if max_parallel < 1:
            raise ConfigError(f"--max-parallel must be at least 1, not {max_parallel}.")
        out["max_parallel"] = max_parallel
    if max_cost is not None:
        if max_cost <= 0:
            raise ConfigError(
                f"--max-cost must be a positive number of US dollars, not {max_cost:g}; a budget of zero allows no model call."
            )
        out["limits"] = {"max_cost_usd": max_cost}
    if fail_fast:
        out["fail_fast"] = True
    return out


def _planning_errors(fn):
    """An unreachable server, a wrong model or a rejected key shows up at planning: usage errors
    (exit 2). A server that is overloaded or failing (429, 5xx after the retries) is not a
    configuration problem: that run failed (exit 1)."""
    try:
        return fn()
    except ModelError as e:
        if e.status is not None and (e.status in (408, 409, 429) or e.status >= 500):
            raise
        raise ConfigError(str(e)) from None


def _show_plan(planned: Planned, fmt: str) -> None:
    if fmt == "mermaid":
        print(render.plan_mermaid(planned.plan))
        _err(render.estimate_table(planned.estimate))
    else:
        print(render.plan_tree(planned.plan))
        print()
        print(render.estimate_table(planned.estimate))


def plan_json(planned: Planned) -> dict[str, Any]:
    from planner.validate import waves

    return {
        "plan": planned.plan.model_dump(),
        "estimate": planned.estimate,
        "waves": waves(planned.plan),
        "attempts": planned.outcome.attempts,
        "notes": planned.outcome.notes,
    }


def plan_command(request: str, workspace: Path, fmt: str, model: str | None) -> None:
    if not request.strip():
        raise ConfigError(
            'No request given; say what you want done, e.g. shunter plan "list the TODOs in src/".'
        )
    ctx = prepare(workspace, overrides=flag_overrides(model))
    ctx.store = existing_store(ctx.workspace)  # memory and calibrated estimates, when there is history
    try:
        planned = _planning_errors(lambda: asyncio.run(api_plan(request, ctx=ctx)))
    finally:
        if ctx.store is not None:
            ctx.store.close()
    if fmt == "json":
        print(json.dumps(plan_json(planned)))
    else:
        _show_plan(planned, fmt)


def existing_store(workspace: Path) -> Store | None:
    return Store.open(workspace) if (workspace / ".shunter" / STATE_FILE).exists() else None


@dataclass
class RunOptions:
    yes: bool = False
    max_cost: float | None = None
    max_parallel: int | None = None
    fail_fast: bool = False
    model: str | None = None
    as_json: bool = False
    continue_: bool = False
    conversation: str | None = None
    from_run: str | None = None
    stream_plan: bool = True
    replan: int | None = None
    engine: str | None = None
    detach: bool = False


def _install_sigint(ctx) -> None:
    """First Ctrl-C cancels gracefully (finished work is kept); a second one exits at once."""
    loop = asyncio.get_running_loop()

    def on_sigint() -> None:
        if ctx.cancel.cancel("interrupted by Ctrl-C"):
            _err("\nCancelling… (press Ctrl-C again to exit at once)")
        else:
            os._exit(130)

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        loop.add_signal_handler(signal.SIGTERM, lambda: ctx.cancel.cancel("terminated"))
    except (NotImplementedError, RuntimeError):
        pass


def _budget_gate(opts: RunOptions):
    async def on_planned(planned: Planned) -> bool:
        if not opts.as_json:
            _err(render.plan_tree(planned.plan) + "\n\n" + render.estimate_table(planned.estimate) + "\n")
        high = planned.estimate["high_usd"]
        if opts.max_cost is None:
            return True
        if high is None:
            raise ConfigError(
                f"--max-cost cannot be enforced: no price is known for {', '.join(planned.estimate['unpriced_models'])}; add one under [prices] in .shunter/config.toml."
            )
        if high <= opts.max_cost or opts.yes:
            return True
        if sys.stdin is not None and sys.stdin.isatty():
            _err(
                f"The high estimate {render.usd(high)} exceeds --max-cost {render.usd(opts.max_cost)}. Start anyway? [y/N] "
            )
            return (await asyncio.to_thread(sys.stdin.readline)).strip().lower() in ("y", "yes")
        raise ConfigError(
            f"The high estimate {render.usd(high)} exceeds --max-cost {render.usd(opts.max_cost)}; raise the budget, "
            "or pass --yes to start anyway (spending still stops at the budget)."
        )

    return on_planned


def _print_result(result: RunResult, as_json: bool) -> int:
    data = result.to_dict()
    if as_json:
        print(json.dumps(data, default=str))
    else:
        print(result.answer)
        _err("\n" + render.usage_summary(data))
        if result.error:
            _err(f"{result.status}: {result.error}")
        _err(f"Run {result.run_id} {result.status}.")
        if any(r.files_changed for r in result.subtasks):
            _err(f"To put the files back as they were: shunter undo {result.run_id}")
    return EXIT.get(result.status, 1)


async def _run_async(request: str, ctx, opts: RunOptions, model=None) -> RunResult:
    _install_sigint(ctx)
    agents = default_agents(ctx.settings)
    progress_holder: list[Progress] = []

    def listener(rec) -> None:
        if progress_holder:
            progress_holder[0](rec)

    gate = _budget_gate(opts)

    async def on_planned(planned: Planned) -> bool:
        ok = await gate(planned)
        if ok:
            p = Progress(
                ctx.usage,
                [(s.id, s.agent) for s in planned.plan.subtasks],
                live=None if not opts.as_json else False,
            )
            progress_holder.append(p.__enter__())
            ctx.on_text = p.on_text
            if isinstance(ctx.approve, InteractiveApprover):
                ctx.approve.pause = p.paused
        return ok

    follow = FollowUp(continue_=opts.continue_, conversation=opts.conversation, from_run=opts.from_run)
    stream = streams_plan(opts, ctx.settings)
    if stream:  # subtasks appear in the live display as the plan streams in
        await on_planned_stream(ctx, opts, progress_holder)
    try:
        return await api_run(
            request,
            ctx=ctx,
            model=model,
            agents=agents,
            listeners=[listener],
            on_planned=None if stream else on_planned,
            follow=follow,
            stream_plan=stream,
        )
    finally:
        if progress_holder:
            progress_holder[0].__exit__(None, None, None)
        if hasattr(model, "aclose"):
            await model.aclose()


def streams_plan(opts: RunOptions, settings: Settings) -> bool:
    """Streamed planning, unless turned off or the whole plan is needed first: --max-cost checks
    the estimate (and may ask for confirmation on a terminal) before anything starts."""
    return opts.stream_plan and settings.planner.stream_plan and opts.max_cost is None


async def on_planned_stream(ctx, opts: RunOptions, holder: list[Progress]) -> None:
    p = Progress(ctx.usage, [], live=None if not opts.as_json else False)
    holder.append(p.__enter__())
    ctx.on_text = p.on_text
    if isinstance(ctx.approve, InteractiveApprover):
        ctx.approve.pause = p.paused


def run_command(request: str, workspace: Path, opts: RunOptions, model=None, ctx=None) -> int:
    if not request.strip():
        raise ConfigError(
            'No request given; say what you want done, e.g. shunter run "list the TODOs in src/".'
        )
    overrides = flag_overrides(opts.model, opts.max_parallel, opts.max_cost, opts.fail_fast, opts.replan)
    if opts.engine not in (None, "local", "dbos"):
        raise ConfigError(f"Unknown engine {opts.engine!r}; use --engine local or --engine dbos.")
    if ctx is None:
        ws = check_workspace(workspace)
        settings = settings_for(ws, overrides)
        if (opts.engine or settings.engine.kind) == "dbos":
            from shunter.engine.commands import run_on_engine

            check_budget_can_be_enforced(settings)
            return run_on_engine(request, ws, settings, overrides, opts.yes, opts.detach, opts.as_json)
        if opts.detach:
            raise ConfigError(
                "--detach needs the DBOS engine; add --engine dbos (and start `shunter worker`)."
            )
        if model is None:  # a missing key fails here, before anything is written to the workspace
            OpenAIProvider(settings)(settings.planner.model or settings.model.name)
        check_budget_can_be_enforced(settings)
        ctx = prepare(ws, settings=settings, overrides=overrides, approve=choose_approver(opts.yes))
    if ctx.sandbox is not None and not opts.as_json:
        _err(f"Sandbox for commands: {ctx.sandbox.kind} ({ctx.sandbox.detail})")
    models = _provider(model, ctx.settings)
    # Every run is recorded as it happens, so it can be resumed, undone and followed up on.
    ctx.store = ctx.store or Store.open(ctx.workspace)
    try:
        result = _planning_errors(lambda: asyncio.run(_run_async(request, ctx, opts, models)))
    except RunCancelled as e:
        raise ConfigError(str(e)) from None
    finally:
        ctx.store.close()
    return _print_result(result, opts.as_json)


def demo_command(as_json: bool, keep: bool, latency: float, workspace: Path | None = None) -> int:
    from shunter.demo import DEMO_REQUEST, demo_model, make_workspace

    if workspace is not None:
        keep = True
        tmp = workspace.expanduser().resolve()
        if tmp.exists() and not tmp.is_dir():
            raise ConfigError(
                f"{str(tmp)!r} is not a directory; pass a directory for the demo, or no --workspace."
            )
    else:
        tmp = Path(tempfile.mkdtemp(prefix="shunter-demo-"))
    make_workspace(tmp)
    if not as_json:
        _err(
            "Shunter demo: the model is SCRIPTED (offline, no API key); the tools, files, policy, scheduler and accounting are real."
        )
        _err(f"Workspace: {tmp}\nRequest: {DEMO_REQUEST}\n")
    overrides = {"model": {"name": "scripted", "api_key": "unused-scripted"}}
    from shunter.api import prepare as prep

    ctx = prep(tmp, overrides=overrides, approve=approve_all if as_json else announcing_approver())
    # Not streamed: the demo shows the whole plan and its estimate before it runs.
    opts = RunOptions(yes=True, as_json=as_json, stream_plan=False)
    code = run_command(DEMO_REQUEST, tmp, opts, model=demo_model(latency), ctx=ctx)
    if not as_json:
        todo = tmp / "TODO.md"
        if todo.exists():
            _err("\n--- TODO.md written by the run ---\n" + todo.read_text())
        _err(f"(workspace kept at {tmp})" if keep else "")
    if not keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return code
