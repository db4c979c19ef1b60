"""What gets flagged for review, and the review state machine — pure functions, no I/O.

:func:`flag_reasons` picks the verdicts a human should look at. :func:`apply_event` is the
one definition of how an audit event changes a flagged item; the workflow uses it to refuse
an invalid step *before* appending the event, and ``audit check`` replays the whole chain
through it to find ``flagged_item`` rows that disagree with their history.

>>> state = apply_event(None, Action.FLAGGED, "cli", {"content_digest": "sha256:" + "0" * 64,
...                                                   "reasons": ["tampered"]})
>>> state = apply_event(state, Action.CLAIMED, "ana", {})
>>> apply_event(state, Action.DECIDED, "ana", {"decision": "manipulated", "note": "pasted patch"}).status.value
'decided'
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from authenticity.errors import UsageError

if TYPE_CHECKING:
    from authenticity.verify import Verdict

__all__ = [
    "FLAG_STATES",
    "REASONS",
    "REASON_CONFLICT",
    "REASON_REPORT",
    "Action",
    "Decision",
    "ItemState",
    "ItemStatus",
    "apply_event",
    "flag_reasons",
    "merge_reasons",
    "parse_decision",
]

# Verdict states (their string values) that put content in the review queue. Kept as strings so
# this module does not import the verification pipeline (and with it the media stack) at runtime.
FLAG_STATES = ("tampered", "declared-synthetic", "likely-synthetic")
REASON_CONFLICT = "conflict"  # provenance vouches for the content, the detector says synthetic
REASON_REPORT = "report"  # a person reported it
REASONS = (*FLAG_STATES, REASON_CONFLICT, REASON_REPORT)


class ItemStatus(enum.StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DECIDED = "decided"


class Decision(enum.StrEnum):
    CONFIRMED_SYNTHETIC = "confirmed-synthetic"
    CONFIRMED_AUTHENTIC = "confirmed-authentic"
    MANIPULATED = "manipulated"
    INCONCLUSIVE = "inconclusive"


class Action(enum.StrEnum):
    """What an audit event records (the ``audit_event.action`` column)."""

    FLAGGED = "flagged"  # the policy flagged new content
    OCCURRENCE = "occurrence"  # flagged content was seen again
    REPORTED = "reported"  # a person reported content (new or already flagged)
    CLAIMED = "claimed"
    RELEASED = "released"
    DECIDED = "decided"


@dataclass(frozen=True)
class ItemState:
    """A flagged item as its events define it (what ``flagged_item`` must agree with)."""

    content_digest: str
    reasons: tuple[str, ...]
    occurrences: int
    status: ItemStatus = ItemStatus.OPEN
    claimed_by: str | None = None
    decision: Decision | None = None
    note: str | None = None


def flag_reasons(verdict: Verdict) -> tuple[str, ...]:
    """Why *verdict* needs a reviewer: its state (when it is a flag state) and/or ``conflict``; ``()`` = don't flag.

    >>> from authenticity.verify import Verdict, VerdictState
    >>> flag_reasons(Verdict("a.jpg", VerdictState.AUTHENTIC, (), "sha256:" + "0" * 64, conflict=True))
    ('conflict',)
    """
    reasons: list[str] = [verdict.state.value] if verdict.state.value in FLAG_STATES else []
    if verdict.conflict:
        reasons.append(REASON_CONFLICT)
    return tuple(reasons)


def merge_reasons(old: Iterable[str], new: Iterable[str]) -> tuple[str, ...]:
    """Union of both, first-seen order kept (the first reason stays the item's primary one).

    >>> merge_reasons(["tampered"], ["report", "tampered"])
    ('tampered', 'report')
    """
    return tuple(dict.fromkeys([*old, *new]))


def parse_decision(value: Decision | str) -> Decision:
    """A :class:`Decision` from its value, else ``usage.decision.invalid``.

    >>> parse_decision("manipulated")
    <Decision.MANIPULATED: 'manipulated'>
    """
    try:
        return Decision(value)
    except ValueError:
        known = ", ".join(d.value for d in Decision)
        raise UsageError("usage.decision.invalid", f"unknown decision {value!r}; choose one of: {known}") from None


def _reasons_of(payload: Mapping[str, Any]) -> tuple[str, ...]:
    reasons = payload.get("reasons", ())
    return tuple(r for r in reasons if isinstance(r, str)) if isinstance(reasons, list | tuple) else ()


def _new(payload: Mapping[str, Any], reasons: tuple[str, ...]) -> ItemState:
    return ItemState(content_digest=str(payload.get("content_digest", "")), reasons=reasons, occurrences=1)


def apply_event(state: ItemState | None, action: Action | str, actor: str, payload: Mapping[str, Any]) -> ItemState:
    """The item after one event; raises :class:`UsageError` when the step is not allowed.

    Codes: ``audit.item.exists`` (flagged twice), ``audit.item.not_found`` (an event before the item
    exists), ``audit.item.decided``, ``audit.item.claimed`` (claimed by someone else),
    ``audit.item.not_claimed`` (release/decide without holding the claim), ``usage.decision.invalid``,
    ``audit.event.action.unknown``.
    """
    try:
        action = Action(action)
    except ValueError:
        raise UsageError("audit.event.action.unknown", f"unknown audit action {action!r}") from None
    if action is Action.FLAGGED:
        if state is not None:
            raise UsageError("audit.item.exists", f"{state.content_digest} is already flagged")
        return _new(payload, _reasons_of(payload))
    if action is Action.REPORTED:
        if state is None:
            return _new(payload, (REASON_REPORT,))
        return replace(state, occurrences=state.occurrences + 1, reasons=merge_reasons(state.reasons, [REASON_REPORT]))
    if state is None:
        raise UsageError("audit.item.not_found", f"{action.value} event for an item that was never flagged")
    if action is Action.OCCURRENCE:
        return replace(state, occurrences=state.occurrences + 1,
                       reasons=merge_reasons(state.reasons, _reasons_of(payload)))  # fmt: skip
    if state.status is ItemStatus.DECIDED:
        raise UsageError("audit.item.decided", f"already decided ({state.decision}) by {state.claimed_by}")
    holder = state.claimed_by if state.status is ItemStatus.CLAIMED else None
    if action is Action.CLAIMED:
        if holder is not None and holder != actor:
            raise UsageError("audit.item.claimed", f"claimed by {holder}")
        # Claiming again what you already hold is a no-op (a retried request must not fail).
        return replace(state, status=ItemStatus.CLAIMED, claimed_by=actor)
    if holder != actor:
        raise UsageError("audit.item.not_claimed",
                         f"{actor} does not hold the claim" + (f" (held by {holder})" if holder else ""))  # fmt: skip
    if action is Action.RELEASED:
        return replace(state, status=ItemStatus.OPEN, claimed_by=None)
    decision = parse_decision(str(payload.get("decision")))
    note = payload.get("note")
    # The decider stays in ``claimed_by``: the row keeps who made the call.
    return replace(state, status=ItemStatus.DECIDED, decision=decision, note=note if isinstance(note, str) else None)
