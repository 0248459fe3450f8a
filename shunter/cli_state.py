"""The persistence commands: `runs`, `show`, `resume`, `undo`. Registered on the main app by
shunter/cli.py; heavy imports stay inside the commands so `shunter --help` starts fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from shunter.cli_options import JsonFlag, MaxParallel, ModelName, Workspace, YesFlag

RunId = Annotated[
    str, typer.Argument(help="A run id (or a unique start of one), as `shunter runs` lists them.")
]


def register(app: typer.Typer, guard, fail) -> None:
    @app.command()
    def runs(
        workspace: Workspace = Path("."),
        as_json: JsonFlag = False,
        limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs to list.")] = 20,
    ) -> None:
        """Recent runs, newest first: id, when, status, subtasks done, cost, request."""
        guard(lambda: runs_command(workspace, as_json, limit), as_json)

    @app.command()
    def show(
        run_id: RunId,
        workspace: Workspace = Path("."),
        as_json: JsonFlag = False,
        as_html: Annotated[
            bool,
            typer.Option(
                "--html",
                help="Write a self-contained HTML report (plan graph, timeline, costs, diffs) and print "
                "its path; with --json, print {run_id, report} instead.",
            ),
        ] = False,
        output: Annotated[
            Path | None,
            typer.Option(
                "--output", "-o", help="Where --html writes (default .shunter/reports/RUN_ID.html)."
            ),
        ] = None,
    ) -> None:
        """One run: the plan with each subtask's status, result, usage and timing; files changed."""
        if output is not None and not as_html:
            fail("-o/--output is for the HTML report; add --html.", 2, as_json)
        if as_html:
            guard(lambda: show_html_command(run_id, workspace, output, as_json), as_json)
            return
        guard(lambda: show_command(run_id, workspace, as_json), as_json)

    @app.command()
    def resume(
        run_id: RunId,
        workspace: Workspace = Path("."),
        yes: YesFlag = False,
        force: Annotated[
            bool,
            typer.Option(
                "--force", help="Resume even if files the unfinished subtasks changed were modified since."
            ),
        ] = False,
        model: ModelName = None,
        max_parallel: MaxParallel = None,
        max_cost: Annotated[
            float | None,
            typer.Option(
                "--max-cost", help="Budget in USD for the whole run, counting what it spent before resuming."
            ),
        ] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Continue a run that crashed, was killed, cancelled or failed; finished subtasks are not run again.
        The run keeps the flags it was started with (model, budget, ...); flags given here replace them."""
        code = guard(
            lambda: resume_command(
                run_id,
                workspace,
                yes=yes,
                force=force,
                as_json=as_json,
                model=model,
                max_parallel=max_parallel,
                max_cost=max_cost,
            ),
            as_json,
        )
        raise typer.Exit(code or 0)

    @app.command()
    def undo(
        run_id: RunId,
        workspace: Workspace = Path("."),
        force: Annotated[
            bool, typer.Option("--force", help="Restore even files that were changed after the run.")
        ] = False,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Only list what would be restored or deleted.")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Put back every file the run changed as it was before the run; delete the files it created."""
        guard(lambda: undo_command(run_id, workspace, force=force, dry_run=dry_run, as_json=as_json), as_json)


# --- the commands --------------------------------------------------------------------------------


def _err(text: str) -> None:
    sys.stderr.write(text.rstrip() + "\n")


def open_store(workspace: Path, must_exist: bool = True):
    """(workspace, Store or None): None when nothing was ever recorded there and that is fine."""
    from runtime.errors import ConfigError
    from runtime.store import STATE_FILE, Store
    from shunter.wiring import check_workspace

    ws = check_workspace(workspace)
    if not (ws / ".shunter" / STATE_FILE).exists():
        if not must_exist:
            return ws, None
        raise ConfigError(
            f"No runs are recorded in {ws}; run `shunter run ...` there first, or pass the right --workspace."
        )
    return ws, Store.open(ws)


def runs_command(workspace: Path, as_json: bool, limit: int) -> None:
    from router.summaries import run_summaries
    from runtime.errors import ConfigError

    if limit < 1:
        raise ConfigError(f"--limit must be at least 1, not {limit}.")
    ws, store = open_store(workspace, must_exist=False)
    rows = []
    if store is not None:  # listing creates nothing
        with store:
            rows = run_summaries(store, limit)
    waiting = _engine_waiting(ws)
    if waiting:
        from shunter.engine.listing import merged

        rows = merged(rows, waiting, limit)
    if as_json:
        print(json.dumps({"runs": rows}))
        return
    if not rows:
        print(f"No runs recorded in {ws} yet.")
        return
    from shunter.render import usd

    for r in rows:
        when = (r["created_at"] or "")[:16].replace("T", " ")
        cost = "-" if r["cost_usd"] is None else usd(r["cost_usd"])
        done = f"{r['subtasks_done']}/{r['subtasks_total']}"
        print(f"{r['run_id']}  {when}  {r['status']:<11} {done:>5}  {cost:>9}  {clip(r['request'], 70)}")


def _engine_waiting(ws: Path) -> list[dict[str, Any]]:
    """The workspace's runs queued on the DBOS engine, when one is configured."""
    from shunter.wiring import settings_for

    settings = settings_for(ws)
    if settings.engine.kind != "dbos" and not settings.engine.url:
        return []  # the local engine: not even an import
    from shunter.engine.listing import waiting_runs

    return waiting_runs(settings, ws)


def show_command(ref: str, workspace: Path, as_json: bool) -> None:
    from router.summaries import run_details
    from runtime.errors import ConfigError

    ws, store = open_store(workspace, must_exist=False)
    try:
        if store is None:
            open_store(workspace)  # says that nothing is recorded there
        with store:
            data = run_details(store, ref)
    except ConfigError:
        # A run enqueued on the engine is in the workspace's store only once a worker takes it.
        queued = [r for r in _engine_waiting(ws) if r["run_id"].startswith(ref)]
        if len(queued) != 1:
            raise
        from shunter.engine.listing import waiting_details

        data = waiting_details(queued[0])
    if as_json:
        print(json.dumps(data, default=str))
        return
    print(show_text(data))


def show_html_command(ref: str, workspace: Path, output: Path | None, as_json: bool) -> None:
    from runtime.errors import ConfigError
    from shunter.report_html import write_report
    from shunter.wiring import settings_for

    ws, store = open_store(workspace)
    if output is not None:
        output = output.expanduser().resolve()
        if output.is_dir():
            raise ConfigError(f"{str(output)!r} is a directory; give -o a file name, e.g. report.html.")
    secrets = settings_for(ws).secret_values()  # a report is made to be shared: no keys in it
    with store:
        try:
            run_id, path = write_report(store, ws, ref, output, secrets)
        except OSError as e:
            raise ConfigError(f"Cannot write the report to {e.filename or output}: {e.strerror}.") from None
    if as_json:
        print(json.dumps({"run_id": run_id, "report": str(path)}))
    else:
        print(path)


def show_text(d: dict[str, Any]) -> str:
    from shunter.progress import _ICONS
    from shunter.render import usd

    usage = d["usage"] or {}
    head = f"Run {d['run_id']} · {d['status']} · {d['created_at']}"
    if usage:
        head += f" · {usage.get('total_tokens', 0):,} tokens · {usd(usage.get('cost_usd'))}"
    lines = [head, f"Request: {d['request']}"]
    if d["parent_run_id"]:
        lines.append(f"Conversation {d['conversation_id']}, following run {d['parent_run_id']}")
    if d["error"]:
        lines.append(f"Error: {d['error']}")
    plan = d["plan"] or {}
    for h in d.get("plans", [])[:-1]:  # a replanned run: each earlier plan, then the current one
        lines += [
            "",
            f"Plan {h['round'] + 1} (replanned because: {clip(h['replanned_because'] or '', 120)})",
        ]
        lines += [
            f"  {_ICONS.get(s['status'], '?')} {s['id']:<4} {s['agent']:<9} {s['status']}"
            for s in h["subtasks"]
        ]
    if d.get("plans"):
        lines += ["", f"Plan {len(d['plans'])} (current)"]
    lines += ["", f"Goal: {plan.get('goal', '(not planned yet)')}"]
    steps = {s["id"]: s for s in plan.get("subtasks", [])}
    for s in d["subtasks"]:
        step = steps.get(s["id"], {})
        after = f" after {', '.join(step['depends_on'])}" if step.get("depends_on") else ""
        secs = f"{s['seconds']:.1f} s" if s["seconds"] is not None else ""
        tokens = f"{(s['usage'] or {}).get('total_tokens', 0):,} tokens" if s["usage"] else ""
        icon = _ICONS.get(s["status"], "?")
        lines.append(f"  {icon} {s['id']:<4} {s['agent']:<9} {s['status']:<10} {secs:>8} {tokens:>14}{after}")
        if step.get("call"):
            from planner.models import Call
            from shunter.render import call_text

            lines.append(f"         → {call_text(Call.model_validate(step['call']))} (no model)")
        summary = s["result"] if s["status"] == "succeeded" else (s["error"] or s["result"])
        if summary:
            lines.append(f"         {clip(summary, 100)}")
    if d["files"]:
        lines += ["", "Files changed:"] + [
            f"  {f['action']:<8} {f['path']} ({f['subtask_id']})" for f in d["files"]
        ]
    if d["undone_at"]:
        lines.append(f"(undone at {d['undone_at']})")
    if d["answer"]:
        lines += ["", "Answer:", d["answer"]]
    return "\n".join(lines)


def clip(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def resume_command(
    ref: str,
    workspace: Path,
    *,
    yes: bool,
    force: bool,
    as_json: bool,
    model: str | None = None,
    max_parallel: int | None = None,
    max_cost: float | None = None,
) -> int:
    import asyncio

    from router.overrides import merge_overrides
    from router.resume import resumable_run
    from shunter.api import prepare
    from shunter.approve import choose_approver
    from shunter.commands import _planning_errors, _print_result, flag_overrides

    ws, store = open_store(workspace)
    with store:
        row = resumable_run(store, ref)
        # The flags the run was started with, under the ones given now.
        overrides = merge_overrides(row["overrides"] or {}, flag_overrides(model, max_parallel, max_cost))
        ctx = prepare(ws, overrides=overrides, approve=choose_approver(yes), run_id=row["id"])
        ctx.store = store
        if not as_json:
            done = sum(1 for s in store.subtasks(row["id"]) if s["status"] == "succeeded")
            _err(
                f"Resuming run {row['id']}: {done} of {len((row['plan'] or {}).get('subtasks', []))} subtasks "
                "already succeeded and are kept; the rest run from their start."
            )
        result = _planning_errors(lambda: asyncio.run(_resume_async(row, ctx, store, force, as_json)))
    return _print_result(result, as_json)


async def _resume_async(row: dict[str, Any], ctx, store, force: bool, as_json: bool):
    from shunter.api import resume
    from shunter.commands import _install_sigint
    from shunter.progress import Progress
    from shunter.wiring import OpenAIProvider

    _install_sigint(ctx)
    steps = [(s["id"], s["agent"]) for s in (row["plan"] or {}).get("subtasks", [])]
    provider = OpenAIProvider(ctx.settings)
    with Progress(ctx.usage, steps, live=None if not as_json else False) as progress:
        for s in store.subtasks(row["id"]):
            if s["status"] == "succeeded" and s["id"] in progress.rows:
                progress.rows[s["id"]].status = "succeeded"
        try:
            return await resume(
                row["id"], ctx=ctx, store=store, model=provider, force=force, listeners=[progress]
            )
        finally:
            await provider.aclose()


def undo_command(ref: str, workspace: Path, *, force: bool, dry_run: bool, as_json: bool) -> None:
    from router.undo import undo
    from shunter.wiring import settings_for

    ws, store = open_store(workspace)
    settings = settings_for(ws)
    with store:
        report = undo(store, ref, ws, protected=settings.tools.protected_paths, force=force, dry_run=dry_run)
    if as_json:
        print(json.dumps(report))
        return
    actions = report["actions"]
    if not actions:
        print(f"Run {report['run_id']} changed no files; there is nothing to undo.")
        return
    verbs = {
        "restore": ("Would restore", "Restored"),
        "delete": ("Would delete", "Deleted"),
        "none": ("Already as before:", "Already as before:"),
    }
    for a in actions:
        print(f"{verbs[a['action']][0 if dry_run else 1]} {a['path']}")
    if dry_run and report["conflicts"]:
        print(f"Changed after the run, so undo will refuse without --force: {', '.join(report['conflicts'])}")
    if not dry_run:
        print(f"Run {report['run_id']} undone.")
