"""The audit chain's newest head, pinned outside the database.

A hash chain proves that nothing *inside* it was edited or removed, but whoever controls the
database can cut its tail (delete the newest events and roll the item rows back) and leave a
shorter chain that checks out. Every committed append therefore also records ``(seq, event_hash)``
in ``HOME/audit/chain-head.json`` on the service host — the same trust boundary as the log key
file — and :func:`check_checkpoint` demands that the database chain still contains that head.

Writes happen after the transaction commits (a rolled-back append must not be pinned), under a
file lock, and only ever move the pin forward, so concurrent processes cannot move it back.

>>> # pin_after_commit(session, settings, seq=7, event_hash=digest)
>>> # problems = check_checkpoint(settings, {7: digest})
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

from authenticity._files import write_atomically
from authenticity.config import Settings

__all__ = ["CHECKPOINT_FILE", "checkpoint_path", "pin_after_commit", "read_checkpoint", "write_checkpoint"]

CHECKPOINT_FILE = "chain-head.json"


def checkpoint_path(settings: Settings) -> Path:
    """``HOME/audit/chain-head.json``."""
    return settings.home / "audit" / CHECKPOINT_FILE


def read_checkpoint(settings: Settings) -> tuple[int, bytes] | None:
    """The pinned ``(seq, event_hash)``, or None before the first append on this host."""
    path = checkpoint_path(settings)
    try:
        data = json.loads(path.read_text())
        return int(data["seq"]), bytes.fromhex(data["event_hash"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return (-1, b"")  # unreadable pin: reported by the check, never silently ignored


def write_checkpoint(settings: Settings, seq: int, event_hash: bytes) -> None:
    """Pin ``(seq, event_hash)`` unless a newer head is already pinned (atomic, under a file lock)."""
    path = checkpoint_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_checkpoint(settings)
        if current is not None and current[0] >= seq:
            return
        write_atomically(path, json.dumps({"seq": seq, "event_hash": event_hash.hex()}).encode(), mode=0o600)


def pin_after_commit(session: Session, settings: Settings, *, seq: int, event_hash: bytes) -> None:
    """Write the checkpoint once *session*'s transaction has committed (never for a rollback)."""

    def pin(_session: Session) -> None:
        write_checkpoint(settings, seq, event_hash)

    event.listen(session, "after_commit", pin, once=True)
