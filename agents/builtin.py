"""The built-in specialists, each with only the tools it needs."""

from __future__ import annotations

from agents.base import Agent

FILE = Agent(
    name="file",
    description="Reads, searches, writes and edits files in the workspace. Cannot run commands or reach the web.",
    tools=("read_file", "list_files", "search_files", "write_file", "edit_file", "delete_file"),
    prompt="file",
    iterations_hint=3.0,
)

SHELL = Agent(
    name="shell",
    description=(
        "Runs shell commands in the workspace (tests, builds, git, grep, counting) under a command policy "
        "and an OS sandbox; can read files but not write them with file tools."
    ),
    tools=("run_command", "read_file", "list_files", "search_files"),
    prompt="shell",
    iterations_hint=3.0,
)

RESEARCH = Agent(
    name="research",
    description="Searches and reads the web (and reads workspace files) to answer questions with cited sources. Cannot write or run commands.",
    tools=("web_search", "fetch_url", "read_file", "list_files", "search_files"),
    prompt="research",
    iterations_hint=4.0,
)

WRITER = Agent(
    name="writer",
    description=(
        "Writes text from the results of the subtasks it depends on: a summary, a report, a table, the "
        "content a later call writes to a file. Has no tools: it reads nothing itself and changes nothing."
    ),
    tools=(),
    prompt="writer",
    iterations_hint=1.0,
)

BUILTIN_AGENTS = [FILE, SHELL, RESEARCH, WRITER]
