"""The planner's answer as it streams: each subtask handed on the moment its JSON is complete.

The accumulated text is parsed with pydantic_core's partial JSON parser (no parser of our own).
A subtask counts as complete once the next one has begun or the subtasks array has closed, so
a half-written instruction is never acted on. Each complete subtask is checked against the ones
before it only: it may depend only on subtasks already emitted, so no cycle can form.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import from_json

from agents.registry import AgentRegistry
from planner.models import Plan, Subtask
from planner.planner import normalise
from planner.validate import validate_plan
from runtime.context import RunContext

_CLOSERS = frozenset("}],")


class PlanStream:
    """Feed it text deltas; `feed` returns the subtasks that became complete with this delta."""

    def __init__(self) -> None:
        self.text = ""
        self.emitted: list[Subtask] = []
        self.goal = ""
        self.errors: list[str] = []
        """Problems found while streaming (a subtask that cannot be read, or changed on a retry)."""
        self._seen = 0  # subtasks of the current attempt already handled

    def restart(self) -> None:
        """The request is being retried: its answer starts over. Subtasks it repeats exactly are
        not emitted twice; one that differs from what already started is an error."""
        self.text, self._seen = "", 0

    def feed(self, delta: str) -> list[Subtask]:
        self.text += delta
        if self.errors or not _CLOSERS.intersection(delta):
            return []  # nothing can have completed without a closing character
        return self._scan(final=False)

    def finish(self) -> list[Subtask]:
        """The stream ended: the last subtask is complete too."""
        return [] if self.errors else self._scan(final=True)

    def _scan(self, final: bool) -> list[Subtask]:
        start = self.text.find("{")
        if start < 0:
            return []
        try:
            data = from_json(self.text[start:], allow_partial=True)
        except ValueError:
            return []  # not (yet) JSON, or trailing text: the whole answer is checked at the end
        subs = data.get("subtasks") if isinstance(data, dict) else None
        if not isinstance(subs, list):
            return []
        if isinstance(data.get("goal"), str):
            self.goal = data["goal"]
        # Keys come in the order written: a key after "subtasks" means the array has closed.
        closed = final or list(data)[-1] != "subtasks"
        complete = len(subs) if closed else len(subs) - 1
        out: list[Subtask] = []
        while self._seen < complete and not self.errors:
            index, raw = self._seen, subs[self._seen]
            self._seen += 1
            try:
                sub = Subtask.model_validate(raw)
            except ValidationError as e:
                first = str(e).splitlines()[1:2] or ["invalid"]
                self.errors.append(f"Subtask number {index + 1} could not be read ({first[0].strip()}).")
                break
            if index < len(self.emitted):  # a retried request repeating what already started
                if sub != self.emitted[index]:
                    self.errors.append(
                        f"Subtask {sub.id!r} changed when the request was retried; send the whole plan again."
                    )
                continue
            self.emitted.append(sub)
            out.append(sub.model_copy(deep=True))  # checked and normalised by the caller
        return out


def check_streamed(
    sub: Subtask, before: list[Subtask], agents: AgentRegistry, ctx: RunContext
) -> tuple[list[str], list[str]]:
    """(notes, errors) for one streamed subtask, checked with the subtasks emitted before it:
    the same validation as a whole plan, so a dependency on a later subtask 'does not exist'."""
    notes = normalise(Plan(goal="", subtasks=[sub]), agents, ctx)
    errors = validate_plan(Plan(goal="", subtasks=[*before, sub]), agents, ctx.settings, ctx.tools)
    return notes, errors
