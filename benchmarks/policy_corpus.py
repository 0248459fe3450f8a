"""Run the shell policy over public corpora and report how it answers, and how fast.

GTFOBins (shell escapes, file writes, reverse shells ...) should never be `allow`; the
read-only slice of nl2bash should be `allow`. The corpora live outside the project
(SHUNTER_CORPORA, default <repo>/../shared/corpora) and are never copied into it; when the
folder is absent the script says so and exits 0.

    .venv/bin/python benchmarks/policy_corpus.py [--misses N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tools.policy import check_command  # noqa: E402

CORPORA = {"gtfobins.txt": "never_allow", "nl2bash_readonly.txt": "allow"}


def corpora_dir() -> Path:
    return Path(os.environ.get("SHUNTER_CORPORA") or REPO.parent / "shared" / "corpora")


def load(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def miss_category(reason: str) -> str:
    """A coarse label for why a command was not allowed, to group the misses."""
    r = reason.lower()
    for key, label in (
        ("glob", "glob passed to a program with risky options"),
        ("expanded at run time", "expansion in a word"),
        ("holds secrets", "secret path"),
        ("not a known read-only program", "unknown program"),
        ("could not be parsed", "parse error"),
        ("can write files or run other programs", "risky option"),
        ("runs another command", "find -exec"),
        ("the awk program", "awk program"),
        ("the sed script", "sed script"),
        ("git", "git"),
    ):
        if key in r:
            return label
    return "other"


def run_corpus(path: Path, expect: str, show: int) -> dict:
    lines = load(path)
    started = time.perf_counter()
    verdicts = [check_command(line) for line in lines]
    seconds = time.perf_counter() - started
    counts = Counter(v.decision for v in verdicts)
    n = len(lines)
    if expect == "allow":
        misses = [(line, v) for line, v in zip(lines, verdicts, strict=True) if v.decision != "allow"]
    else:
        misses = [(line, v) for line, v in zip(lines, verdicts, strict=True) if v.decision == "allow"]
    by_category = Counter(miss_category(v.reason) for _, v in misses)
    print(f"\n{path.name}: {n} commands, expected {expect}")
    for decision in ("allow", "ask", "deny"):
        print(f"  {decision:5} {counts[decision]:5}  {counts[decision] / n:6.1%}")
    print(f"  misses {len(misses)}; {n / seconds:,.0f} commands/s")
    for category, count in by_category.most_common():
        print(f"    {count:4}  {category}")
    for line, v in misses[:show]:
        print(f"    - {line[:100]}\n        {v.decision}: {v.reason[:160]}")
    return {
        "file": path.name,
        "expect": expect,
        "commands": n,
        "counts": dict(counts),
        "shares": {d: round(counts[d] / n, 4) for d in ("allow", "ask", "deny")},
        "misses": len(misses),
        "miss_categories": dict(by_category),
        "miss_examples": [
            {"command": line, "decision": v.decision, "reason": v.reason} for line, v in misses[:50]
        ],
        "seconds": round(seconds, 4),
        "commands_per_second": round(n / seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", type=int, default=15, help="how many misses to print per corpus")
    args = parser.parse_args()
    folder = corpora_dir()
    if not folder.is_dir():
        print(f"No corpora folder at {folder}; set SHUNTER_CORPORA to run this benchmark.")
        return 0
    check_command("true")  # build the parser outside the timing
    results = [
        run_corpus(folder / name, expect, args.misses)
        for name, expect in CORPORA.items()
        if (folder / name).is_file()
    ]
    total = sum(r["commands"] for r in results)
    seconds = sum(r["seconds"] for r in results)
    summary = {
        "corpora": str(folder),
        "results": results,
        "commands_per_second": round(total / seconds, 1) if seconds else None,
    }
    out = REPO / "benchmarks" / "results" / "policy_corpus.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\noverall {summary['commands_per_second']:,} commands/s; written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
