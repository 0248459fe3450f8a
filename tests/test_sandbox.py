"""The bubblewrap sandbox: only the workspace is writable, protected paths stay read-only,
root cannot remount, and there is no network unless it is allowed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from runtime.config import Settings, ToolSettings
from runtime.context import RunContext, approve_all
from tests.test_shell import start_runner
from tools import sandbox as sandbox_module
from tools.proc import run_process, scrubbed_env
from tools.registry import execute_tool
from tools.sandbox import SandboxInfo, probe_sandbox, sandbox_argv

HAVE_BWRAP = probe_sandbox().kind == "bwrap"
needs_bwrap = pytest.mark.skipif(
    not HAVE_BWRAP, reason=f"no working bubblewrap here: {probe_sandbox().detail}"
)


async def _run_sandboxed(workspace: Path, script: str, *, network: bool = False):
    argv = sandbox_argv(["bash", "-c", script], workspace=workspace, network=network)
    return await run_process(argv, cwd=workspace, env=scrubbed_env(), timeout_s=30, max_output_bytes=100_000)


def _running(marker: str) -> list[int]:
    """Pids of live processes whose command line holds `marker` (host pids: the sandbox's own
    numbering is another namespace)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError):
            continue
        if marker in cmdline and state not in ("Z", "X"):
            found.append(int(proc.name))
    return found


@needs_bwrap
async def test_a_sandboxed_command_dies_with_shunter_even_on_kill_9(tmp_path):
    # bwrap's --die-with-parent alone loses a race: killed while bwrap starts, its sandbox
    # lives on. The guard kills everything below it, the sandbox's new session included.
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    shunter = start_runner(
        tmp_path, f"sleep 31.25 & echo go > {fifo}; sleep 1; echo late > late.txt", "--bwrap"
    )
    await asyncio.to_thread(fifo.read_text)
    assert _running("sleep 31.25")
    shunter.kill()
    assert shunter.wait(timeout=10) == -signal.SIGKILL
    deadline = time.monotonic() + 3
    while _running("sleep 31.25") and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not _running("sleep 31.25")
    await asyncio.sleep(1.5)
    assert not (tmp_path / "late.txt").exists()


# ---- the command line (no bwrap needed)


def test_sandbox_argv_isolates_everything_but_the_workspace(tmp_path):
    argv = sandbox_argv(["bash", "-c", "ls"], workspace=tmp_path, network=False, bwrap="/usr/bin/bwrap")
    ws = str(tmp_path.resolve())
    assert argv[0] == "/usr/bin/bwrap"
    joined = " ".join(argv)
    for part in ("--ro-bind / /", "--dev /dev", "--proc /proc", "--tmpfs /tmp", "--unshare-all", "--cap-drop ALL",
                 "--new-session", "--die-with-parent", f"--bind {ws} {ws}", f"--chdir {ws}"):  # fmt: skip
        assert part in joined
    assert "--share-net" not in argv
    # /tmp is replaced before the workspace is bound, so a workspace under /tmp stays visible.
    assert argv.index("--tmpfs") < argv.index("--bind")
    assert argv[-4:] == ["--", "bash", "-c", "ls"]


def test_sandbox_argv_shares_the_network_only_when_allowed(tmp_path):
    assert "--share-net" in sandbox_argv(["true"], workspace=tmp_path, network=True)
    assert "--share-net" not in sandbox_argv(["true"], workspace=tmp_path, network=False)


def test_protected_paths_that_exist_inside_the_workspace_are_bound_read_only(tmp_path):
    ws = tmp_path / "ws"
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".git" / "config").write_text("[core]\n")
    (tmp_path / "elsewhere").mkdir()
    (ws / ".shunter").symlink_to(tmp_path / "elsewhere")  # points out of the workspace
    argv = sandbox_argv(
        ["true"], workspace=ws, network=False, protected=[".git/hooks", ".git/config", ".shunter", ".env"]
    )
    ro = [argv[i + 1] for i, a in enumerate(argv) if a == "--ro-bind" and argv[i + 1].startswith(str(ws))]
    assert ro == [str(ws / ".git" / "hooks"), str(ws / ".git" / "config")]


def _binds(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 2] for i, a in enumerate(argv) if a == flag]


