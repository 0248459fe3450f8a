"""The top of the command policy: the `Verdict`, `check_command` and the tree walker
`Analyzer`, which implements the `Judge` protocol (tools/policy/judge.py) the per-program rules
are written against.

The walker visits the tree-sitter tree of one command line: sequences, pipelines, subshells,
substitutions, control flow, assignments, tests and redirections each have a handler, and each
simple command is dispatched to the rule of its program (`_RULES`, `READ_ONLY`). It is one
module, over 400 lines, because it is one class whose handlers share the state of one walk: the
first deny and ask, the directory a `cd` moved to, the pipeline being walked and the words seen
so far, which the checks across commands (`_combination_checks`) read at the end. The
helpers at the bottom are pure functions (of tree-sitter nodes, mostly) that only the handlers use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tools.policy.danger import RULES as DANGER_RULES
from tools.policy.danger import disk_rule
from tools.policy.judge import Rule
from tools.policy.paths import HARMLESS_DEVICES, SECRET_ROOTS, normalise, secret_in, shown, write_problem
from tools.policy.readonly import READ_ONLY, read_only_rule
from tools.policy.runners import INTERPRETER_RE, interpreter_rule
from tools.policy.runners import RULES as RUNNER_RULES
from tools.policy.words import Cmd, Word, node_text, parse, snip, word_of

Decision = Literal["allow", "ask", "deny"]

_MAX_CHARS = 20_000
_MAX_DEPTH = 5


@dataclass(frozen=True)
class Verdict:
    """The policy's answer for one command: `decision` and one sentence saying why."""

    decision: Decision
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"decision": self.decision, "reason": self.reason}


def check_command(command: str, *, allow_network: bool = False) -> Verdict:
    """Judge a bash command line: `allow` only when every part is provably read-only,
    `deny` for destructive or hijacking commands, `ask` for everything else.

    `allow_network` only changes the wording: network commands are `ask` either way.
    """
    return Analyzer(allow_network, depth=0, cwd="").run(command)


# --------------------------------------------------------------------------- the walker

_HISTORY_VARS = frozenset({"HISTFILE", "HISTSIZE", "HISTFILESIZE", "HISTCONTROL", "HISTIGNORE"})
_SAFE_ENV = frozenset(
    {"LANG", "LANGUAGE", "TZ", "NO_COLOR", "COLUMNS", "LINES", "TERM", "CLICOLOR", "GREP_COLORS"}
)
_PAGER_VARS = frozenset({"PAGER", "GIT_PAGER"})
_STD_DIRS = frozenset({"/bin", "/usr/bin"})


