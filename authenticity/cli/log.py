"""``authenticity log head|prove|check``."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import typer

from authenticity.cli._common import err_console, out_console, progress_bar, settings
from authenticity.cli._errors import EXIT_BAD, guarded
from authenticity.errors import UsageError
from authenticity.media import sha256_file
from authenticity.provenance.keystore import trusted_log_key_ids
from authenticity.registry import db, log, repository
from authenticity.registry.log_check import check_log
from authenticity.registry.store import open_registry

app = typer.Typer(help="The transparency log: signed tree heads, proofs, integrity check.", no_args_is_help=True)


@app.command("head")
@guarded
def head() -> None:
    """Print the current signed tree head as JSON."""
    engine = open_registry(settings())
    with db.session_scope(engine) as session:
        sth = log.latest_tree_head(session)
    print(json.dumps(sth.to_dict() if sth else {"tree_size": 0}, indent=2))


@app.command("prove")
@guarded
def prove(
    target: str = typer.Argument(..., help="A file (proved by its content digest) or a record id."),
    tree_size: int | None = typer.Option(None, "--tree-size", help="Prove against this size (default: current)."),
) -> None:
    """Print an inclusion proof for a record under a signed tree head."""
    engine = open_registry(settings())
    path = Path(target)
    with db.session_scope(engine) as session:
        if target.isdigit() and not path.exists():
            record = repository.get_record(session, int(target))
        else:
            if not path.is_file():
                raise UsageError("usage.target.invalid", f"{target}: neither an existing file nor a record id")
            digest = sha256_file(path)
            found = repository.find_record_by_digest(session, digest)
            if found is None:
                raise UsageError("registry.record.not_found", f"{target}: {digest} is not registered")
            record = found
        proof = log.inclusion_proof(session, record.leaf.leaf_index, tree_size)
        sth = log.tree_head_at(session, proof.tree_size)
        body = {
            "record_id": record.id,
            "content_digest": record.content_digest,
            "leaf_hash": base64.b64encode(record.leaf.leaf_hash).decode(),
            "inclusion_proof": proof.to_dict(),
            "tree_head": sth.to_dict(),
        }
    print(json.dumps(body, indent=2))


@app.command("check")
@guarded
def check() -> None:
    """Recompute the log from stored records; exit 1 on any edited, deleted or reordered row."""
    cfg = settings()
    engine = open_registry(cfg)
    with db.session_scope(engine) as session:
        size = log.tree_size(session)
        with progress_bar(size, "checking log") as bar:
            task = bar.add_task("check", total=size)
            report = check_log(session, trusted_log_key_ids(cfg), progress=lambda n: bar.advance(task, n))
    for problem in report.problems:
        err_console.print(f"{problem.code}: {problem.message}")
    out_console.print(
        f"log {'OK' if report.ok else 'FAILED'}: {report.leaves_checked} leaves, "
        f"{report.heads_checked} tree heads checked, {len(report.problems)} problems"
    )
    if not report.ok:
        raise typer.Exit(EXIT_BAD)
