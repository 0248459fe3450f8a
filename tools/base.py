"""Declaring a tool: a typed function with a Google-style docstring.

The name, description and argument schema are derived from the function; whether it is
read-only and what effect it has are declared once, in the decorator.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model

from runtime.context import ApprovalRequest, RunContext

Effect = Literal["read", "write", "execute", "network"]
ApprovalHook = Callable[[RunContext, dict[str, Any]], ApprovalRequest | None]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    fn: Callable[..., Any]
    args_model: type[BaseModel]
    effect: Effect
    read_only: bool
    takes_ctx: bool
    approval: ApprovalHook | None = None
    """Returns what to ask the user before running, or None when no approval is needed.
    May raise ToolDenied to refuse outright (a denied command)."""
    read_only_mode: bool = False
    """A side-effecting tool that can also serve a read-only subtask, restricted to operations
    it can prove read-only (run_command: only commands the policy allows without asking). Its
    own checks enforce the restriction when ctx.read_only is set."""
    data_params: frozenset[str] = frozenset()
    """Parameters that carry content and never choose what runs or what is touched (write_file's
    `content`): the only ones a compiled plan may fill with `{{ID}}` references to the results
    of earlier subtasks. A command, a path, a URL, a pattern or a query is never one."""
    parameters: dict[str, Any] | None = None
    """A JSON schema given as is (an MCP server's tool) instead of one derived from a function:
    then `args_model` accepts any object, the schema is checked by validate_arguments, and `fn`
    is called as fn(ctx, arguments_dict)."""
    source: str = "built-in"
    """Where the tool comes from, for `shunter tools`: built-in, plugin, or "mcp NAME"."""

    def schema(self) -> dict[str, Any]:
        """The Chat Completions tool definition, with a strict JSON schema (a given schema is
        sent as it is, not strict: strict mode cannot express most of them)."""
        if self.parameters is not None:
            return {
                "type": "function",
                "function": {
                    "name": self.name,
                    "description": self.description,
                    "parameters": self.parameters,
                },
            }
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": strict_schema(self.args_model),
                "strict": True,
            },
        }

    async def invoke(self, ctx: RunContext, args: BaseModel) -> Any:
        if self.parameters is not None:
            return await self.fn(ctx, args.model_dump())
        kwargs = {k: getattr(args, k) for k in type(args).model_fields}
        call_args = (ctx,) if self.takes_ctx else ()
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(*call_args, **kwargs)
        # A thread cannot be interrupted: when this call is cancelled (timeout, Ctrl-C), wait
        # for the thread to return, so its writes are over (and recorded) before the
        # scheduler moves on. Sync tools should therefore be short; long work belongs in
        # async tools or child processes, which are killed.
        future = asyncio.ensure_future(asyncio.to_thread(self.fn, *call_args, **kwargs))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    effect: Effect = "read",
    approval: ApprovalHook | None = None,
    read_only_mode: bool = False,
    data_params: tuple[str, ...] = (),
) -> Any:
    """Turn a function into a Tool. `effect` decides read-only-ness: "read" and "network" (GET-only
    tools that never touch the workspace) are read-only and may run in parallel. `data_params`
    names the string parameters that only carry content (see Tool.data_params)."""

    def wrap(f: Callable[..., Any]) -> Tool:
        return make_tool(
            f,
            name=name,
            effect=effect,
            approval=approval,
            read_only_mode=read_only_mode,
            data_params=data_params,
        )

    return wrap(fn) if fn is not None else wrap


def make_tool(
    f: Callable[..., Any],
    *,
    name: str | None,
    effect: Effect,
    approval: ApprovalHook | None,
    read_only_mode: bool = False,
    data_params: tuple[str, ...] = (),
) -> Tool:
    summary, arg_docs = parse_docstring(inspect.getdoc(f) or "")
    hints = get_type_hints(f)
    params = list(inspect.signature(f).parameters.values())
    takes_ctx = bool(params) and (params[0].name == "ctx" or hints.get(params[0].name) is RunContext)
    if takes_ctx:
        params = params[1:]
    field_defs: dict[str, Any] = {}
    from pydantic import Field

    for p in params:
        default = ... if p.default is inspect.Parameter.empty else p.default
        field_defs[p.name] = (hints.get(p.name, str), Field(default, description=arg_docs.get(p.name, "")))
    model = create_model(f"{f.__name__}_args", __config__=ConfigDict(extra="forbid"), **field_defs)
    _check_data_params(f.__name__, data_params, model)
    return Tool(
        name=name or f.__name__,
        description=summary or f.__name__.replace("_", " "),
        fn=f,
        args_model=model,
        effect=effect,
        read_only=effect in ("read", "network"),
        takes_ctx=takes_ctx,
        approval=approval,
        read_only_mode=read_only_mode,
        data_params=frozenset(data_params),
    )


class AnyArguments(BaseModel):
    """The arguments of a tool with a given JSON schema: any object (the schema checks them)."""

    model_config = ConfigDict(extra="allow")


def _check_data_params(fn_name: str, data_params: tuple[str, ...], model: type[BaseModel]) -> None:
    # A typo here would silently forbid references, or a wrong type would make them useless:
    # fail when the tool is defined, not when a plan uses it.
    for p in data_params:
        info = model.model_fields.get(p)
        if info is None:
            raise TypeError(f"@tool {fn_name}: data_params names {p!r}, which is not one of its parameters.")
        if info.annotation not in (str, str | None):
            raise TypeError(f"@tool {fn_name}: data parameter {p!r} must be a str (references fill text).")


_SECTION = re.compile(r"^(Args|Arguments|Returns|Raises|Yields|Examples?|Notes?):\s*$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and per-argument descriptions."""
    lines = doc.splitlines()
    description: list[str] = []
    args: dict[str, str] = {}
    section = None
    current = None
    for line in lines:
        m = _SECTION.match(line.strip())
        if m and not line.startswith(" "):
            section = m.group(1)
            current = None
            continue
        if section is None:
            description.append(line)
        elif section in ("Args", "Arguments"):
            am = re.match(r"^\s+(\*{0,2}\w+)\s*(\([^)]*\))?:\s*(.*)$", line)
            if am and (len(line) - len(line.lstrip())) <= 4:
                current = am.group(1).lstrip("*")
                args[current] = am.group(3).strip()
            elif current and line.strip():
                args[current] += " " + line.strip()
    return "\n".join(description).strip(), args


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAI strict mode: every property required, no extra properties; optional ones nullable.
    Derived once per model and shared: treat it as read-only (copy.deepcopy it to change it)."""
    return _strict_schema(model)


@functools.cache
def _strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    # pydantic's schema generation costs ~2 ms a model, and every planner and agent request
    # needs the schemas of its tools: derive each once.
    schema = model.model_json_schema()
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    out_props = {}
    for key, prop in props.items():
        prop = {k: v for k, v in prop.items() if k not in ("title", "default")}
        if key not in required and not _is_nullable(prop):
            prop = {
                "anyOf": [prop, {"type": "null"}],
                **({"description": prop["description"]} if "description" in prop else {}),
            }
            prop["anyOf"][0].pop("description", None)
        out_props[key] = prop
    result = {
        "type": "object",
        "properties": out_props,
        "required": list(props),
        "additionalProperties": False,
    }
    if "$defs" in schema:
        result["$defs"] = schema["$defs"]
    return result


def _is_nullable(prop: dict[str, Any]) -> bool:
    return any(o.get("type") == "null" for o in prop.get("anyOf", []))


def drop_nulls_for_defaults(model: type[BaseModel], args: dict[str, Any]) -> dict[str, Any]:
    """Strict mode makes the model send null for an omitted optional argument: use the default."""
    out = dict(args)
    for key, info in model.model_fields.items():
        if key in out and out[key] is None and not info.is_required():
            del out[key]
    return out