def test_git_and_shunter_are_pinned_before_their_leaves_are_bound_read_only(tmp_path):
    ws = tmp_path / "ws"
    for rel in (".git/info", ".git/modules/sub", ".shunter"):
        (ws / rel).mkdir(parents=True)
    for rel in (".git/config", ".git/config.worktree", ".git/commondir"):
        (ws / rel).write_text("")
    argv = sandbox_argv(["true"], workspace=ws, network=False, homes=[])
    git, shunter = str(ws / ".git"), str(ws / ".shunter")
    assert _binds(argv, "--bind") == [str(ws), git, shunter]
    # .git had no hooks folder: it was created so it could be bound read-only.
    assert (ws / ".git" / "hooks").is_dir()
    ro = _binds(argv, "--ro-bind")
    for rel in (".git/hooks", ".git/config", ".git/config.worktree", ".git/commondir", ".git/info", ".git/modules",
                ".shunter"):  # fmt: skip
        assert str(ws / rel) in ro
        assert argv.index(str(ws / rel)) > argv.index(git)


def test_homes_are_hidden_before_the_workspace_is_bound(tmp_path):
    home = tmp_path / "home"
    ws = home / "ws"
    ws.mkdir(parents=True)
    argv = sandbox_argv(["true"], workspace=ws, network=False, homes=[home])
    tmpfs = [argv[i + 1] for i, a in enumerate(argv) if a == "--tmpfs"]
    assert tmpfs == ["/tmp", str(home)]
    assert argv.index(str(home)) < argv.index("--bind")
    assert sandbox_module.Path("/root").resolve() in sandbox_module.home_dirs() or not Path("/root").is_dir()


def test_shadow_files_read_as_dev_null(tmp_path):
    argv = sandbox_argv(["true"], workspace=tmp_path, network=False)
    hidden = [argv[i + 2] for i, a in enumerate(argv) if a == "--ro-bind" and argv[i + 1] == "/dev/null"]
    expected = [p for p in ("/etc/shadow", "/etc/gshadow") if Path(p).is_file()]
    assert set(expected) <= set(hidden)


