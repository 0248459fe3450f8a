#!/usr/bin/env python3
"""Developer entry point that needs nothing but python3: it creates .venv, installs Shunter with
its test tools, then runs what you ask. CI, the README and developers all use it.

    python3 dev.py demo     # the offline end-to-end demo (shunter demo)
    python3 dev.py test     # the whole test suite (extra args go to pytest)
    python3 dev.py lint     # ruff (lint + format) and mypy
    python3 dev.py bench    # the benchmarks in benchmarks/
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".shunter-installed"


def _fingerprint(extras: str) -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()


def setup(extras: str = "dev") -> None:
    if not (BIN / "python").exists():
        print("Creating .venv …", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = _fingerprint(extras)
    if not (STAMP.exists() and STAMP.read_text() == want):
        _pip_install(extras)
        STAMP.write_text(want)
    _npm_setup()


def _pip_install(extras: str) -> None:
    print(f"Installing shunter[{extras}] into .venv …", file=sys.stderr)
    subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-e",
            f".[{extras}]",
        ],
        cwd=ROOT,
        check=True,
    )


NPM_DIR = ROOT / "tests" / "npm-server"


def _npm_setup() -> None:
    """The MCP tests drive real npm programs (server-everything, the inspector CLI, the
    conformance suite). npm ci installs them from the lock file once; without npm the tests
    that need them say so."""
    lock = NPM_DIR / "package-lock.json"
    stamp = NPM_DIR / "node_modules" / ".shunter-installed"
    want = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return
    npm = shutil.which("npm")
    if npm is None:
        print("npm not found: the MCP tests that use npm programs will say so.", file=sys.stderr)
        return
    print("Installing the npm test programs (npm ci) …", file=sys.stderr)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NPM_DIR, check=True)
    stamp.write_text(want)


def run(*cmd: str) -> int:
    return subprocess.call(list(cmd), cwd=ROOT)


def main(argv: list[str]) -> int:
    what, rest = (argv[0], argv[1:]) if argv else ("test", [])
    if what == "setup":
        setup()
        return 0
    if what == "demo":
        setup()
        return run(str(BIN / "shunter"), "demo", *rest)
    if what == "test":
        setup()
        return run(str(BIN / "python"), "-m", "pytest", *rest)
    if what == "lint":
        setup()
        return (
            run(str(BIN / "ruff"), "check", ".")
            or run(str(BIN / "ruff"), "format", "--check", ".")
            or run(str(BIN / "mypy"))
        )
    if what == "bench":
        setup("dev,bench")
        return run(str(BIN / "python"), "-m", "benchmarks.run_all", *rest)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
