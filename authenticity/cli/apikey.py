"""``authenticity apikey create|list|revoke``: credentials for the HTTP API.

The key is printed once, alone on stdout (so ``KEY=$(authenticity apikey create ...)`` works);
everything else goes to stderr. Only its SHA-256 is stored.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import typer
from rich.table import Table

from authenticity.cli._common import out_console, settings
from authenticity.cli._errors import guarded
from authenticity.provenance.manifest import format_timestamp
from authenticity.registry import apikeys, db
from authenticity.registry.apikeys import Role
from authenticity.registry.store import open_registry

app = typer.Typer(help="Manage API keys for `authenticity serve`.", no_args_is_help=True)


@app.command("create")
@guarded
def create(
    name: str = typer.Argument(..., help="Key name (a-z 0-9 . _ -), e.g. newsroom-cam-1-uploader."),
    role: Role = typer.Option(..., "--role", help="admin: manage signers; signer: register records; reviewer."),
    signer: str | None = typer.Option(None, "--signer", help="The signer a role-signer key registers for."),
) -> None:
    """Create a key and print it once (it cannot be shown again)."""
    engine = open_registry(settings())
    with db.session_scope(engine) as session:
        created = apikeys.create_api_key(session, name, role, datetime.now(UTC), signer)
    bound = f" for signer {created.info.signer}" if created.info.signer else ""
    # Plain print, not rich: a console would wrap or colour what scripts parse.
    print(f"created API key {name} (role {role.value}{bound}); store it now, it is shown only once:", file=sys.stderr)
    print(created.secret)


@app.command("list")
@guarded
def list_(as_json: bool = typer.Option(False, "--json", help="One JSON object per key.")) -> None:
    """List keys (names, roles, prefixes; never secrets)."""
    engine = open_registry(settings())
    with db.session_scope(engine, read_only=True) as session:
        keys = apikeys.list_api_keys(session)
    rows = [
        {"name": k.name, "role": k.role.value, "prefix": k.prefix, "signer": k.signer,
         "created_at": format_timestamp(k.created_at),
         "revoked_at": format_timestamp(k.revoked_at) if k.revoked_at else None}
        for k in keys
    ]  # fmt: skip
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    table = Table("name", "role", "key", "signer", "created", "status")
    for row in rows:
        status = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        table.add_row(str(row["name"]), str(row["role"]), f"auth_{row['prefix']}_…", str(row["signer"] or ""),
                      str(row["created_at"]), status)  # fmt: skip
    out_console.print(table)


@app.command("revoke")
@guarded
def revoke(name: str = typer.Argument(..., help="Key to revoke.")) -> None:
    """Revoke a key: requests with it get 401 auth.revoked from now on."""
    engine = open_registry(settings())
    with db.session_scope(engine) as session:
        apikeys.revoke_api_key(session, name, datetime.now(UTC))
    out_console.print(f"revoked API key {name}")
