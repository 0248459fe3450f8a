"""The shell tool and its process runner: policy before running, process-group kills on
timeout and cancellation, scrubbed environment, capped output, closed stdin."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.cancel import CancellationToken
from runtime.config import Settings, ToolSettings
from runtime.context import RunContext, approve_all, deny_all
from runtime.errors import RunCancelled
from tools.proc import git_safe_env, run_process, scrubbed_env
from tools.registry import aexecute_tool, execute_tool
from tools.sandbox import SandboxInfo
from tools.shell import TOOLS, run_command

ROOT = Path(__file__).resolve().parents[1]


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:3]
    except (FileNotFoundError, ProcessLookupError):
        return "gone"


def _alive(pid: int) -> bool:
    """A pid that still runs; a zombie (killed, not yet reaped by its new parent) counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _context(workspace: Path, approve=approve_all, **tools) -> RunContext:
    settings = Settings(tools=ToolSettings(**{"sandbox": "none", **tools}))
    return RunContext.create(workspace, settings, approve=approve)


def _events(ctx: RunContext, name: str) -> list[dict]:
    path = ctx.state_dir / "logs" / "events.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["event"] == name]


async def _assert_dead(pids: list[int]) -> None:
    """SIGKILL is sent at once, but a busy machine may take a moment to finish the processes;
    there is no event for a non-child's death to await, so look for up to two seconds."""
    deadline = time.monotonic() + 2
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert not any(_alive(p) for p in pids), [(p, _state(p)) for p in pids]


async def _read_fifo(path: Path) -> str:
    # Opening a FIFO blocks until the writer opens it: do that in a thread and await it.
    return await asyncio.to_thread(path.read_text)


# ---- the process runner


async def test_timeout_kills_the_whole_process_group(tmp_path):
    started = time.monotonic()
    result = await run_process(
        ["bash", "-c", "sleep 30 & echo $!; sleep 30 & echo $!; echo $$; wait"],
        cwd=tmp_path,
        env=scrubbed_env(),
        timeout_s=0.5,
        max_output_bytes=10_000,
    )
    pids = [int(p) for p in result.stdout.split()]
    assert result.timed_out and not result.cancelled
    assert len(pids) == 3
    assert time.monotonic() - started < 5
    await _assert_dead(pids)


async def test_background_children_do_not_outlive_a_finished_command(tmp_path):
    result = await run_process(
        ["bash", "-c", "sleep 30 & echo $!"],
        cwd=tmp_path,
        env=scrubbed_env(),
        timeout_s=10,
        max_output_bytes=1000,
    )
    assert result.exit_code == 0 and not result.timed_out
    await _assert_dead([int(result.stdout)])


async def test_cancellation_through_the_token_kills_the_tree_quickly(tmp_path):
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    token = CancellationToken()
    task = asyncio.ensure_future(
        run_process(
            ["bash", "-c", f"sleep 30 & echo $! $$ > {fifo}; wait"],
            cwd=tmp_path,
            env=scrubbed_env(),
            timeout_s=60,
            max_output_bytes=1000,
            cancel=token,
        )
    )
    pids = [int(p) for p in (await _read_fifo(fifo)).split()]
    started = time.monotonic()
    token.cancel("test")
    result = await task
    assert result.cancelled and not result.timed_out
    assert time.monotonic() - started < 2
    await _assert_dead(pids)


async def test_cancelling_the_awaiting_task_kills_the_tree(tmp_path):
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    token = CancellationToken()
    guarded = asyncio.ensure_future(
        token.guard(
            run_process(
                ["bash", "-c", f"sleep 30 & echo $! $$ > {fifo}; wait"],
                cwd=tmp_path,
                env=scrubbed_env(),
                timeout_s=60,
                max_output_bytes=1000,
            )
        )
    )
    pids = [int(p) for p in (await _read_fifo(fifo)).split()]
    token.cancel("user pressed ctrl-c")  # guard() cancels the inner task, as the registry does
    with pytest.raises(RunCancelled):
        await guarded
    await _assert_dead(pids)


_RUNNER = """
import asyncio, pathlib, sys
from tools.proc import run_process, scrubbed_env
from tools.sandbox import sandbox_argv
argv = ["bash", "-c", sys.argv[1]]
if sys.argv[2:] == ["--bwrap"]:
    argv = sandbox_argv(argv, workspace=pathlib.Path.cwd(), network=False)
asyncio.run(run_process(argv, cwd=".", env=scrubbed_env(), timeout_s=60, max_output_bytes=1000))
"""


