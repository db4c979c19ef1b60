"""``authenticity signer create|list|revoke``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from rich.table import Table

from authenticity.cli._common import out_console, resolve_passphrase, settings
from authenticity.cli._errors import guarded
from authenticity.errors import RegistryError, UsageError
from authenticity.provenance.keys import Algorithm
from authenticity.provenance.keystore import create_signer_key, signer_key_path
from authenticity.provenance.manifest import format_timestamp
from authenticity.registry import db, repository
from authenticity.registry.store import open_registry

app = typer.Typer(help="Manage signers: the keys that sign originals at capture.", no_args_is_help=True)


@app.command("create")
@guarded
def create(
    name: str = typer.Argument(..., help="Signer name (a-z 0-9 . _ -), e.g. newsroom-cam-1."),
    algorithm: Algorithm = typer.Option(Algorithm.ED25519, "--algorithm", help="Signature algorithm."),
) -> None:
    """Generate a key pair, store the private key encrypted (0600), register the public key."""
    cfg = settings()
    repository.validate_signer_name(name)
    engine = open_registry(cfg)
    with db.session_scope(engine) as session:  # fail before a key file exists
        if repository.find_signer(session, name) is not None:
            raise RegistryError("registry.signer.exists", f"a signer named {name!r} already exists")
    passphrase = resolve_passphrase(cfg, confirm=True)
    key = create_signer_key(cfg, name, algorithm, passphrase)
    try:
        with db.session_scope(engine) as session:
            repository.add_signer(session, name, key.public_key, datetime.now(UTC))
    except BaseException:
        signer_key_path(cfg, name).unlink(missing_ok=True)  # nothing written on failure
        raise
    out_console.print(f"created signer {name} ({algorithm.value})")
    out_console.print(f"key id   {key.key_id}")
    out_console.print(f"key file {signer_key_path(cfg, name)}")


@app.command("list")
@guarded
def list_(as_json: bool = typer.Option(False, "--json", help="One JSON object per signer.")) -> None:
    """List registered signers and their revocation state."""
    engine = open_registry(settings())
    with db.session_scope(engine) as session:
        rows = [
            {
                "name": s.name,
                "algorithm": s.algorithm,
                "key_id": s.key_id,
                "created_at": format_timestamp(s.created_at),
                "revoked": s.revocation is not None,
                "untrusted_from": format_timestamp(s.revocation.untrusted_from) if s.revocation else None,
                "reason": s.revocation.reason if s.revocation else None,
            }
            for s in repository.list_signers(session)
        ]
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    table = Table("name", "algorithm", "key id", "created", "status")
    for row in rows:
        status = f"revoked from {row['untrusted_from']}" if row["revoked"] else "active"
        table.add_row(str(row["name"]), str(row["algorithm"]), str(row["key_id"])[:16] + "…",
                      str(row["created_at"]), status)  # fmt: skip
    out_console.print(table)


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError("usage.time.invalid", f"{text!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise UsageError("usage.time.invalid", f"{text!r} has no time zone (add Z or +00:00)")
    return moment.astimezone(UTC)


@app.command("revoke")
@guarded
def revoke(
    name: str = typer.Argument(..., help="Signer to revoke."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the registry)."),
    compromised_at: str | None = typer.Option(
        None, "--compromised-at", help="ISO 8601 time the key was compromised; records logged earlier stay valid."
    ),
) -> None:
    """Revoke a signer: records logged from the compromise time (default: now) are no longer trusted."""
    when = _parse_time(compromised_at) if compromised_at else None
    engine = open_registry(settings())
    with db.session_scope(engine) as session:
        revocation = repository.revoke_signer(session, name, reason, datetime.now(UTC), when)
        cutoff = format_timestamp(revocation.untrusted_from)
    out_console.print(f"revoked signer {name}; records logged from {cutoff} are no longer trusted")
