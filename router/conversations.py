"""Which conversation line a new run joins: `run --continue / --conversation / --from` resolved
against the store to a conversation id and the run it follows up on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from router.lookup import find_run
from runtime.errors import ConfigError
from runtime.store import Store


@dataclass(frozen=True)
class FollowUp:
    """How a new run relates to earlier ones (`run --continue / --conversation / --from`)."""

    continue_: bool = False
    """Follow up on the latest run of the workspace."""
    conversation: str | None = None
    """Follow up on the latest run of this conversation."""
    from_run: str | None = None
    """Branch a new conversation line from this run."""


@dataclass(frozen=True)
class ConversationLine:
    """Where a new run goes: its conversation, the run it follows, and what it starts or branches."""

    conversation_id: str
    parent_run_id: str | None
    new_conversation: str | None
    branched_from: str | None


def resolve_follow_up(store: Store, follow: FollowUp | None) -> ConversationLine:
    """The line `follow` names (a new conversation when it names none); ConfigError if it names
    nothing that exists."""
    follow = follow or FollowUp()
    if sum(bool(x) for x in (follow.continue_, follow.conversation, follow.from_run)) > 1:
        raise ConfigError("Use only one of --continue, --conversation and --from.")
    if follow.from_run:
        parent = find_run(store, follow.from_run)
        new = uuid.uuid4().hex[:12]
        return ConversationLine(new, parent["id"], new, parent["id"])
    if follow.conversation:
        if not store.has_conversation(follow.conversation):
            raise ConfigError(
                f"No conversation {follow.conversation!r} in this workspace; `shunter runs` shows them."
            )
        last = store.latest_run(follow.conversation)
        return ConversationLine(follow.conversation, last["id"] if last else None, None, None)
    if follow.continue_:
        last = store.latest_run()
        if last is None:
            raise ConfigError(
                "There is no earlier run to continue in this workspace; drop --continue to start afresh."
            )
        return ConversationLine(last["conversation_id"] or last["id"], last["id"], None, None)
    new = uuid.uuid4().hex[:12]
    return ConversationLine(new, None, new, None)
