"""The ``authenticity`` command: a thin shell over the use cases (no logic of its own)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from authenticity import __version__
from authenticity.cli import ca as ca_cmd
from authenticity.cli import demo as demo_cmd
from authenticity.cli import detect as detect_cmd
from authenticity.cli import log as log_cmd
from authenticity.cli import signer as signer_cmd
from authenticity.cli._common import (
    err_console,
    expand_paths,
    out_console,
    progress_bar,
    require_existing,
    resolve_passphrase,
    settings,
)
from authenticity.cli._errors import EXIT_BAD, EXIT_OK, EXIT_USAGE, guarded, report_error
from authenticity.errors import AuthenticityError, UsageError
from authenticity.provenance.capture import Signer, parse_claims
from authenticity.registry import db
from authenticity.registry.store import open_registry

app = typer.Typer(
    help="Can we trust that this photo or video is real? Sign originals at capture; verify anything later.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(signer_cmd.app, name="signer")
app.add_typer(log_cmd.app, name="log")
app.add_typer(ca_cmd.app, name="ca")
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command("demo")(demo_cmd.demo)
app.command("detect")(detect_cmd.detect)
app.add_typer(detect_cmd.app, name="detector")


def _version(value: bool) -> None:
    if value:
        print(f"authenticity {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """authenticity: provenance and detection for photos and videos."""


@app.command("sign")
@guarded
def sign(
    paths: list[Path] = typer.Argument(..., help="Files or folders of originals to sign."),
    signer: str = typer.Option(..., "--signer", help="Registered signer name."),
    claim: list[str] = typer.Option([], "--claim", help="key=value claim to include (repeatable)."),
) -> None:
    """Sign originals: hash, manifest, signature, registry record, log entry and sidecar."""
    claims = parse_claims(claim)
    cfg = settings()
    loaded = Signer(cfg, signer, resolve_passphrase(cfg))
    files = list(expand_paths(paths))
    if not files:
        raise UsageError("usage.no_files", "no files to sign")
    failures = 0
    with progress_bar(len(files), "signing") as bar:
        task = bar.add_task("sign", total=len(files))
        for path in files:
            try:
                require_existing(path)
                result = loaded.sign(path, claims=claims)
                out_console.print(f"signed {path}  record {result.record_id}  leaf {result.leaf_index}  "
                                  f"{result.content_digest}")  # fmt: skip
            except AuthenticityError as exc:
                failures += 1
                report_error(exc)
            bar.advance(task)
    if failures:
        raise typer.Exit(EXIT_USAGE)


@app.command("verify")
@guarded
def verify(
    paths: list[Path] = typer.Argument(..., help="Files or folders to verify."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file on stdout, nothing else."),
) -> None:
    """Verify files: exit 0 if every one is authentic, 1 if any is not, 2 on input errors."""
    from authenticity.verify import VerdictState, Verifier

    verifier = Verifier(settings())
    files = list(expand_paths(paths))
    if not files:
        raise UsageError("usage.no_files", "no files to verify")
    errors = not_authentic = 0
    table = Table("path", "state", "codes")
    with progress_bar(len(files), "verifying") as bar:
        task = bar.add_task("verify", total=len(files))
        for path in files:
            try:
                require_existing(path)
                verdict = verifier.verify(path)
            except AuthenticityError as exc:
                errors += 1
                if as_json:
                    print(json.dumps({"path": str(path), "state": "error", "codes": [exc.code],
                                      "error": exc.message}))  # fmt: skip
                else:
                    report_error(exc)
                    table.add_row(str(path), "[red]error[/]", exc.code)
                bar.advance(task)
                continue
            if verdict.state is not VerdictState.AUTHENTIC:
                not_authentic += 1
            if as_json:
                print(json.dumps(verdict.to_dict()))
            else:
                color = "green" if verdict.state is VerdictState.AUTHENTIC else "red"
                table.add_row(str(path), f"[{color}]{verdict.state.value}[/]", ", ".join(verdict.codes))
            bar.advance(task)
    if not as_json:
        out_console.print(table)
        err_console.print(f"{len(files)} files: {len(files) - errors - not_authentic} authentic, "
                          f"{not_authentic} not authentic, {errors} errors")  # fmt: skip
    raise typer.Exit(EXIT_USAGE if errors else EXIT_BAD if not_authentic else EXIT_OK)


@db_app.command("upgrade")
@guarded
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Migrate the database forward (default: to the newest schema)."""
    engine = open_registry(settings(), migrate=False)
    db.upgrade(engine, revision)
    out_console.print(f"database at revision {db.current_revision(engine) or 'empty'}")


@db_app.command("downgrade")
@guarded
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, or 'base' to drop everything.")) -> None:
    """Migrate the database back."""
    engine = open_registry(settings(), migrate=False)
    db.downgrade(engine, revision)
    out_console.print(f"database at revision {db.current_revision(engine) or 'empty'}")


@db_app.command("current")
@guarded
def db_current() -> None:
    """Print the database's schema revision."""
    engine = open_registry(settings(), migrate=False)
    out_console.print(f"{db.current_revision(engine) or 'empty'} (head: {db.head_revision()})")


def run() -> None:
    """Console-script entry point."""
    app()
