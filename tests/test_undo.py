"""`undo` puts back what a run changed: restores edited and deleted files, deletes created ones,
refuses when a file changed after the run (unless --force), and never leaves the workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.lookup import RefusedError
from router.undo import undo
from runtime.store import Store
from tests.test_resume import Brain, files_workspace, invoke, invoke_json, run_sync, step

PLAN = {
    "goal": "Create, edit and delete files.",
    "subtasks": [
        step("t1", "Create new.txt.", read_only=False),
        step("t2", "Edit existing.txt twice.", read_only=False, deps=["t1"]),
        step("t3", "Delete gone.txt.", read_only=False, deps=["t2"]),
    ],
}
TOOLS = {
    "t1": [("write_file", {"path": "new.txt", "content": "made by the run\n"})],
    "t2": [
        ("edit_file", {"path": "existing.txt", "old": "original", "new": "edited"}),
        ("write_file", {"path": "existing.txt", "content": "rewritten\n"}),
    ],
    "t3": [("delete_file", {"path": "gone.txt"})],
}


@pytest.fixture
def ran(workspace, test_server) -> tuple[Path, str]:
    """A workspace after a run that created new.txt, edited existing.txt twice, deleted gone.txt."""
    ws = files_workspace(workspace)
    (ws / "existing.txt").write_text("original\n")
    (ws / "gone.txt").write_text("to be deleted\n")
    test_server.handler = Brain(PLAN, TOOLS)
    result = run_sync(ws, test_server, "create, edit and delete")
    assert result.status == "succeeded", result.error
    assert (ws / "new.txt").exists() and (ws / "existing.txt").read_text() == "rewritten\n"
    assert not (ws / "gone.txt").exists()
    return ws, result.run_id


def test_undo_restores_edited_and_deleted_files_and_removes_created_ones(ran):
    ws, run_id = ran
    with Store.open(ws) as store:
        report = undo(store, run_id, ws)
        assert store.get_run(run_id)["undone_at"] is not None

    assert not (ws / "new.txt").exists()
    assert (ws / "existing.txt").read_text() == "original\n"  # the content before the first change
    assert (ws / "gone.txt").read_text() == "to be deleted\n"
    assert report["done"] and report["conflicts"] == []
    assert [(a["path"], a["action"], a["subtask_id"]) for a in report["actions"]] == [
        ("new.txt", "delete", "t1"),
        ("existing.txt", "restore", "t2"),
        ("gone.txt", "restore", "t3"),
    ]
    with Store.open(ws) as store, pytest.raises(RefusedError, match="already undone"):
        undo(store, run_id, ws)


def test_undo_refuses_when_a_file_changed_after_the_run_and_force_overrides(ran):
    ws, run_id = ran
    (ws / "new.txt").write_text("my own later edit\n")

    with Store.open(ws) as store:
        with pytest.raises(RefusedError) as refused:
            undo(store, run_id, ws)
        assert "new.txt" in str(refused.value) and "--force" in str(refused.value)
        assert "existing.txt" not in str(refused.value)
        assert (ws / "existing.txt").read_text() == "rewritten\n"  # nothing was touched
        assert store.get_run(run_id)["undone_at"] is None

        report = undo(store, run_id, ws, force=True)

    assert report["conflicts"] == ["new.txt"] and report["done"]
    assert not (ws / "new.txt").exists()
    assert (ws / "existing.txt").read_text() == "original\n"


def test_dry_run_lists_the_actions_and_changes_nothing(ran, test_server):
    ws, run_id = ran
    (ws / "existing.txt").write_text("changed later\n")

    report = invoke_json(test_server, ws, "undo", run_id, "--dry-run")
    text = invoke(test_server, ws, "undo", run_id, "--dry-run").stdout

    assert report["dry_run"] and not report["done"] and report["conflicts"] == ["existing.txt"]
    assert {a["path"]: a["action"] for a in report["actions"]} == {
        "new.txt": "delete",
        "existing.txt": "restore",
        "gone.txt": "restore",
    }
    assert (
        "Would delete new.txt" in text
        and "Would restore gone.txt" in text
        and "existing.txt" in text.splitlines()[-1]
    )
    assert (ws / "new.txt").exists() and not (ws / "gone.txt").exists()
    assert (ws / "existing.txt").read_text() == "changed later\n"


def test_cli_undo_refuses_with_one_sentence_and_exit_1_then_force_restores(ran, test_server):
    ws, run_id = ran
    (ws / "gone.txt").write_text("recreated by hand\n")

    refused = invoke(test_server, ws, "undo", run_id, "--json")
    forced = invoke(test_server, ws, "undo", run_id, "--force", "--json")

    assert refused.exit_code == 1
    error = json.loads(refused.stdout)
    assert error["status"] == "error" and "gone.txt" in error["error"]
    assert forced.exit_code == 0 and json.loads(forced.stdout)["done"]
    assert (ws / "gone.txt").read_text() == "to be deleted\n" and not (ws / "new.txt").exists()


@pytest.mark.parametrize("path", ["../outside.txt", "link/escape.txt"])
def test_undo_never_writes_outside_the_workspace_even_with_force(ran, tmp_path, path):
    ws, run_id = ran
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws / "link").symlink_to(outside)
    with Store.open(ws) as store:  # a tampered record pointing out of the workspace
        store.add_file_change(run_id, "t1", path, b"planted\n", b"x")

        with pytest.raises(RefusedError, match="may not write") as refused:
            undo(store, run_id, ws, force=True)

    assert path in str(refused.value)
    assert not (tmp_path / "outside.txt").exists() and list(outside.iterdir()) == []
    assert (ws / "new.txt").exists() and (ws / "existing.txt").read_text() == "rewritten\n"  # nothing undone


def test_undo_of_a_run_that_changed_nothing_says_so(workspace, test_server):
    ws = files_workspace(workspace)
    test_server.handler = Brain(
        {"goal": "Read.", "subtasks": [step("t1", "Read a.txt.")]}, {"t1": [("read_file", {"path": "a.txt"})]}
    )
    result = run_sync(ws, test_server, "read a")

    out = invoke(test_server, ws, "undo", result.run_id)

    assert out.exit_code == 0 and "changed no files" in out.stdout