def start_runner(workspace: Path, command: str, *flags: str) -> subprocess.Popen:
    """A process that runs `command` through run_process, as Shunter does, to be killed."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", _RUNNER, command, *flags], cwd=workspace, env=env)


async def test_a_command_dies_with_shunter_even_on_kill_9(tmp_path):
    # Nothing in Shunter runs after SIGKILL, so its children must be tied to it by the kernel
    # (the guard's PR_SET_PDEATHSIG): otherwise `sleep 4 && write` finishes after the kill, and a
    # resumed run repeats a write that was never recorded.
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    command = f"sleep 30 & echo $! $$ > {fifo}; wait; echo late > late.txt"
    shunter = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, command], cwd=tmp_path, env=os.environ | {"PYTHONPATH": str(ROOT)}
    )
    pids = [int(p) for p in (await _read_fifo(fifo)).split()]
    shunter.kill()
    assert shunter.wait(timeout=10) == -signal.SIGKILL
    await _assert_dead(pids)
    await asyncio.sleep(0.2)
    assert not (tmp_path / "late.txt").exists()


async def test_exit_codes_and_signals_come_through_the_guard(tmp_path):
    async def code(command: str) -> int | None:
        result = await run_process(["bash", "-c", command], cwd=tmp_path, env=scrubbed_env(), timeout_s=10,
                                   max_output_bytes=100)  # fmt: skip
        return result.exit_code

    assert await code("exit 3") == 3
    assert await code("kill -TERM $$") == -signal.SIGTERM  # as without the guard: killed by a signal
    assert await code("true") == 0


async def test_output_is_capped_and_marked(tmp_path):
    result = await run_process(
        ["bash", "-c", "head -c 50000 /dev/zero | tr '\\0' x; echo done >&2"],
        cwd=tmp_path,
        env=scrubbed_env(),
        timeout_s=10,
        max_output_bytes=1000,
    )
    assert result.truncated
    assert len(result.stdout) + len(result.stderr) == 1000
    assert result.exit_code == 0  # the child was drained, never blocked on a full pipe


async def test_stdin_is_closed(tmp_path):
    result = await run_process(["cat"], cwd=tmp_path, env=scrubbed_env(), timeout_s=10, max_output_bytes=100)
    assert result.exit_code == 0 and result.stdout == "" and not result.timed_out
    assert result.duration_s < 5


def test_scrubbed_env_keeps_only_the_allowlist():
    env = scrubbed_env(
        {
            "PATH": "/usr/bin",
            "HOME": "/home/u",
            "LANG": "C.UTF-8",
            "LC_ALL": "C",
            "TERM": "xterm",
            "VIRTUAL_ENV": "/venv",
            "OPENAI_API_KEY": "sk-test",
            "GITHUB_PAT": "x",
            "GH_PAT": "x",
            "MYSQL_PWD": "x",
            "CI_JOB_JWT": "x",
            "DOCKER_PASS": "x",
            "STRIPE_SK": "x",
            "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x",
            "REDIS_URL": "redis://:pw@cache:6379",
            "AWS_ACCESS_KEY_ID": "x",
            "BASH_ENV": "/tmp/evil",
            "BASH_FUNC_ls%%": "() { rm -rf /; }",
            "LD_PRELOAD": "/tmp/x.so",
            "SSH_AUTH_SOCK": "/tmp/agent",
            "EDITOR": "vim",
            "GIT_CONFIG_COUNT": "1",
        }
    )
    assert env == {"PATH": "/usr/bin", "HOME": "/home/u", "LANG": "C.UTF-8", "LC_ALL": "C", "TERM": "xterm",
                   "VIRTUAL_ENV": "/venv"}  # fmt: skip


def test_scrubbed_env_passes_named_variables_but_never_shell_hooks_or_known_secrets():
    base = {
        "PATH": "/bin",
        "EDITOR": "vim",
        "BASH_ENV": "/tmp/evil",
        "LEAKY": "has the-run-secret-value",
        "X": "1",
    }
    env = scrubbed_env(base, secrets=["the-run-secret-value"], passthrough=["EDITOR", "BASH_ENV", "LEAKY"])
    assert env == {"PATH": "/bin", "EDITOR": "vim"}


def test_git_safe_env_turns_off_repository_programs_and_prompts():
    env = git_safe_env({"PATH": "/bin", "GIT_CONFIG_KEY_7": "core.fsmonitor", "GIT_CONFIG_VALUE_7": "evil"})
    count = int(env["GIT_CONFIG_COUNT"])
    overrides = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(count)}
    assert overrides["core.fsmonitor"] == "false" and overrides["core.hooksPath"] == "/dev/null"
    assert overrides["core.pager"] == "cat" and overrides["log.showSignature"] == "false"
    assert (env["GIT_EDITOR"], env["GIT_PAGER"], env["GIT_TERMINAL_PROMPT"]) == ("true", "cat", "0")
    assert env["PATH"] == "/bin" and "GIT_CONFIG_KEY_7" not in env


# ---- git in the workspace runs no repository code

_GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip


def _malicious_repo(workspace: Path) -> None:
    """A repository whose config and hooks would touch FSMONITOR_RAN / HOOK_RAN if git obeyed them."""
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    with (workspace / ".git" / "config").open("a") as f:
        f.write('[core]\n\tfsmonitor = "touch FSMONITOR_RAN; false"\n')
    hook = workspace / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\ntouch HOOK_RAN\n")
    hook.chmod(0o755)
    (workspace / "a.txt").write_text("a\n")


def test_git_status_does_not_run_a_configured_fsmonitor(workspace):
    _malicious_repo(workspace)
    # Without the override git obeys the config: the test would prove nothing otherwise.
    subprocess.run(["git", "status"], cwd=workspace, capture_output=True, check=False)
    assert (workspace / "FSMONITOR_RAN").exists()
    (workspace / "FSMONITOR_RAN").unlink()
    out = execute_tool("run_command", {"command": "git status --short"}, _context(workspace))
    assert out.startswith("exit code: 0") and "a.txt" in out
    assert not (workspace / "FSMONITOR_RAN").exists()


def test_an_approved_git_commit_runs_no_hook(workspace, monkeypatch):
    _malicious_repo(workspace)
    for name, value in _GIT_ID.items():
        monkeypatch.setenv(name, value)
    ctx = _context(workspace, env_passthrough=list(_GIT_ID))
    out = execute_tool("run_command", {"command": "git add a.txt && git commit -qm first"}, ctx)
    assert out.startswith("exit code: 0"), out
    assert not (workspace / "HOOK_RAN").exists() and not (workspace / "FSMONITOR_RAN").exists()
    log = subprocess.run(["git", "log", "--format=%an %s"], cwd=workspace, capture_output=True, text=True)
    assert log.stdout.strip() == "t first"


def test_the_git_plugin_runs_no_repository_code(workspace):
    spec = importlib.util.spec_from_file_location(
        "shunter_git_under_test", ROOT / "examples" / "shunter-git" / "shunter_git" / "__init__.py"
    )
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    _malicious_repo(workspace)
    out = plugin._git(_context(workspace), "status", "--short")
    assert "a.txt" in out
    assert not (workspace / "FSMONITOR_RAN").exists()


# ---- the tool through the registry


def test_run_command_is_declared_as_an_execute_tool():
    assert TOOLS == [run_command]
    assert run_command.name == "run_command" and run_command.effect == "execute" and not run_command.read_only
    assert list(run_command.schema()["function"]["parameters"]["properties"]) == ["command"]


def test_a_read_only_command_runs_without_asking(workspace):
    (workspace / "hello.txt").write_text("hi there\n")
    ctx = _context(workspace, approve=deny_all)  # nobody would approve anything
    out = execute_tool("run_command", {"command": "cat hello.txt"}, ctx)
    assert out.startswith("exit code: 0")
    assert "hi there" in out
    [event] = _events(ctx, "shell.run")
    assert event["data"]["sandbox"] == "none" and event["data"]["exit_code"] == 0


def test_a_denied_command_never_runs(workspace):
    ctx = _context(workspace)  # even with everything approved
    out = execute_tool("run_command", {"command": "touch marker && rm -rf /"}, ctx)
    assert "refused" in out and "It was not run." in out and "rm -rf /" in out
    assert not (workspace / "marker").exists()
    assert not _events(ctx, "shell.run")


def test_an_unapproved_command_never_runs(workspace):
    ctx = _context(workspace, approve=deny_all)
    out = execute_tool("run_command", {"command": "touch marker"}, ctx)
    assert "not approved" in out
    assert not (workspace / "marker").exists()


def test_the_approval_request_carries_the_command_and_the_reason(workspace):
    seen = []

    async def approve(request):
        seen.append(request)
        return True

    ctx = _context(workspace, approve=approve).for_subtask("t1", "shell")
    out = execute_tool("run_command", {"command": "touch marker"}, ctx)
    assert out.startswith("exit code: 0")
    assert (workspace / "marker").exists()
    [request] = seen
    assert (request.kind, request.tool, request.summary) == ("command", "run_command", "touch marker")
    assert "touch" in request.detail
    assert (request.subtask_id, request.agent) == ("t1", "shell")


def test_the_tool_output_shows_exit_code_stdout_and_stderr(workspace):
    ctx = _context(workspace)
    out = execute_tool("run_command", {"command": "echo out; echo err >&2; exit 3"}, ctx)
    lines = out.splitlines()
    assert lines[0].startswith("exit code: 3 (no sandbox")
    assert lines[1:] == ["stdout:", "out", "stderr:", "err"]


def test_the_tool_gives_commands_only_allowed_and_passed_through_variables(workspace, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    monkeypatch.setenv("GITHUB_PAT", "ghp-should-not-leak")
    monkeypatch.setenv("SHUNTER_TEST_VISIBLE", "yes")
    monkeypatch.setenv("SHUNTER_TEST_HIDDEN", "no")
    ctx = _context(workspace, env_passthrough=["SHUNTER_TEST_VISIBLE"])
    out = execute_tool("run_command", {"command": "env"}, ctx)
    assert "SHUNTER_TEST_VISIBLE=yes" in out and "GIT_CONFIG_COUNT=" in out
    assert "SHUNTER_TEST_HIDDEN" not in out
    assert "sk-should-not-leak" not in out and "ghp-should-not-leak" not in out


def test_the_tool_reports_a_timeout(workspace):
    ctx = _context(workspace, shell_timeout_s=0.3)
    out = execute_tool("run_command", {"command": "sleep 30"}, ctx)
    assert "timed out after 0.3 s" in out


def test_the_tool_marks_cut_output(workspace):
    ctx = _context(workspace, shell_max_output_bytes=100)
    out = execute_tool("run_command", {"command": "seq 1 10000"}, ctx)
    assert "longer than 100 bytes" in out


def test_the_tool_returns_at_once_when_the_command_reads_stdin(workspace):
    ctx = _context(workspace, shell_timeout_s=20)
    started = time.monotonic()
    out = execute_tool("run_command", {"command": "cat"}, ctx)
    assert out.startswith("exit code: 0")
    assert time.monotonic() - started < 5


async def test_cancelling_the_run_stops_a_running_command(workspace):
    ctx = _context(workspace)
    fifo = workspace / "started"
    os.mkfifo(fifo)
    call = asyncio.ensure_future(
        aexecute_tool("run_command", {"command": f"sleep 30 & echo $! $$ > {fifo}; wait"}, ctx)
    )
    pids = [int(p) for p in (await _read_fifo(fifo)).split()]
    started = time.monotonic()
    ctx.cancel.cancel("test")
    with pytest.raises(RunCancelled):
        await call
    assert time.monotonic() - started < 2
    assert len(pids) == 2
    await _assert_dead(pids)


def test_a_required_sandbox_that_is_missing_refuses_with_a_clear_sentence(workspace):
    ctx = _context(workspace, sandbox="require")
    ctx.sandbox = SandboxInfo("none", "bubblewrap (bwrap) is not installed.")
    out = execute_tool("run_command", {"command": "ls"}, ctx)
    assert "refused" in out and "tools.sandbox = 'require'" in out and "not installed" in out


def test_a_missing_workspace_is_reported_as_text(tmp_path):
    ctx = _context(tmp_path / "ws")
    ctx.workspace = tmp_path / "gone"
    out = execute_tool("run_command", {"command": "ls"}, ctx)
    assert out.startswith("The command could not be started")


def test_git_settings_that_run_programs_written_by_a_command_are_reported(tmp_path):
    from runtime.config import Settings
    from runtime.context import RunContext, approve_all
    from tools.gitwatch import risky_settings
    from tools.registry import execute_tool

    assert risky_settings('[core]\n\tfsmonitor = "touch x"\n[alias]\n\tst = status\n\tx = !sh -c id\n') == {
        "core.fsmonitor",
        "alias.x",
    }
    assert risky_settings("[core]\n\tbare = false\n\tfilemode = true\n") == set()
    ctx = RunContext.create(tmp_path, Settings(), approve=approve_all)
    out = execute_tool(
        "run_command",
        {"command": "git init -q . && git config core.fsmonitor 'touch planted' && git config user.name t"},
        ctx,
    )
    assert "core.fsmonitor" in out and "must review .git/config" in out and "user.name" not in out
