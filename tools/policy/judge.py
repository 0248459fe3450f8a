"""What the per-program rules may ask of the tree walker: the `Judge` protocol, and the types
of a rule and of a read-only checker.

The rules (tools/policy/readonly.py, sed_awk.py, runners.py, danger.py) are written against
this protocol; the walker (tools/policy/walker.py) implements it. So the rules never import
the walker, and the walker imports the rules: the package's imports point one way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from tools.policy.words import Cmd, Word


class Judge(Protocol):
    """The walker as a rule sees it while it judges one simple command.

    A rule reports through `deny` and `ask` (the first deny, else the first ask, is the
    verdict, so a rule may carry on after one), judges the commands it runs with `judge`, `sub`
    and `sub_deny_only`, and checks the paths it writes with `writes`.
    """

    allow_network: bool
    """Only changes the wording of network reasons: network commands are `ask` either way."""
    cwd: str | None
    """The working directory the command runs in, normalised ("" at the start, None unknown)."""
    programs: list[str]
    """The read-only programs seen so far, named in an `allow` reason."""
    tags: set[str]
    """Facts checked across commands: "xargs", "net", "shell_stdin", "fifo"."""
    pipeline: str | None
    """The source of the pipeline being walked, for reasons."""
    upstream: list[list[str] | None]
    """The literal words of the earlier stages of that pipeline (None: not a simple command)."""
    first_stage: list[Word] | None
    """The words, literal or not, of that pipeline's first stage when it is a simple command."""

    def deny(self, reason: str) -> None: ...

    def ask(self, reason: str) -> None: ...

    def judge(self, words: Sequence[Word], fed: Any, src: str, via: str = "") -> None:
        """Judge one command given as words, as if the shell ran it."""
        ...

    def sub(self, code: str, where: str) -> None:
        """Judge code run by an inner shell (`bash -c CODE`) and merge its verdict."""
        ...

    def sub_deny_only(self, code: str) -> str | None:
        """Why code would be denied if a shell ran it, or None; nothing else is merged."""
        ...

    def writes(self, c: Cmd, targets: Iterable[Word | str], verb: str = "writes to") -> None:
        """Deny writes into system directories and home dotfiles."""
        ...

    def env_assignment(self, name: str, value: Word, src: str) -> None:
        """An environment variable set for one command."""
        ...


Rule = Callable[[Judge, Cmd], None]
"""The rule of one program: judges its arguments, reporting through the `Judge`."""

ReadOnlyChecker = Callable[[Judge, Cmd, list[str]], list[str] | str]
"""The checker of a program that may be allowed: given the argument texts, the operands it
reads as files when its options are provably read-only, else a sentence saying why not."""
