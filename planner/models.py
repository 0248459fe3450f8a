"""The plan contract (DESIGN.md): fields may be added, never renamed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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


class Plan(BaseModel):
    model_config = ConfigDict(extra="ignore")

    goal: str = Field(description="The user's request restated as one goal.")
    """The user's request restated as one goal."""
    subtasks: list[Subtask] = Field(description="The subtasks, as a dependency graph.")
    """The subtasks; together with depends_on they form a DAG."""

    def get(self, subtask_id: str) -> Subtask:
        """The subtask with this id (KeyError if none)."""
        index = {s.id: s for s in self.subtasks}  # plans are small and mutable: no stale cache
        return index[subtask_id]


def plan_response_format() -> dict:
    """Structured output schema for the planner (OpenAI strict json_schema)."""
    sub = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "agent": {"type": "string"},
            "instruction": {"type": "string"},
            "depends_on": {"type": "array", "items": {"type": "string"}},
            "read_only": {"type": "boolean"},
        },
        "required": ["id", "agent", "instruction", "depends_on", "read_only"],
        "additionalProperties": False,
    }
    schema = {
        "type": "object",
        "properties": {"goal": {"type": "string"}, "subtasks": {"type": "array", "items": sub}},
        "required": ["goal", "subtasks"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "plan", "strict": True, "schema": schema}}
