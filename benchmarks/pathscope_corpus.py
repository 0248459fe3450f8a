"""How PathScope.check answers a public traversal corpus (PayloadsAllTheThings, 300 lines).

Every line should be refused in a fresh workspace. Reads SHUNTER_CORPORA (default
<repo>/../shared/corpora) and writes benchmarks/results/pathscope_corpus.json.

    .venv/bin/python benchmarks/pathscope_corpus.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tools.pathscope import PathScope  # noqa: E402


def corpus_dir() -> Path:
    return Path(os.environ.get("SHUNTER_CORPORA") or REPO.parent / "shared" / "corpora")


def load_lines(path: Path) -> list[str]:
    # Keep each line exactly (spaces included); only the line break goes.
    return [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines(keepends=True)]


# Paths a model really uses, for the speed of checks that reach the disk (the corpus is
# mostly refused before any system call).
BENIGN = ["README.md", "src/app.py", "./src/pkg/mod.py", "src/../README.md", "docs/new/page.md", "src"]


def checks_per_second(scope: PathScope, paths: list[str], total: int = 3000) -> int:
    rounds = max(1, total // max(1, len(paths)))
    started = time.perf_counter()
    for _ in range(rounds):
        for p in paths:
            scope.check(p)
    return round(rounds * len(paths) / (time.perf_counter() - started))


def run(lines: list[str], workspace: Path) -> dict:
    (workspace / "src" / "pkg").mkdir(parents=True)
    for rel in ("README.md", "src/app.py", "src/pkg/mod.py"):
        (workspace / rel).write_text("x\n")
    scope = PathScope(workspace)
    paths = [line.replace("{WS}", workspace.name) for line in lines]
    allowed = [p for p in paths if scope.check(p).allowed]
    benign_allowed = sum(scope.check(p).allowed for p in BENIGN)
    return {
        "lines": len(paths),
        "refused": len(paths) - len(allowed),
        "allowed": allowed,
        "checks_per_second": checks_per_second(scope, paths),
        "benign_allowed": f"{benign_allowed}/{len(BENIGN)}",
        "benign_checks_per_second": checks_per_second(scope, BENIGN),
    }


def main() -> int:
    corpus = corpus_dir() / "traversal.txt"
    if not corpus.is_file():
        print(f"corpus not found: {corpus} (set SHUNTER_CORPORA); nothing measured", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "app"
        workspace.mkdir()
        result = {"corpus": str(corpus), **run(load_lines(corpus), workspace)}
    out = REPO / "benchmarks" / "results" / "pathscope_corpus.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"refused {result['refused']}/{result['lines']} ({result['checks_per_second']} checks/s); "
        f"benign allowed {result['benign_allowed']} ({result['benign_checks_per_second']} checks/s); wrote {out}"
    )
    for p in result["allowed"]:
        print(f"  ALLOWED: {p!r}")
    return 0 if result["refused"] == result["lines"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