def test_sandbox_info_is_a_frozen_dataclass_with_a_dict_form():
    info = SandboxInfo("none", "why")
    assert info.to_dict() == {"kind": "none", "detail": "why"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.kind = "bwrap"  # type: ignore[misc]


def test_probe_is_cached_and_reports_a_missing_bwrap_clearly(monkeypatch):
    assert probe_sandbox() is probe_sandbox()
    probe_sandbox.cache_clear()
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    try:
        info = probe_sandbox()
        assert info.kind == "none"
        assert "not installed" in info.detail and "without an OS sandbox" in info.detail
    finally:
        monkeypatch.undo()
        probe_sandbox.cache_clear()
    assert probe_sandbox().kind == ("bwrap" if HAVE_BWRAP else "none")


def test_probe_reports_a_bwrap_that_fails(monkeypatch, tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    probe_sandbox.cache_clear()
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: str(fake))
    try:
        info = probe_sandbox()
        assert info.kind == "none"
        assert "No permissions to create new namespace" in info.detail
    finally:
        monkeypatch.undo()
        probe_sandbox.cache_clear()


# ---- the sandbox itself


@needs_bwrap
async def test_writes_inside_the_workspace_succeed(workspace):
    result = await _run_sandboxed(workspace, "echo hi > inside.txt && cat inside.txt")
    assert result.exit_code == 0, result.stderr
    assert (workspace / "inside.txt").read_text() == "hi\n"


@needs_bwrap
async def test_writes_outside_the_workspace_fail(workspace, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    result = await _run_sandboxed(workspace, f"touch /usr/shunter-test; echo $?; touch {outside}/x; echo $?")
    first, _second = result.stdout.split()
    assert first != "0" and "Read-only file system" in result.stderr
    # The host's /tmp is replaced by a private one, so even a write that "works" there is lost.
    assert not (outside / "x").exists()
    assert not Path("/usr/shunter-test").exists()


@needs_bwrap
async def test_root_cannot_remount_the_filesystem_writable(workspace):
    result = await _run_sandboxed(
        workspace, "mount -o remount,rw /; echo $?; touch /etc/shunter-test; echo $?"
    )
    mount_rc, touch_rc = result.stdout.split()
    assert mount_rc != "0" and touch_rc != "0"
    assert not Path("/etc/shunter-test").exists()


@needs_bwrap
async def test_protected_paths_stay_read_only(workspace):
    (workspace / ".git" / "hooks").mkdir(parents=True)
    result = await _run_sandboxed(
        workspace, "echo evil > .git/hooks/pre-commit; echo $?; echo ok > src.txt; echo $?"
    )
    hook_rc, src_rc = result.stdout.split()
    assert hook_rc != "0" and src_rc == "0"
    assert not (workspace / ".git" / "hooks" / "pre-commit").exists()


@needs_bwrap
async def test_no_network_unless_allowed():
    connected = asyncio.Event()

    async def on_connect(reader, writer):
        connected.set()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = (
        f"{sys.executable} -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)\""
    )
    ws = Path.cwd()
    try:
        blocked = await _run_sandboxed(ws, client, network=False)
        assert blocked.exit_code != 0 and "Connection refused" in blocked.stderr
        assert not connected.is_set()
        allowed = await _run_sandboxed(ws, client, network=True)
        assert allowed.exit_code == 0, allowed.stderr
        await asyncio.wait_for(connected.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()


@needs_bwrap
def test_the_tool_runs_commands_in_the_sandbox_and_says_so(workspace):
    ctx = RunContext.create(workspace, Settings(tools=ToolSettings(sandbox="require")), approve=approve_all)
    out = execute_tool(
        "run_command", {"command": "touch made.txt ../lost.txt; touch /opt/nope; echo done"}, ctx
    )
    assert out.startswith("exit code: 0 (sandbox: bwrap, network off")
    assert "Read-only file system" in out
    assert (workspace / "made.txt").exists()
    assert not (workspace.parent / "lost.txt").exists()
    events = [json.loads(line) for line in (ctx.state_dir / "logs" / "events.jsonl").read_text().splitlines()]
    [run] = [e for e in events if e["event"] == "shell.run"]
    assert run["data"]["sandbox"] == "bwrap"


@needs_bwrap
async def test_git_cannot_be_renamed_and_replaced_with_a_copy_that_has_hooks(workspace):
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n")
    (workspace / ".shunter").mkdir()
    attack = (
        "mv .git .git_old && cp -r .git_old .git && printf '#!/bin/sh\\ntouch HOOK_RAN\\n' > .git/hooks/pre-commit"
        " && chmod +x .git/hooks/pre-commit; echo $?; mv .shunter .s2; echo $?; rm -f .git/config; echo $?"
    )
    result = await _run_sandboxed(workspace, attack)
    assert result.stdout.split() == ["1", "1", "1"], result.stderr
    assert "Device or resource busy" in result.stderr
    assert not (workspace / ".git_old").exists() and not (workspace / ".s2").exists()
    assert list((workspace / ".git" / "hooks").iterdir()) == []
    assert (workspace / ".git" / "config").read_text() == "[core]\n"


@needs_bwrap
async def test_info_and_modules_stay_read_only(workspace):
    (workspace / ".git" / "info").mkdir(parents=True)
    (workspace / ".git" / "modules" / "sub" / "hooks").mkdir(parents=True)
    result = await _run_sandboxed(
        workspace,
        "echo x > .git/info/attributes; echo $?; echo x > .git/modules/sub/hooks/post-checkout; echo $?;"
        " echo ok > .git/HEAD; echo $?",
    )
    assert result.stdout.split() == ["1", "1", "0"], result.stderr


@needs_bwrap
async def test_a_symlink_to_etc_shadow_reads_nothing(workspace):
    (workspace / "notes.txt").symlink_to("/etc/shadow")
    result = await _run_sandboxed(workspace, "cat notes.txt; cat /etc/gshadow; true")
    assert "root:" not in result.stdout and result.stdout == ""


@needs_bwrap
async def test_the_home_directory_is_empty(workspace):
    result = await _run_sandboxed(workspace, "ls -A /root; echo end")
    names = result.stdout.split()
    assert names[-1] == "end", result.stderr
    # Only the toolchain folders bound back read-only show; no dotfile of the real home does.
    toolchains = {rel.split("/")[0] for rel in sandbox_module._TOOLCHAINS}
    assert set(names[:-1]) <= toolchains, names
    real = {p.name for p in Path("/root").iterdir()} if Path("/root").is_dir() else set()
    assert not (real - toolchains) & set(names)


@needs_bwrap
async def test_a_workspace_inside_a_home_is_bound_back_over_the_empty_home(tmp_path):
    home = tmp_path / "home"
    ws = home / "proj"
    ws.mkdir(parents=True)
    (home / ".netrc").write_text("machine x password secret\n")
    (ws / "code.txt").write_text("visible\n")
    argv = sandbox_argv(
        ["bash", "-c", f"cat code.txt; ls -A {home}; echo new > made.txt"],
        workspace=ws,
        network=False,
        homes=[home],
    )
    result = await run_process(argv, cwd=ws, env=scrubbed_env(), timeout_s=30, max_output_bytes=10_000)
    assert result.stdout.split() == ["visible", "proj"], result.stderr
    assert (ws / "made.txt").read_text() == "new\n"


@needs_bwrap
def test_the_tool_removes_a_commondir_a_command_created(workspace):
    (workspace / ".git").mkdir()
    ctx = RunContext.create(workspace, Settings(tools=ToolSettings(sandbox="require")), approve=approve_all)
    out = execute_tool("run_command", {"command": "echo /elsewhere > .git/commondir"}, ctx)
    assert out.startswith("exit code: 0") and "removed .git/commondir" in out
    assert not (workspace / ".git" / "commondir").exists()
