"""Option types shared by every CLI command (one definition, the same help everywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Workspace = Annotated[
    Path, typer.Option("--workspace", "-w", help="Workspace directory (default: the current one).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]
YesFlag = Annotated[
    bool, typer.Option("--yes", "-y", help="Approve side effects the policy allows (never a deny).")
]
ModelName = Annotated[str | None, typer.Option("--model", help="Model name (overrides SHUNTER_MODEL).")]
MaxParallel = Annotated[int | None, typer.Option("--max-parallel", help="Subtasks running at once.")]