class Analyzer:
    """Walks one parsed command, collecting the first deny and the first ask reason.

    It is the `Judge` the per-program rules are given (tools/policy/judge.py): they report
    through `deny` and `ask`, judge the commands they run with `judge` and `sub`, and check the
    paths they write with `writes`. The first deny wins, so a rule may carry on after one.
    """

    def __init__(self, allow_network: bool, depth: int, cwd: str | None):
        self.allow_network = allow_network
        self.depth = depth
        self.cwd: str | None = cwd
        self.denied: str | None = None
        self.asked: str | None = None
        self.programs: list[str] = []
        self.tags: set[str] = set()
        self.pipeline: str | None = None  # source of the pipeline being walked, for reasons
        # The words of the earlier stages of the pipeline being walked (None for a stage that is
        # not a simple command), so xargs can tell file names listed by find from file contents.
        self.upstream: list[list[str] | None] = []
        self.first_stage: list[Word] | None = None
        self.words: list[str] = []  # every literal word, for checks across commands

    # ---- results

    def deny(self, reason: str) -> None:
        if self.denied is None:
            self.denied = reason

    def ask(self, reason: str) -> None:
        if self.asked is None:
            self.asked = reason

    def ask_background(self, node: Any) -> None:
        self.ask(f"{snip(node_text(node))} starts a command in the background, which outlives the check.")

    def run(self, command: str) -> Verdict:
        if not command.strip():
            return Verdict("ask", "The command is empty, so there is nothing to check.")
        if len(command) > _MAX_CHARS:
            return Verdict("ask", f"The command is longer than {_MAX_CHARS} characters, too long to check.")
        if "\x00" in command:
            return Verdict("ask", "The command contains a NUL byte, which bash would not run as written.")
        self._raw_checks(command)
        root = parse(command.encode("utf-8", errors="surrogateescape")).root_node
        if root.has_error:
            self.ask(f"Part of the command could not be parsed as bash ({snip(_error_text(root))}).")
        self.visit(root, None)
        self._combination_checks(command)
        return self.verdict()

    def verdict(self) -> Verdict:
        if self.denied:
            return Verdict("deny", self.denied)
        if self.asked:
            return Verdict("ask", self.asked)
        if not self.programs:
            return Verdict("ask", "The command runs no program that could be checked.")
        names = ", ".join(dict.fromkeys(self.programs))
        return Verdict(
            "allow", f"Read-only: every command ({names}) is a known read-only program with safe options."
        )

    def sub(self, code: str, where: str) -> None:
        """Judge code run by an inner shell (`bash -c`, `su -c`, heredoc); merge its verdict."""
        if self.depth >= _MAX_DEPTH:
            self.ask(f"{where} nests commands too deeply to check.")
            return
        inner = Analyzer(self.allow_network, self.depth + 1, self.cwd)
        v = inner.run(code)
        if v.decision == "deny":
            self.deny(f"{where} runs code that is denied: {v.reason}")
        elif v.decision == "ask":
            self.ask(v.reason)
        else:
            self.programs.extend(inner.programs)
        self.tags |= inner.tags

    def sub_deny_only(self, code: str) -> str | None:
        if self.depth >= _MAX_DEPTH or not code.strip():
            return None
        v = Analyzer(self.allow_network, self.depth + 1, self.cwd).run(code)
        return v.reason if v.decision == "deny" else None

    # ---- whole-text checks

    def _raw_checks(self, command: str) -> None:
        if "/dev/tcp/" in command or "/dev/udp/" in command:
            self.deny(
                "The command opens a network socket through /dev/tcp or /dev/udp, the classic reverse shell."
            )

    def _combination_checks(self, command: str) -> None:
        if "xargs" in self.tags and not self.denied:
            # `echo ~/.ssh/id_rsa | xargs cat`, `echo -r / | xargs grep x`: the file names travel
            # as data, so every literal token is checked, and trees full of secrets count too.
            for token in (t for word in self.words for t in word.split()):
                path = normalise(token, self.cwd)
                secret = secret_in(path) or (shown(path) if path in SECRET_ROOTS else None)
                if secret:
                    self.ask(
                        f"{snip(command)} hands {secret}, which holds secrets, to another command through xargs."
                    )
                    break
        if "net" in self.tags and ({"shell_stdin", "fifo"} & self.tags):
            self.deny(
                f"{snip(command)} wires a shell or a named pipe to a network connection (a reverse or bind shell)."
            )

    # ---- tree

    def visit(self, node: Any, fed: Any) -> None:
        handler = _HANDLERS.get(node.type)
        if handler is not None:
            handler(self, node, fed)
        elif node.type in _WORD_TYPES:
            self.nested(node)
        else:
            self.ask(
                f"{snip(node_text(node))} uses a shell construct ({node.type.replace('_', ' ')}) that is not checked."
            )
            for child in node.named_children:
                self.visit(child, None)

    def nested(self, node: Any) -> None:
        """Judge the commands inside substitutions found anywhere under a word."""
        raw = node.text
        if b"$(" not in raw and b"`" not in raw and b"<(" not in raw and b">(" not in raw:
            return
        stack = [node]
        while stack:
            n = stack.pop()
            if n.type in ("command_substitution", "process_substitution"):
                self.visit(n, None)
            else:
                stack.extend(n.children)

    def v_sequence(self, node: Any, fed: Any) -> None:
        for child in node.children:
            if child.is_named and child.type in _WORD_TYPES:
                # A bare word where a command should be: the parser recovered from something.
                self.ask(f"{snip(node_text(child))} is not a command the policy understands.")
                self.nested(child)
            elif child.is_named:
                self.visit(child, fed)
            elif child.type == "&":
                self.ask_background(node)
            elif child.type not in ("&&", "||", ";", "\n"):
                self.ask(f"{snip(node_text(node))} uses the operator `{child.type}`, which is not checked.")

    def v_pipeline(self, node: Any, fed: Any, *, tail: bool = False) -> None:
        outer, self.pipeline = self.pipeline, node_text(node.parent if tail else node)
        outer_upstream, self.upstream = self.upstream, [] if not tail else [None]
        outer_first, self.first_stage = self.first_stage, None
        first = not tail
        for child in node.children:
            if not child.is_named:
                if child.type not in ("|", "|&"):
                    self.ask(
                        f"{snip(node_text(node))} uses the operator `{child.type}`, which is not checked."
                    )
                continue
            self.visit(child, fed if first else "pipe")
            if first:
                self.first_stage = _command_words(child)
            self.upstream.append(_stage_words(child))
            first = False
        self.pipeline, self.upstream, self.first_stage = outer, outer_upstream, outer_first

    def v_isolated(self, node: Any, fed: Any) -> None:
        # Subshells and substitutions: a `cd` inside does not move the commands after them.
        saved = self.cwd
        kind = node.type.replace("_", " ")
        if node.type in ("command_substitution", "process_substitution"):
            self.ask(
                f"{snip(node_text(node))} runs a nested command ({kind}); only plain literal words are provably safe."
            )
            if node.children and node.children[0].type == ">(":
                fed = "pipe"
            else:
                fed = None
        else:
            self.ask(
                f"{snip(node_text(node))} uses a {kind}; only simple commands joined by && || ; | are allowed."
            )
        for child in node.named_children:
            self.visit(child, fed)
        self.cwd = saved

    def v_compound(self, node: Any, fed: Any) -> None:
        self.ask(
            f"{snip(node_text(node))} uses a command group or control flow ({node.type.replace('_', ' ')})."
        )
        for child in node.children:
            if child.is_named:
                self.visit(child, fed)
            elif child.type == "&":
                self.ask_background(node)

    def v_function(self, node: Any, fed: Any) -> None:
        name_node = node.child_by_field_name("name")
        body = node.child_by_field_name("body")
        name = node_text(name_node) if name_node is not None else ""
        self.ask(f"{snip(node_text(node))} defines a shell function.")
        # A function that starts copies of itself in a pipe or the background multiplies.
        if (
            body is not None
            and name
            and _calls_itself(body, name)
            and (b"|" in body.text or b"&" in body.text)
        ):
            self.deny(
                f"{snip(node_text(node))} is a fork bomb: the function `{name}` starts copies of itself until the system stalls."
            )
        for child in node.named_children:
            if child is not name_node:
                self.visit(child, None)

    def v_assignment(self, node: Any, fed: Any) -> None:
        name_node = node.child_by_field_name("name")
        name = node_text(name_node) if name_node is not None else node_text(node)
        if name in _HISTORY_VARS:
            self.ask(f"{snip(node_text(node))} tampers with the shell history settings.")
        else:
            self.ask(f"{snip(node_text(node))} sets the shell variable {name}.")
        self.nested(node)

    def v_declaration(self, node: Any, fed: Any) -> None:
        text = node_text(node)
        if any(v in text for v in _HISTORY_VARS) or "history" in text:
            self.ask(f"{snip(text)} tampers with the shell history settings.")
        else:
            self.ask(f"{snip(text)} changes shell variables ({text.split()[0]}).")
        self.nested(node)

    def v_test(self, node: Any, fed: Any) -> None:
        # `[ -f x ]` and `[[ ... ]]` only test; with literal words nothing else can happen,
        # except where bash evaluates a word as arithmetic (see `_arithmetic_test`).
        if b"$" in node.text or b"`" in node.text:
            self.ask(f"{snip(node_text(node))} tests a value expanded at run time.")
            self.nested(node)
            return
        problem = _arithmetic_test(node)
        if problem:
            self.ask(f"{snip(node_text(node))} {problem}")
        else:
            self.programs.append("test")

    def v_error(self, node: Any, fed: Any) -> None:
        self.ask(f"Part of the command could not be parsed as bash ({snip(node_text(node))}).")
        # tree-sitter cannot parse `{rm,-rf,/}` as a command, but bash expands it to `rm -rf /`.
        for m in _BRACE_COMMAND_RE.finditer(node_text(node)):
            reason = self.sub_deny_only(" ".join(m.group(1).split(",")))
            if reason:
                self.deny(f"{snip(m.group(0))} is brace expansion that spells a denied command: {reason}")
        for child in node.named_children:
            self.visit(child, fed)

    def v_negated(self, node: Any, fed: Any) -> None:
        for child in node.named_children:
            self.visit(child, fed)

    def v_comment(self, node: Any, fed: Any) -> None:
        return

    def v_redirected(self, node: Any, fed: Any) -> None:
        body = node.child_by_field_name("body")
        redirects = [c for c in node.named_children if c.type in _REDIRECT_TYPES]
        if body is None:
            self.ask(f"{snip(node_text(node))} is only a redirection, which creates or truncates a file.")
            for r in redirects:
                self.redirect(r, node)
            return
        if body.type == "command":
            self.command(body, fed, redirects)
            return
        self.visit(body, _input_kind(redirects) or fed)
        for r in redirects:
            self.redirect(r, node)

    # ---- simple commands

    def command(self, node: Any, fed: Any, extra_redirects: Sequence[Any] = ()) -> None:
        redirects = [c for c in node.named_children if c.type in _REDIRECT_TYPES]
        redirects.extend(extra_redirects)
        stmt = node.parent if extra_redirects and node.parent is not None else node
        name_node = node.child_by_field_name("name")
        for child in node.named_children:
            if child.type == "variable_assignment":
                self.prefix_assignment(child)
        if name_node is None:
            self.ask(f"{snip(node_text(node))} only sets variables or redirects.")
            for r in redirects:
                self.redirect(r, stmt)
            return
        arg_nodes = node.children_by_field_name("argument")
        words = [word_of(name_node), *(word_of(a) for a in arg_nodes)]
        self.words.extend(w.text for w in words[1:] if w.text)
        self.nested(name_node)
        for a in arg_nodes:
            self.nested(a)
        self.judge(words, _input_kind(redirects) or fed, node_text(node))
        for r in redirects:
            self.redirect(r, stmt)

    def prefix_assignment(self, node: Any) -> None:
        name_node = node.child_by_field_name("name")
        value = node.child_by_field_name("value")
        self.nested(node)
        name = node_text(name_node) if name_node is not None else ""
        self.env_assignment(name, word_of(value) if value is not None else Word("", "", ""), node_text(node))

    def env_assignment(self, name: str, value: Word, src: str) -> None:
        """An environment variable set for one command: only a few harmless ones stay allowable."""
        if name in _HISTORY_VARS:
            self.ask(f"{snip(src)} tampers with the shell history settings.")
        elif name in _SAFE_ENV or name.startswith("LC_"):
            if value.text is None:
                self.ask(f"{snip(src)} sets {name} from an expansion.")
        elif not (name in _PAGER_VARS and value.text in ("cat", "")):
            self.ask(f"{snip(src)} sets {name} for the command, which can change what it runs.")

    def redirect(self, node: Any, stmt: Any) -> None:
        t = node.type
        if t == "heredoc_redirect":
            self._heredoc_tail(node)
            return
        if t == "herestring_redirect":
            self.nested(node)
            return
        if t != "file_redirect":
            self.ask(f"{snip(node_text(node))} is a redirection that is not checked.")
            return
        op = next((c.type for c in node.children if not c.is_named), "")
        dest = node.child_by_field_name("destination")
        if op in (">&-", "<&-"):
            return
        if dest is None:
            self.ask(f"{snip(node_text(node))} is a redirection that is not checked.")
            return
        self.nested(dest)
        w = word_of(dest)
        if op in (">&", "<&") and (w.text == "-" or (w.text or "").isdigit()):
            return  # duplicating a descriptor (2>&1) touches no file
        where = snip(node_text(stmt))
        if "/dev/tcp/" in w.approx or "/dev/udp/" in w.approx:
            self.deny(f"{where} opens a network socket through /dev/tcp, the classic reverse shell.")
            return
        if op == "<":
            if w.text is None:
                self.ask(f"{where} reads from a file named by an expansion.")
                return
            secret = secret_in(normalise(w.text, self.cwd))
            if secret:
                self.ask(f"{where} reads {secret}, which holds secrets.")
            return
        # Everything else writes: >, >>, >|, &>, &>>, <>, >& file.
        if w.text in HARMLESS_DEVICES:
            return
        problem = write_problem(normalise(w.approx, self.cwd))
        if problem:
            self.deny(f"{where} writes to {w.src}: {problem}.")
        elif w.text is None:
            self.ask(f"{where} writes to a file named by an expansion.")
        else:
            self.ask(f"{where} writes to the file {w.src}.")

    def _heredoc_tail(self, node: Any) -> None:
        # tree-sitter hangs whatever follows `<<EOF` on the same line under the redirect.
        for child in node.children:
            if child.type == "heredoc_body":
                self.nested(child)
            elif child.type == "pipeline":
                self.v_pipeline(child, None, tail=True)
            elif child.type in _REDIRECT_TYPES:
                self.redirect(child, node.parent or node)
            elif child.is_named and child.type not in ("heredoc_start", "heredoc_end"):
                self.visit(child, None)
            elif child.type == "&":
                self.ask_background(node)

    # ---- programs

    def judge(self, words: Sequence[Word], fed: Any, src: str, via: str = "") -> None:
        """Judge one command given as words: wrappers recurse, programs have rules."""
        if not words:
            return
        name = words[0]
        for w in words:
            if "/dev/tcp/" in w.approx or "/dev/udp/" in w.approx:
                self.deny(f"{snip(src)} opens a network socket through /dev/tcp, the classic reverse shell.")
        if name.text is None:
            self.deny(
                f"{snip(src)} runs a command whose name is computed at run time ({name.src}), so it cannot be checked."
            )
            return
        if name.glob or name.brace:
            self.deny(f"{snip(src)} uses a pattern as the command name ({name.src}), which hides what runs.")
            return
        prog = name.text
        base = prog.rsplit("/", 1)[-1] if "/" in prog else prog
        std = "/" not in prog or prog.rsplit("/", 1)[0] in _STD_DIRS
        rule = _RULES.get(base)
        if rule is None:
            if base.startswith("mkfs") or base.startswith("mke2fs"):
                rule = disk_rule
            elif INTERPRETER_RE.match(base):
                rule = interpreter_rule
        if rule is None and base in READ_ONLY:
            rule = read_only_rule
        if rule is None:
            self.ask(_unknown_reason(prog, base, src))
            return
        rule(self, Cmd(base, prog, std, list(words[1:]), fed, src, via))

    def writes(self, c: Cmd, targets: Iterable[Word | str], verb: str = "writes to") -> None:
        """Deny writes into system directories and home dotfiles."""
        for t in targets:
            approx = t if isinstance(t, str) else t.approx
            src = t if isinstance(t, str) else t.src
            problem = write_problem(normalise(approx, self.cwd))
            if problem:
                self.deny(f"{snip(c.src)} {verb} {src}: {problem}.")
                return


