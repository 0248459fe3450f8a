"""The shell command policy: `allow` what is provably read-only, `deny` what is destructive
however it is spelled, `ask` for everything else.

Modelled on Codex CLI's is_safe_command / command_safety. The command is parsed with
tree-sitter-bash, never matched as text, so quoting tricks (r''m, "rm", \\rm, $'\\x72m')
resolve to the word bash would actually run. The policy fails closed: a parse error, a
construct it does not know or a program it cannot prove read-only is at least `ask`.
Commands nested in `$( )`, `bash -c`, `xargs`, `find -exec`, `sudo`, `timeout`, `env` ... are
judged too, and the strictest verdict wins.

This package is the public entry point: `check_command`, `Verdict` and `Decision`. Its modules
import downwards only:
- words.py: parsing, quote removal, option scanning, the `Cmd` a rule is given;
- paths.py: system directories, dotfiles, secrets, recursive-delete targets;
- judge.py: the `Judge` protocol, what the rules may ask of the walker;
- the per-program rules: danger.py (destructive and network programs, dangerous program
  text), sed_awk.py (sed scripts and awk programs), readonly.py (the programs that may be
  allowed) and runners.py (wrappers, shells and interpreters, whose inner commands are judged);
- walker.py: the verdict and the tree walker, which implements `Judge` and dispatches each
  simple command to its program's rule.
"""

from tools.policy.walker import Decision, Verdict, check_command

__all__ = ["Decision", "Verdict", "check_command"]
