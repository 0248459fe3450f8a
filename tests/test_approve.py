"""The CLI's approval callbacks."""

from __future__ import annotations

import io

from runtime.context import ApprovalRequest
from shunter.approve import choose_approver, interactive_approver, refusing_approver

WRITE = ApprovalRequest(
    kind="write", tool="write_file", summary="write a.txt (1 line, new file)", detail="+hello"
)
COMMAND = ApprovalRequest(
    kind="command", tool="run_command", summary="pytest -q", detail="not provably read-only"
)


async def test_interactive_yes_no_and_always(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\nn\na\n"))
    ask = interactive_approver()
    assert await ask(WRITE) is True
    assert await ask(WRITE) is False
    assert await ask(COMMAND) is True  # "a": always, for commands, for this run
    assert await ask(COMMAND) is True  # not asked again: stdin is exhausted
    err = capsys.readouterr().err
    assert err.count("approval needed") == 3 and "+hello" in err and "[a]lways" in err


async def test_without_a_terminal_side_effects_are_refused_and_said_once_per_kind(capsys):
    refuse = refusing_approver()
    assert await refuse(WRITE) is False and await refuse(WRITE) is False
    err = capsys.readouterr().err
    assert err.count("re-run with --yes") == 1


async def test_yes_approves(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert await choose_approver(True)(WRITE) is True
    assert await choose_approver(False)(WRITE) is False  # StringIO is not a terminal


async def test_an_abandoned_prompt_does_not_take_the_next_answer(monkeypatch):
    import asyncio
    import os

    r, w = os.pipe()
    monkeypatch.setattr("sys.stdin", os.fdopen(r))
    ask = interactive_approver()
    first = asyncio.create_task(ask(WRITE))  # its subtask will time out before anyone answers
    await asyncio.sleep(0.05)
    first.cancel()
    os.write(w, b"y\n")
    assert await asyncio.wait_for(ask(COMMAND), 2) is True
    os.close(w)


def test_model_text_cannot_hide_part_of_a_prompt():
    from shunter.approve import shown

    assert shown("rm -rf src #\r\x1b[2Kls -la") == "rm -rf src #\\r\\x1b[2Kls -la"
    assert shown("line one\nline two\tok") == "line one\nline two\tok"