def _unknown_reason(prog: str, base: str, src: str) -> str:
    if "/" in prog and not prog.startswith("/"):
        return f"{snip(src)} runs the local program {prog}, which could do anything."
    return f"{snip(src)}: `{base}` is not a known read-only program."


def _error_text(root: Any) -> str:
    stack = [root]
    while stack:
        n = stack.pop()
        if n.type == "ERROR" or n.is_missing:
            return node_text(n) or node_text(n.parent or root)
        stack.extend(reversed(n.children))
    return node_text(root)


def _input_kind(redirects: Sequence[Any]) -> Any:
    """What feeds a command's stdin through its redirections: None, "pipe" (another command),
    ("text", code or None, from_command) for here-strings and heredocs, or ("file", path, False)."""
    kind: Any = None
    for r in redirects:
        if r.type == "herestring_redirect":
            value = next(iter(r.named_children), None)
            w = word_of(value) if value is not None else Word("", "", "")
            kind = ("text", w.text, w.subst)
        elif r.type == "heredoc_redirect":
            body = next((c for c in r.named_children if c.type == "heredoc_body"), None)
            if body is None:
                kind = ("text", "", False)
            else:
                dynamic = any(c.type != "heredoc_content" for c in body.named_children)
                subst = b"$(" in body.text or b"`" in body.text
                kind = ("text", None if dynamic else node_text(body), subst and dynamic)
        elif r.type == "file_redirect":
            op = next((c.type for c in r.children if not c.is_named), "")
            fd = r.child_by_field_name("descriptor")
            if op in ("<", "<&", "<>") and (fd is None or node_text(fd) == "0"):
                dest = r.child_by_field_name("destination")
                if dest is not None and dest.type == "process_substitution":
                    kind = "pipe"
                else:
                    kind = ("file", word_of(dest).text if dest is not None else None, False)
    return kind


