"""The ``authenticity`` command: a thin shell over the use cases (no logic of its own)."""

from __future__ import annotations

import enum
import importlib
import json
import sys
from collections import Counter
from pathlib import Path

import typer
from rich.table import Table

from authenticity import __version__
from authenticity.cli import apikey as apikey_cmd
from authenticity.cli import audit as audit_cmd
from authenticity.cli import ca as ca_cmd
from authenticity.cli import demo as demo_cmd
from authenticity.cli import detect as detect_cmd
from authenticity.cli import log as log_cmd
from authenticity.cli import serve as serve_cmd
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
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(apikey_cmd.app, name="apikey")
app.command("serve")(serve_cmd.serve)
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


class Embed(enum.StrEnum):
    NONE = "none"
    C2PA = "c2pa"


@app.command("sign")
@guarded
def sign(
    paths: list[Path] = typer.Argument(..., help="Files or folders of originals to sign."),
    signer: str = typer.Option(..., "--signer", help="Registered signer name."),
    claim: list[str] = typer.Option([], "--claim", help="key=value claim to include (repeatable)."),
    embed: Embed = typer.Option(Embed.NONE, "--embed", help="Also embed C2PA Content Credentials (needs `ca init`)."),
    out: Path | None = typer.Option(None, "--out", help="With --embed c2pa: folder for the credentialed copies."),
) -> None:
    """Sign originals: hash, manifest, signature, registry record, log entry and sidecar.

    With ``--embed c2pa`` each original is first copied to ``NAME.c2pa.EXT`` (in ``--out`` or beside
    it) with a C2PA manifest signed by the same key under a certificate from the registry's CA, and
    that copy is what gets registered; the original file is left as it was.
    """
    claims = parse_claims(claim)
    cfg = settings()
    passphrase = resolve_passphrase(cfg)
    files = list(expand_paths(paths))
    if not files:
        raise UsageError("usage.no_files", "no files to sign")
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError("usage.out.not_a_folder", f"{out}: exists and is not a folder")
    loaded = Signer(cfg, signer, passphrase)
    chain = None
    if embed is Embed.C2PA:
        from authenticity.provenance.ca import issue_signer_certificate

        chain = issue_signer_certificate(cfg, signer, loaded.key.public_key, passphrase)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
    failures = 0
    with progress_bar(len(files), "signing") as bar:
        task = bar.add_task("sign", total=len(files))
        for path in files:
            try:
                require_existing(path)
                target = path if chain is None else _embed_c2pa(loaded, chain, path, out, claims)
                try:
                    result = loaded.sign(target, claims=claims)
                except AuthenticityError:
                    if target != path:
                        target.unlink(missing_ok=True)  # leave no unregistered credentialed copy behind
                    raise
                out_console.print(f"signed {target}  record {result.record_id}  leaf {result.leaf_index}  "
                                  f"{result.content_digest}")  # fmt: skip
            except AuthenticityError as exc:
                failures += 1
                report_error(exc)
            bar.advance(task)
    if failures:
        raise typer.Exit(EXIT_USAGE)


def _embed_c2pa(loaded: Signer, chain: bytes, path: Path, out: Path | None, claims: dict[str, str]) -> Path:
    from authenticity.provenance.c2pa import DigitalSourceType
    from authenticity.provenance.c2pa_write import embed_c2pa

    target = (out or path.parent) / f"{path.stem}.c2pa{path.suffix}"
    embed_c2pa(path, target, key=loaded.key, cert_chain_pem=chain, claim_generator="authenticity", title=path.name,
               digital_source_type=DigitalSourceType.DIGITAL_CAPTURE, claims=claims)  # fmt: skip
    return target


@app.command("verify")
@guarded
def verify(
    paths: list[Path] = typer.Argument(..., help="Files or folders to verify."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file on stdout, nothing else."),
    no_detector: bool = typer.Option(False, "--no-detector", help="Provenance only: never run the detector."),
) -> None:
    """One verdict per file: exit 0 if every file is authentic (or an authentic derivative), 1 if any is
    not, 2 on input errors."""
    from authenticity.verify import Verifier

    files = list(expand_paths(paths))
    if not files:
        raise UsageError("usage.no_files", "no files to verify")
    verifier = Verifier(settings(), detector=not no_detector)
    errors = untrusted = 0
    counts: Counter[str] = Counter()
    table = Table("path", "state", "detector", "codes")
    with progress_bar(len(files), "verifying") as bar:
        task = bar.add_task("verify", total=len(files))
        for path in files:
            bar.advance(task)
            try:
                require_existing(path)
                verdict = verifier.verify(path)
            except AuthenticityError as exc:
                errors += 1
                counts["error"] += 1
                if as_json:
                    print(json.dumps({"path": str(path), "state": "error", "codes": [exc.code], "error": exc.message,
                                      "content_digest": None, "evidence": {}}))  # fmt: skip
                else:
                    report_error(exc)
                    table.add_row(str(path), "[red]error[/]", "", exc.code)
                continue
            counts[verdict.state.value] += 1
            untrusted += not verdict.trusted
            if as_json:
                print(json.dumps(verdict.to_dict()), flush=True)
                continue
            color = "green" if verdict.trusted and not verdict.conflict else "yellow" if verdict.trusted else "red"
            score = verdict.detection.score if verdict.detection is not None else None
            table.add_row(str(path), f"[{color}]{verdict.state.value}[/]" + (" [bold]conflict[/]" * verdict.conflict),
                          "" if score is None else f"{score:.3f}", ", ".join(verdict.codes))  # fmt: skip
    if not as_json:
        out_console.print(table)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        err_console.print(f"{len(files)} files: {summary}")
    raise typer.Exit(EXIT_USAGE if errors else EXIT_BAD if untrusted else EXIT_OK)


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


# The argument parser's exception classes: click's, or the copy of click that newer Typer
# releases vendor (its public BadParameter names the module either way).
_parser = importlib.import_module(typer.BadParameter.__module__)
# Its errors as stable codes (most specific class first).
_PARSER_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (_parser.MissingParameter, "usage.missing"),
    (_parser.BadParameter, "usage.value"),
    (_parser.NoSuchOption, "usage.option"),
    (_parser.BadOptionUsage, "usage.option"),
    (_parser.ClickException, "usage.arguments"),  # e.g. "No such command"
)


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    A mistake the argument parser catches (a missing argument, an unknown option or
    command, a value of the wrong type) is reported like every other error: one
    ``error: usage.<kind>: <message>`` line on stderr and exit code 2.
    """
    try:
        result = app(args=argv, prog_name="authenticity", standalone_mode=False)
    except _parser.NoArgsIsHelpError:
        sys.exit(EXIT_USAGE)  # the help text is already printed
    except _parser.ClickException as exc:
        code = next(code for cls, code in _PARSER_ERRORS if isinstance(exc, cls))
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print(f"error: {code}: {exc.format_message()}{hint}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except typer.Abort:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else EXIT_OK)
