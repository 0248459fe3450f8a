"""The shell tool: `run_command` runs one bash command line in the workspace.

Before it runs, the command policy decides: `deny` refuses it outright, `ask` needs the
user's approval, `allow` (provably read-only) runs at once. It runs in the bubblewrap sandbox
when one is available (or required), with a scrubbed environment, a timeout and an output cap.
Git hooks, core.fsmonitor and commit signing are disabled for every command Shunter runs
(tools.proc.git_safe_env), so a `git commit` the user approves runs no repository code.
"""

from __future__ import annotations

import shutil
from typing import Any

from runtime.context import ApprovalRequest, RunContext
from runtime.errors import ToolDenied, ToolFailed
from tools import gitwatch
from tools.base import tool
from tools.policy import check_command
from tools.proc import ProcResult, git_safe_env, run_process, scrubbed_env
from tools.sandbox import SandboxInfo, absent_redirects, probe_sandbox, remove_new_redirects, sandbox_argv


def _sandbox(ctx: RunContext) -> SandboxInfo:
    """The sandbox commands of this run get, honouring settings.tools.sandbox."""
    if ctx.settings.tools.sandbox == "none":
        return SandboxInfo("none", "the sandbox is turned off (tools.sandbox = 'none').")
    info = ctx.sandbox if isinstance(ctx.sandbox, SandboxInfo) else probe_sandbox()
    if ctx.settings.tools.sandbox == "require" and info.kind != "bwrap":
        raise ToolDenied(
            f"Commands must run in a sandbox (tools.sandbox = 'require') but none is available: {info.detail} "
            "Install bubblewrap or set tools.sandbox to 'auto'; the command was not run."
        )
    return info


def _read_only_guard(ctx: RunContext, verdict: Any) -> None:
    # A subtask planned read-only may run only what the policy proves read-only.
    if ctx.read_only and verdict.decision != "allow":
        raise ToolDenied(
            f"This subtask was planned read-only, so only commands the policy proves read-only may run "
            f"({verdict.reason}). It was not run."
        )


def _approval(ctx: RunContext, args: dict[str, Any]) -> ApprovalRequest | None:
    command = args["command"]
    verdict = check_command(command, allow_network=ctx.settings.tools.shell_network)
    if verdict.decision == "deny":
        raise ToolDenied(f"{verdict.reason} It was not run.")
    _read_only_guard(ctx, verdict)
    _sandbox(ctx)  # refuse before asking when a required sandbox is missing
    if verdict.decision == "ask":
        return ApprovalRequest(
            kind="command",
            tool="run_command",
            summary=command,
            detail=verdict.reason,
            subtask_id=ctx.subtask_id,
            agent=ctx.agent,
        )
    return None


@tool(effect="execute", approval=_approval, read_only_mode=True)
async def run_command(ctx: RunContext, command: str) -> str:
    """Run a bash command line in the workspace and return its exit code, stdout and stderr.

    Read-only commands (ls, cat, grep, find, git status/log/diff ...) run at once; others
    need the user's approval and destructive ones are refused. Commands run in a sandbox
    where only the workspace is writable and the network is usually off.

    Args:
        command: The bash command line, for example `ls -la src` or `pytest -q tests/test_x.py`.
    """
    # The policy is checked here too, so calling the tool without its approval hook cannot
    # run a denied command.
    settings = ctx.settings.tools
    verdict = check_command(command, allow_network=settings.shell_network)
    if verdict.decision == "deny":
        raise ToolDenied(f"{verdict.reason} It was not run.")
    _read_only_guard(ctx, verdict)
    info = _sandbox(ctx)
    argv = [shutil.which("bash") or "/bin/bash", "-c", command]
    if info.kind == "bwrap":
        argv = sandbox_argv(
            argv, workspace=ctx.workspace, network=settings.shell_network, protected=settings.protected_paths
        )
    watched = absent_redirects(ctx.workspace)
    git_before = gitwatch.snapshot(ctx.workspace)
    try:
        result = await run_process(
            argv,
            cwd=ctx.workspace,
            env=command_env(ctx),
            timeout_s=settings.shell_timeout_s,
            max_output_bytes=settings.shell_max_output_bytes,
            cancel=ctx.cancel,
        )
    except OSError as e:
        raise ToolFailed(
            f"The command could not be started: {e.strerror or e} ({e.filename or argv[0]}); check that the workspace exists."
        ) from None
    removed = remove_new_redirects(watched)
    ctx.emit("shell.run", sandbox=info.kind, exit_code=result.exit_code, seconds=result.duration_s)
    text = format_result(result, info, network=settings.shell_network, timeout_s=settings.shell_timeout_s,
                         limit=settings.shell_max_output_bytes)  # fmt: skip
    risky = gitwatch.new_risky_settings(ctx.workspace, git_before)
    if risky:
        ctx.emit("policy.git_config", level="WARNING", settings=risky)
        text += (
            f"\nWarning: the command added git settings that run programs ({'; '.join(risky)}). Shunter's "
            "own git commands ignore them, but your git would obey them: the user must review .git/config."
        )
    if removed:
        text += (
            f"\nShunter removed {', '.join(removed)}, which the command created: it would make git read "
            "configuration from outside the protected .git folder."
        )
    if result.exit_code != 0 or result.timed_out:
        # The same text either way; a compiled subtask that gets it fails, so its dependants do not
        # build on a failed command.
        raise ToolFailed(text)
    return text


def command_env(ctx: RunContext) -> dict[str, str]:
    """The environment of every command: the allowlist plus settings.tools.env_passthrough,
    without the run's secrets, and with git's hooks, fsmonitor and signing turned off."""
    passthrough = getattr(ctx.settings.tools, "env_passthrough", None) or []
    return git_safe_env(scrubbed_env(secrets=ctx.settings.secret_values(), passthrough=passthrough))


def format_result(
    result: ProcResult, info: SandboxInfo, *, network: bool, timeout_s: float, limit: int
) -> str:
    """The text the model sees: exit code and where it ran, stdout, stderr, and a plain line
    for a timeout, a cancellation or cut output."""
    where = f"sandbox: bwrap, network {'on' if network else 'off'}" if info.kind == "bwrap" else "no sandbox"
    lines = [f"exit code: {result.exit_code} ({where}, {result.duration_s:g} s)"]
    if result.timed_out:
        lines.append(
            f"The command timed out after {timeout_s:g} s and was stopped (its whole process group was killed)."
        )
    if result.cancelled:
        lines.append("The command was cancelled and its processes were killed.")
    if result.truncated:
        lines.append(f"The output was longer than {limit:,} bytes; everything after that was discarded.")
    lines.append("stdout:" if result.stdout else "stdout: (empty)")
    if result.stdout:
        lines.append(result.stdout.rstrip("\n"))
    lines.append("stderr:" if result.stderr else "stderr: (empty)")
    if result.stderr:
        lines.append(result.stderr.rstrip("\n"))
    return "\n".join(lines)


TOOLS = [run_command]
