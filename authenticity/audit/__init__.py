"""Audit of flagged content: the flagging policy, the review workflow and the signed audit chain.

``policy`` is pure (what to flag, the review state machine), ``chain`` appends and checks the
hash-chained, log-key-signed ``audit_event`` table, ``workflow`` holds the use cases (each one
audit event, inside the caller's transaction) and ``exports`` writes CSV/JSON and labelled folders.

>>> from authenticity.audit import Decision, ItemStatus
>>> Decision("manipulated"), ItemStatus.OPEN.value
(<Decision.MANIPULATED: 'manipulated'>, 'open')
"""

from __future__ import annotations

from authenticity.audit.chain import ChainProblem, ChainReport, append_event, check_chain
from authenticity.audit.exports import LabelledExport, export, export_labelled, item_to_dict
from authenticity.audit.policy import Action, Decision, ItemStatus, flag_reasons
from authenticity.audit.workflow import (
    claim,
    decide,
    flag_verdict,
    get_item,
    item_history,
    list_items,
    release,
    report,
)

__all__ = [
    "Action",
    "ChainProblem",
    "ChainReport",
    "Decision",
    "ItemStatus",
    "LabelledExport",
    "append_event",
    "check_chain",
    "claim",
    "decide",
    "export",
    "export_labelled",
    "flag_reasons",
    "flag_verdict",
    "get_item",
    "item_history",
    "item_to_dict",
    "list_items",
    "release",
    "report",
]