def _command_words(node: Any) -> list[Word] | None:
    """The words of a pipeline stage that is a simple command, literal or not."""
    if node.type != "command":
        return None
    name = node.child_by_field_name("name")
    if name is None:
        return None
    return [word_of(name), *(word_of(a) for a in node.children_by_field_name("argument"))]


def _stage_words(node: Any) -> list[str] | None:
    """The literal words of a pipeline stage that is a simple command without redirections."""
    words = _command_words(node)
    if words is None or any(w.text is None for w in words):
        return None
    return [w.text or "" for w in words]


_ARITH_OPS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
_INTEGER_RE = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|[0-9]+)")


def _arithmetic_test(node: Any) -> str | None:
    """Why a test evaluates a word as arithmetic: `-v`/`-R` subscripts (`a[x]`), and inside
    `[[ ]]` the operands of -eq/-lt/..., where a name is looked up and evaluated in turn, so
    an environment value like `a[$(cmd)]` runs cmd."""
    double = node.children[0].type == "[[" if node.children else True
    stack = [node]
    while stack:
        n = stack.pop()
        stack.extend(n.children)
        if n.type != "test_operator":
            continue
        op = node_text(n)
        if op in ("-v", "-R"):
            return f"uses `{op}`, whose variable subscript bash evaluates as arithmetic."
        if double and op in _ARITH_OPS and n.parent is not None:
            for side in ("left", "right"):
                operand = n.parent.child_by_field_name(side)
                if operand is not None and not _INTEGER_RE.fullmatch(node_text(operand)):
                    return f"compares {snip(node_text(operand))} with `{op}`, which bash evaluates as arithmetic."
    return None


