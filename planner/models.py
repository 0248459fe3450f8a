"""The plan contract (DESIGN.md): fields may be added, never renamed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from tools.base import Tool


class Call(BaseModel):
    """One tool call written by the planner: the router runs it with no model request."""

    model_config = ConfigDict(extra="forbid")

    tool: str = Field(description="Name of a tool the subtask's agent has.")
    """A tool of the subtask's agent (a read-only subtask: one of its read-only tools)."""
    arguments: dict[str, Any] = Field(
        default_factory=dict,
        description="The tool's arguments; '{{ID}}' in a data parameter stands for subtask ID's result.",
    )
    """Validated against the tool's schema. A string may hold `{{ID}}` (ID in depends_on) only in
    the tool's data parameters; it is replaced with that subtask's result text at run time."""


class Subtask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="Short unique id, e.g. 't1'.")
    """Short unique id, referenced by depends_on."""
    agent: str = Field(description="Name of the registered specialist that does this subtask.")
    """Name of the registered specialist that does it."""
    instruction: str = Field(description="Self-contained instruction, passed verbatim to the specialist.")
    """Passed to the specialist verbatim; self-contained, since it sees only upstream results."""
    depends_on: list[str] = Field(
        default_factory=list, description="Ids of subtasks whose results this one needs."
    )
    """Ids of subtasks that must succeed first; their results reach this one quoted as data."""
    read_only: bool = Field(
        description="True only if the subtask changes nothing (no writes, no side-effecting commands)."
    )
    """True only when the subtask changes nothing; read-only subtasks may run in parallel."""
    call: Call | None = Field(
        default=None,
        description="Set when the subtask is exactly one tool call whose arguments are known now: it runs with no model.",
    )
    """A compiled subtask: exactly this tool call, no model request; its result is the tool's output."""


class Plan(BaseModel):
    model_config = ConfigDict(extra="ignore")

    goal: str = Field(description="The user's request restated as one goal.")
    """The user's request restated as one goal."""
    subtasks: list[Subtask] = Field(description="The subtasks, as a dependency graph.")
    """The subtasks; together with depends_on they form a DAG."""
    answer: str | None = Field(
        default=None,
        description="Id of the subtask whose result is the answer; then no synthesis is written.",
    )
    """When set, the run's answer is this subtask's result and no synthesis request is made."""

    def get(self, subtask_id: str) -> Subtask:
        """The subtask with this id (KeyError if none)."""
        index = {s.id: s for s in self.subtasks}  # plans are small and mutable: no stale cache
        return index[subtask_id]


def _call_schemas(tools: list[Tool], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """One strict object per callable tool: its name as a constant, its own argument schema."""
    from tools.base import strict_schema

    out = []
    for t in tools:
        schema = strict_schema(t.args_model)  # shared: read, never changed
        own = schema.get("$defs", {})
        params = {k: v for k, v in schema.items() if k != "$defs"}
        if any(k in defs and defs[k] != v for k, v in own.items()):
            continue  # a clashing nested type: left to the JSON-in-text check, which validates it too
        defs.update(own)
        out.append(
            {
                "type": "object",
                "properties": {"tool": {"type": "string", "enum": [t.name]}, "arguments": params},
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            }
        )
    return out


def plan_response_format(tools: list[Tool] | None = None) -> dict:
    """Structured output schema for the planner (OpenAI strict json_schema). `tools` are the
    ones a subtask may call directly; each gets its own branch of `call`, so the server holds
    the arguments to the tool's real schema."""
    defs: dict[str, Any] = {}
    calls = _call_schemas(tools or [], defs)
    sub = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "agent": {"type": "string"},
            "instruction": {"type": "string"},
            "depends_on": {"type": "array", "items": {"type": "string"}},
            "read_only": {"type": "boolean"},
            "call": {"anyOf": [*calls, {"type": "null"}]},
        },
        "required": ["id", "agent", "instruction", "depends_on", "read_only", "call"],
        "additionalProperties": False,
    }
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "goal": {"type": "string"},
            "subtasks": {"type": "array", "items": sub},
            "answer": {"type": ["string", "null"]},
        },
        "required": ["goal", "subtasks", "answer"],
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return {"type": "json_schema", "json_schema": {"name": "plan", "strict": True, "schema": schema}}
