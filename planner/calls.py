"""Compiled subtasks: a subtask that is one tool call the planner wrote, run with no model, and
the `{{ID}}` references that carry an earlier subtask's result into it.

Why references are held to data parameters: the plan is fixed before untrusted data is read.
A result (a file's text, a web page, a command's output) may fill a file's content, but it must
never choose the command, the path, the URL or the pattern of a call, or a planted line in a
file could pick what runs next. Each tool declares its data parameters (Tool.data_params); a
reference anywhere else is a plan error, and `substitute` refuses it again at run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from planner.models import Plan, Subtask
from tools.base import Tool
from tools.registry import format_validation, validate_arguments

REFERENCE = re.compile(r"\{\{(\s*)([A-Za-z0-9_.\-]{1,64})(\s*)\}\}")
"""`{{t1}}` is always a reference. `{{ t1 }}` (with spaces) is one only when t1 is a subtask of
the plan, so that a template's `{{ name }}` can still be written as literal text."""


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def references(value: Any, plan_ids: set[str]) -> list[str]:
    """The subtask ids a value refers to, in order of appearance (strings nested in lists and
    objects included)."""
    out: list[str] = []
    for text in _strings(value):
        for m in REFERENCE.finditer(text):
            spaced = bool(m.group(1) or m.group(3))
            if not spaced or m.group(2) in plan_ids:
                out.append(m.group(2))
    return out


def _fill(value: Any, results: Mapping[str, str], plan_ids: set[str]) -> Any:
    if isinstance(value, str):
        # One pass over the planned text: a result that itself contains "{{t2}}" stays as it is.
        def repl(m: re.Match[str]) -> str:
            spaced = bool(m.group(1) or m.group(3))
            if spaced and m.group(2) not in plan_ids:
                return m.group(0)
            return results[m.group(2)]

        return REFERENCE.sub(repl, value)
    if isinstance(value, dict):
        return {k: _fill(v, results, plan_ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, results, plan_ids) for v in value]
    return value


class BadReference(ValueError):
    """A reference the plan validation should have refused (a tampered or stale plan)."""


def substitute(
    tool: Tool, arguments: dict[str, Any], results: Mapping[str, str], plan_ids: set[str]
) -> dict[str, Any]:
    """The call's arguments with each `{{ID}}` replaced by that subtask's result text. Checked
    again here, at run time: a reference outside a data parameter, or to a result that is not
    given (not a dependency), raises BadReference and nothing runs."""
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        refs = references(value, plan_ids)
        if refs and key not in tool.data_params:
            raise BadReference(
                f"{tool.name}.{key} holds a reference ({{{{{refs[0]}}}}}), but only data parameters may; it was not run."
            )
        missing = [r for r in refs if r not in results]
        if missing:
            raise BadReference(
                f"{{{{{missing[0]}}}}} is not a finished dependency of this subtask; it was not run."
            )
        out[key] = _fill(value, results, plan_ids) if refs else value
    return out


def data_parameters(tool: Tool) -> str:
    return ", ".join(f"{tool.name}.{p}" for p in sorted(tool.data_params)) or "none"


def call_errors(
    s: Subtask, plan: Plan, offered: Mapping[str, Tool], all_tools: Mapping[str, Tool]
) -> list[str]:
    """Every problem with subtask `s`'s call, one sentence each. `offered` is what its agent is
    given for this subtask (least privilege applied), `all_tools` what the agent has at all."""
    call = s.call
    if call is None:
        return []
    t = offered.get(call.tool)
    if t is None:
        if call.tool in all_tools:
            return [
                f"Subtask {s.id!r} is read-only but calls {call.tool}, which changes things; set read_only "
                f"to false if it must change something, or call one of: {', '.join(sorted(offered))}."
            ]
        return [
            f"Subtask {s.id!r} calls {call.tool!r}, which agent {s.agent!r} does not have; its tools are: "
            f"{', '.join(sorted(all_tools)) or 'none'}. Give the call to an agent that has the tool."
        ]
    errors: list[str] = []
    try:
        validate_arguments(t, call.arguments)
    except ValidationError as e:
        errors.append(f"Subtask {s.id!r}: {format_validation(call.tool, e)}")
    plan_ids = {p.id for p in plan.subtasks}
    for key, value in call.arguments.items():
        for ref in dict.fromkeys(references(value, plan_ids)):
            if key not in t.data_params:
                errors.append(
                    f"Subtask {s.id!r} puts the reference {{{{{ref}}}}} in {call.tool}.{key}, but a result may "
                    f"only fill a data parameter ({data_parameters(t)}), never choose a command, path, URL or "
                    "pattern. Write the value into the call, or make the subtask an agent subtask."
                )
            elif ref not in s.depends_on:
                errors.append(
                    f"Subtask {s.id!r} refers to {{{{{ref}}}}}, which is not in its depends_on; add {ref!r} to "
                    "depends_on or remove the reference."
                )
    return errors