def _calls_itself(body: Any, name: str) -> bool:
    stack = [body]
    while stack:
        n = stack.pop()
        if n.type == "command_name" and node_text(n) == name:
            return True
        stack.extend(n.children)
    return False


_BRACE_COMMAND_RE = re.compile(r"(?:^|[;&|(\s])\{([^{}\s]*,[^{}\s]*)\}")
_REDIRECT_TYPES = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
_WORD_TYPES = frozenset(
    {"word", "string", "raw_string", "concatenation", "ansi_c_string", "translated_string", "number",
     "simple_expansion", "expansion", "arithmetic_expansion", "brace_expression", "string_content", "variable_name",
     "special_variable_name", "heredoc_body", "heredoc_content", "regex", "extglob_pattern", "command_name",
     "file_descriptor", "test_operator", "array", "binary_expression", "unary_expression", "ternary_expression",
     "parenthesized_expression", "postfix_expression", "subscript", "heredoc_start", "heredoc_end"}
)  # fmt: skip

_HANDLERS: dict[str, Callable[[Analyzer, Any, Any], None]] = {
    "program": Analyzer.v_sequence,
    "list": Analyzer.v_sequence,
    "pipeline": Analyzer.v_pipeline,
    "command": lambda self, node, fed: self.command(node, fed),
    "redirected_statement": Analyzer.v_redirected,
    "negated_command": Analyzer.v_negated,
    "comment": Analyzer.v_comment,
    "subshell": Analyzer.v_isolated,
    "command_substitution": Analyzer.v_isolated,
    "process_substitution": Analyzer.v_isolated,
    "compound_statement": Analyzer.v_compound,
    "if_statement": Analyzer.v_compound,
    "elif_clause": Analyzer.v_compound,
    "else_clause": Analyzer.v_compound,
    "while_statement": Analyzer.v_compound,
    "for_statement": Analyzer.v_compound,
    "c_style_for_statement": Analyzer.v_compound,
    "case_statement": Analyzer.v_compound,
    "case_item": Analyzer.v_compound,
    "do_group": Analyzer.v_compound,
    "function_definition": Analyzer.v_function,
    "variable_assignment": Analyzer.v_assignment,
    "variable_assignments": Analyzer.v_sequence,
    "declaration_command": Analyzer.v_declaration,
    "unset_command": Analyzer.v_declaration,
    "test_command": Analyzer.v_test,
    "ERROR": Analyzer.v_error,
}


# Every program with a rule of its own; the two modules name disjoint sets of programs.
_RULES: dict[str, Rule] = {**RUNNER_RULES, **DANGER_RULES}
