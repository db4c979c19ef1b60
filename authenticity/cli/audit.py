"""``authenticity audit …``: the review queue from the command line (a thin shell over ``authenticity.audit``)."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from authenticity.audit import workflow
from authenticity.audit.chain import check_chain
from authenticity.audit.checkpoint import read_checkpoint
from authenticity.audit.exports import export, export_labelled, item_to_dict
from authenticity.audit.policy import REASONS, Decision
from authenticity.cli._common import err_console, expand_paths, out_console, require_existing, settings
from authenticity.cli._errors import EXIT_BAD, EXIT_OK, EXIT_USAGE, guarded, report_error
from authenticity.config import Settings
from authenticity.errors import AuthenticityError, UsageError
from authenticity.provenance.keystore import trusted_log_key_ids
from authenticity.provenance.manifest import format_timestamp
from authenticity.registry import db
from authenticity.registry.models import FlaggedItem
from authenticity.registry.store import open_registry

_REASONS_HELP = ", ".join(REASONS) + "."
_DECISIONS_HELP = ", ".join(d.value for d in Decision) + "."
app = typer.Typer(help="Review flagged content: queue, claims, decisions, signed audit chain.", no_args_is_help=True)


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def _item_id(text: str) -> int:
    # Parsed here rather than by Typer so a bad id is one ``error: <code>`` line like every other error.
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise UsageError("usage.item_id.invalid", f"{text!r} is not an item id")
    return int(text)


def _print_item(item: dict[str, object]) -> None:
    for key, value in item.items():
        if key != "verdict":
            out_console.print(f"{key:>14}: {'' if value is None else value}", markup=False)


@app.command("list")
@guarded
def list_cmd(
    status: str | None = typer.Option(None, "--status", help="open, claimed or decided."),
    reason: str | None = typer.Option(None, "--reason", help=_REASONS_HELP),
    decision: str | None = typer.Option(None, "--decision", help="Only items decided this way."),
    min_score: float | None = typer.Option(None, "--min-score", help="Only items the detector scored at least this."),
    limit: int = typer.Option(50, "--limit"),
    offset: int = typer.Option(0, "--offset"),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per item on stdout."),
) -> None:
    """The review queue, oldest first."""
    engine = open_registry(settings())
    with db.session_scope(engine, read_only=True) as session:
        items = [item_to_dict(i) for i in workflow.list_items(session, status=status, reason=reason,
                 decision=decision, min_score=min_score, limit=limit, offset=offset)]  # fmt: skip
    if as_json:
        for item in items:
            print(json.dumps(item))
        return
    table = Table("id", "status", "reasons", "score", "seen", "claimed by", "decision", "content")
    for item in items:
        score = item["score"]
        table.add_row(str(item["id"]), str(item["status"]), ", ".join(item["reasons"]),
                      "" if score is None else f"{score:.3f}", str(item["occurrences"]), item["claimed_by"] or "",
                      item["decision"] or "", str(item["content_digest"])[:23] + "…")  # fmt: skip
    out_console.print(table)


@app.command("show")
@guarded
def show(item_id: str = typer.Argument(..., help="Item id."), as_json: bool = typer.Option(False, "--json")) -> None:
    """One item with its verdict and audit history."""
    engine = open_registry(settings())
    with db.session_scope(engine, read_only=True) as session:
        item = item_to_dict(workflow.get_item(session, _item_id(item_id)), with_verdict=True)
        history = [{"seq": e.seq, "at": format_timestamp(e.created_at), "actor": e.actor, "action": e.action,
                    "payload": json.loads(e.payload)} for e in workflow.item_history(session, item["id"])]  # fmt: skip
    if as_json:
        print(json.dumps({**item, "history": history}, indent=2))
        return
    _print_item(item)
    for event in history:
        out_console.print(f"  #{event['seq']} {event['at']} {event['actor']} {event['action']} "
                          f"{json.dumps(event['payload'])}", markup=False)  # fmt: skip


def _review(item_id: str, change: Callable[[Session, Settings, int], FlaggedItem]) -> None:
    cfg = settings()
    number = _item_id(item_id)
    engine = open_registry(cfg)
    with db.session_scope(engine) as session:
        item = change(session, cfg, number)
        out_console.print(f"item {item.id}: {item.status}" + (f" ({item.decision})" if item.decision else "")
                          + (f" by {item.claimed_by}" if item.claimed_by else ""), markup=False)  # fmt: skip


@app.command("claim")
@guarded
def claim(item_id: str = typer.Argument(...), reviewer: str = typer.Option(..., "--reviewer")) -> None:
    """Take an open item for review."""
    _review(item_id, lambda session, cfg, number: workflow.claim(session, cfg, number, reviewer))


@app.command("release")
@guarded
def release(item_id: str = typer.Argument(...), reviewer: str = typer.Option(..., "--reviewer")) -> None:
    """Give a claimed item back to the queue."""
    _review(item_id, lambda session, cfg, number: workflow.release(session, cfg, number, reviewer))


@app.command("decide")
@guarded
def decide(
    item_id: str = typer.Argument(...),
    reviewer: str = typer.Option(..., "--reviewer"),
    decision: str = typer.Option(..., "--decision", help=_DECISIONS_HELP),
    note: str = typer.Option(..., "--note", help="Why (kept in the signed audit chain)."),
) -> None:
    """Decide an item you have claimed (final)."""
    _review(item_id, lambda session, cfg, number: workflow.decide(session, cfg, number, reviewer, decision, note))


@app.command("report")
@guarded
def report(
    file: Path | None = typer.Argument(None, help="The file to report."),
    digest: str | None = typer.Option(None, "--digest", help="Or the content digest of an item already queued."),
    reason: str = typer.Option(..., "--reason", help="What is wrong with it."),
    actor: str = typer.Option(_default_actor(), "--actor", help="Who reports."),
) -> None:
    """Report a file (or a queued digest) for review."""
    if file is not None:
        require_existing(file)
    cfg = settings()
    engine = open_registry(cfg)
    with db.session_scope(engine) as session:
        item = workflow.report(session, cfg, media=file, content_digest=digest, reason=reason, actor=actor)
        out_console.print(f"reported: item {item.id} ({item.status}, seen {item.occurrences}x)", markup=False)


@app.command("flag")
@guarded
def flag(
    paths: list[Path] = typer.Argument(..., help="Files or folders to verify and flag."),
    no_detector: bool = typer.Option(False, "--no-detector", help="Provenance only: never run the detector."),
    actor: str = typer.Option(_default_actor(), "--actor", help="Who flags."),
) -> None:
    """Verify files and queue those the policy selects (tampered, synthetic, conflicting); prints item ids."""
    from authenticity.verify import Verifier

    files = list(expand_paths(paths))
    if not files:
        raise UsageError("usage.no_files", "no files to flag")
    cfg = settings()
    verifier = Verifier(cfg, detector=not no_detector)
    errors = 0
    for path in files:
        try:
            require_existing(path)
            verdict = verifier.verify(path)
            with db.session_scope(verifier.engine) as session:
                item = workflow.flag_verdict(session, cfg, verdict, media=path, actor=actor)
                item_id = item.id if item is not None else None
        except AuthenticityError as exc:
            errors += 1
            report_error(exc)
            continue
        if item_id is None:
            out_console.print(f"not flagged {path}: {verdict.state.value}", markup=False)
        else:
            out_console.print(f"flagged {path}: item {item_id} ({verdict.state.value}"
                              f"{', conflict' if verdict.conflict else ''})", markup=False)  # fmt: skip
    raise typer.Exit(EXIT_USAGE if errors else EXIT_OK)


@app.command("check")
@guarded
def check() -> None:
    """Recompute the audit chain and replay every item; exit 1 on any edited, deleted or reordered event."""
    cfg = settings()
    engine = open_registry(cfg)
    with db.session_scope(engine, read_only=True) as session:
        result = check_chain(session, trusted_log_key_ids(cfg), read_checkpoint(cfg))
    for problem in result.problems:
        err_console.print(f"{problem.code}: {problem.message}", markup=False)
    out_console.print(f"audit chain {'OK' if result.ok else 'FAILED'}: {result.events_checked} events, "
                      f"{result.items_checked} items checked, {len(result.problems)} problems")  # fmt: skip
    raise typer.Exit(EXIT_OK if result.ok else EXIT_BAD)


@app.command("export")
@guarded
def export_cmd(
    fmt: str = typer.Option("csv", "--format", help="csv or json."),
    out: Path = typer.Option(..., "--out", help="File to write."),
) -> None:
    """Write every item and its decision as CSV or JSON."""
    cfg = settings()
    engine = open_registry(cfg)
    with db.session_scope(engine, read_only=True) as session:
        count = export(session, cfg, fmt, out)
    out_console.print(f"wrote {count} items to {out}", markup=False)


@app.command("export-labelled")
@guarded
def export_labelled_cmd(out_dir: Path = typer.Argument(..., help="An empty or new folder.")) -> None:
    """Confirmed decisions as a labelled folder: OUT/real and OUT/fake (for `detector eval`)."""
    cfg = settings()
    engine = open_registry(cfg)
    with db.session_scope(engine, read_only=True) as session:
        result = export_labelled(session, cfg, out_dir)
    for item_id, code in result.skipped:
        err_console.print(f"skipped item {item_id}: {code}", markup=False)
    out_console.print(f"wrote {result.real} real and {result.fake} fake images to {out_dir}", markup=False)
