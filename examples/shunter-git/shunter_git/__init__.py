"""A complete Shunter plugin: read-only git tools and a `git` specialist that uses them."""

from __future__ import annotations

import subprocess

from agents import Agent
from runtime.context import RunContext
from tools import tool
from tools.proc import git_safe_env, scrubbed_env


def _git(ctx: RunContext, *args: str) -> str:
    # An argument list, never a shell string: nothing the model sends is interpreted by bash.
    # --no-pager and -c core.pager=cat keep git from waiting on a terminal. These commands
    # run outside any sandbox on a repository a command may have changed, so git must not run
    # programs named in its config: no fsmonitor, no hooks (git_safe_env also sets both).
    proc = subprocess.run(
        [
            "git",
            "--no-pager",
            "-c",
            "core.pager=cat",
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.hooksPath=/dev/null",
            *args,
        ],
        cwd=ctx.workspace,
        env=git_safe_env(scrubbed_env(secrets=ctx.settings.secret_values())),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if proc.returncode != 0:
        return f"git {args[0]} failed: {proc.stderr.strip() or proc.stdout.strip()}"
    return proc.stdout or "(no output)"


def _safe_ref(ref: str) -> str:
    if ref.startswith("-"):
        raise ValueError(f"{ref!r} is not a revision; options are not accepted here.")
    return ref


@tool
def git_status(ctx: RunContext) -> str:
    """Show the working tree status (short format, with the branch)."""
    return _git(ctx, "status", "--short", "--branch")


@tool
def git_log(ctx: RunContext, max_count: int = 20, path: str | None = None) -> str:
    """Show recent commits, one line each.

    Args:
        max_count: How many commits to show (at most 200).
        path: Only commits touching this path.
    """
    args = ["log", "--oneline", "--decorate", f"--max-count={max(1, min(max_count, 200))}"]
    return _git(ctx, *args, *(["--", path] if path else []))


@tool
def git_diff(ctx: RunContext, revision: str | None = None, path: str | None = None) -> str:
    """Show changes: the working tree against the index, or against a revision.

    Args:
        revision: Compare against this revision (e.g. HEAD~1); omit for unstaged changes.
        path: Limit the diff to this path.
    """
    args = ["diff", "--no-ext-diff", "--no-textconv", *([_safe_ref(revision)] if revision else [])]
    return _git(ctx, *args, *(["--", path] if path else []))


@tool
def git_show(ctx: RunContext, revision: str = "HEAD") -> str:
    """Show one commit: message and patch.

    Args:
        revision: The commit to show.
    """
    return _git(ctx, "show", "--no-ext-diff", "--no-textconv", "--stat", "--patch", _safe_ref(revision))


TOOLS = [git_status, git_log, git_diff, git_show]

GIT = Agent(
    name="git",
    description="Answers questions about the repository's history and changes with read-only git commands (status, log, diff, show). Cannot change anything.",
    tools=tuple(TOOLS),
    prompt_template=(
        'You are the "$name" specialist of Shunter. $description\n'
        "You work on one subtask in the repository at $workspace. Your tools: $tools.\n"
        "Answer with the facts you found (commits, files, authors), concisely.\n\n$rules\n"
    ),
)
