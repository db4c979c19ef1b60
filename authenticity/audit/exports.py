"""Exports of the review queue: a CSV/JSON table of items and decisions, and a labelled image folder.

The labelled folder has the layout the detector's evaluation reads
(:func:`authenticity.detection.evaluate.load_labelled_folder`)::

    OUT/real/<primary reason>/<sha256 hex><suffix>     confirmed-authentic
    OUT/fake/<primary reason>/<sha256 hex><suffix>     confirmed-synthetic

so ``authenticity detector eval --real OUT/real --fake OUT/fake`` measures the detector on what
reviewers confirmed, per flag reason. ``manipulated`` and ``inconclusive`` items are left out on
purpose: an edited camera photo is not a synthetic image, and the detector must not learn that it is.

>>> # export(session, settings, "csv", Path("queue.csv")); export_labelled(session, settings, Path("labelled"))
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from authenticity._files import write_atomically
from authenticity.audit._media import media_file
from authenticity.audit.policy import REASONS, Decision
from authenticity.config import Settings
from authenticity.errors import AuthenticityError, UsageError
from authenticity.provenance.manifest import format_timestamp
from authenticity.registry.models import AuditEvent, FlaggedItem

__all__ = ["CSV_COLUMNS", "LabelledExport", "export", "export_labelled", "item_to_dict"]

CSV_COLUMNS = ("id", "content_digest", "media_type", "media_path", "reasons", "state", "score", "occurrences",
               "status", "claimed_by", "decision", "note", "first_seen_at", "last_seen_at", "decided_at")  # fmt: skip
_LABEL_DIRS = {Decision.CONFIRMED_AUTHENTIC.value: "real", Decision.CONFIRMED_SYNTHETIC.value: "fake"}
_IMAGE_SUFFIXES = frozenset({".jpg", ".png", ".webp", ".gif", ".tif", ".heic"})  # what the evaluation loads
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def item_to_dict(item: FlaggedItem, *, with_verdict: bool = False) -> dict[str, Any]:
    """A flagged item as JSON-ready data (timestamps as :func:`format_timestamp` spells them).

    >>> # item_to_dict(get_item(session, 7))["status"]
    """
    verdict = json.loads(item.verdict) if item.verdict else None
    out: dict[str, Any] = {
        "id": item.id, "content_digest": item.content_digest, "media_type": item.media_type,
        "media_path": item.media_path, "reasons": json.loads(item.reasons),
        "state": verdict.get("state") if isinstance(verdict, dict) else None, "score": item.score,
        "occurrences": item.occurrences, "status": item.status, "claimed_by": item.claimed_by,
        "decision": item.decision, "note": item.note, "first_seen_at": format_timestamp(item.first_seen_at),
        "last_seen_at": format_timestamp(item.last_seen_at),
        "decided_at": format_timestamp(item.decided_at) if item.decided_at else None,
    }  # fmt: skip
    if with_verdict:
        out["verdict"] = verdict
    return out


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    text = str(value)
    # Reviewer notes are free text: a leading "=" would run as a formula when the CSV is opened in a spreadsheet.
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA_START) else text


def _write_atomically(out: Path, data: bytes) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, data, mode=0o600)  # audit data: readable by its owner only


def export(session: Session, settings: Settings, fmt: str, out: Path) -> int:
    """Write every item with its decision to *out* as ``csv`` or ``json``; returns the number of items.

    JSON also names the chain head (``seq``, ``event_hash``) the export reflects, so it can be
    matched against a later ``audit check``. Codes: ``usage.format.invalid``, ``usage.out.is_directory``,
    ``usage.out.exists`` (an existing file is never replaced).

    >>> # export(session, settings, "json", Path("queue.json"))
    """
    if fmt not in ("csv", "json"):
        raise UsageError("usage.format.invalid", f"unknown export format {fmt!r}; choose csv or json")
    if out.is_dir():
        raise UsageError("usage.out.is_directory", f"{out}: is a directory")
    if out.exists():  # never replace a file the user has (it could be the registry itself)
        raise UsageError("usage.out.exists", f"{out}: already exists (choose a new file name)")
    items = [item_to_dict(i) for i in session.scalars(select(FlaggedItem).order_by(FlaggedItem.id))]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows([_cell(item[c]) for c in CSV_COLUMNS] for item in items)
        data = buffer.getvalue().encode()
    else:
        head = session.execute(select(AuditEvent.seq, AuditEvent.event_hash).order_by(AuditEvent.seq.desc())
                               .limit(1)).first()  # fmt: skip
        chain_head = {"seq": head[0], "event_hash": head[1].hex()} if head else None
        data = json.dumps({"items": items, "chain_head": chain_head}, indent=2).encode() + b"\n"
    _write_atomically(out, data)
    return len(items)


@dataclass(frozen=True)
class LabelledExport:
    """What :func:`export_labelled` wrote, and each decided item it left out with the reason's code."""

    real: int
    fake: int
    skipped: tuple[tuple[int, str], ...]


def export_labelled(session: Session, settings: Settings, out_dir: Path) -> LabelledExport:
    """Copy the stored media of confirmed items into ``out_dir/{real,fake}/<reason>/``.

    Every copy is re-hashed against its item first (``audit.media.corrupt``: a swapped file in the
    store must not become a training label). Items without a stored image are skipped with
    ``audit.media.missing``, ``audit.media.path_invalid`` or ``audit.media.not_image`` (video).
    Refuses a non-empty *out_dir* (``usage.out.not_empty``): a stale label left from an earlier
    export would contradict a changed decision.

    >>> # export_labelled(session, settings, Path("labelled")).fake
    """
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError("usage.out.not_empty", f"{out_dir}: exists and is not an empty folder")
    query = select(FlaggedItem).where(FlaggedItem.decision.in_(list(_LABEL_DIRS))).order_by(FlaggedItem.id)
    counts = {"real": 0, "fake": 0}
    skipped: list[tuple[int, str]] = []
    for item in session.scalars(query):
        try:
            source = media_file(settings, item.media_path, item.content_digest)
        except AuthenticityError as exc:
            skipped.append((item.id, exc.code))
            continue
        if source.suffix not in _IMAGE_SUFFIXES:
            skipped.append((item.id, "audit.media.not_image"))
            continue
        label = _LABEL_DIRS[str(item.decision)]
        reasons = json.loads(item.reasons)
        # Only known reason words become folder names (the column is editable by whoever owns the database).
        folder = out_dir / label / (reasons[0] if reasons and reasons[0] in REASONS else "default")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / source.name)
        counts[label] += 1
    out_dir.mkdir(parents=True, exist_ok=True)
    return LabelledExport(counts["real"], counts["fake"], tuple(skipped))
