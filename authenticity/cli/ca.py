"""``authenticity ca init|show|issue``: the registry's own certificate authority for C2PA signing."""

from __future__ import annotations

import typer

from authenticity.cli._common import out_console, resolve_passphrase, settings
from authenticity.cli._errors import guarded
from authenticity.errors import RegistryError
from authenticity.provenance.ca import (
    DEFAULT_ORGANIZATION,
    RootCa,
    init_ca,
    issue_signer_certificate,
    load_root,
    require_no_ca,
    signer_certificate_path,
)
from authenticity.provenance.keys import PublicKey, load_certificates
from authenticity.registry import db, repository
from authenticity.registry.store import open_registry

app = typer.Typer(help="The registry's certificate authority (for C2PA Content Credentials).", no_args_is_help=True)


def _print_root(root: RootCa) -> None:
    out_console.print(f"subject     {root.cert.subject}")
    out_console.print(f"sha256      {root.cert.fingerprint_sha256}")
    out_console.print(f"valid until {root.cert.not_after:%Y-%m-%dT%H:%M:%SZ}")
    out_console.print(f"certificate {root.cert_path}")
    out_console.print(f"key         {root.key_path}")


@app.command("init")
@guarded
def init(
    organization: str = typer.Option(DEFAULT_ORGANIZATION, "--organization", help="O= of the root and its signers."),
) -> None:
    """Create the root key (encrypted, 0600) and self-signed root certificate; refuses to overwrite."""
    cfg = settings()
    require_no_ca(cfg)  # before asking for a passphrase; init_ca checks again under O_EXCL
    root = init_ca(cfg, resolve_passphrase(cfg, confirm=True), organization=organization)
    out_console.print("created certificate authority")
    _print_root(root)


@app.command("show")
@guarded
def show(
    pem: bool = typer.Option(False, "--pem", help="Print the root certificate (PEM) to hand to verifiers."),
) -> None:
    """Show the root certificate: subject, SHA-256 fingerprint, validity, paths."""
    root = load_root(settings())
    if pem:
        print(root.cert.pem().decode(), end="")
        return
    _print_root(root)


@app.command("issue")
@guarded
def issue(name: str = typer.Argument(..., help="Registered signer to certify.")) -> None:
    """Issue (or reuse) the C2PA signing certificate for a registered signer's public key."""
    cfg = settings()
    load_root(cfg)  # ca.missing before asking for anything
    engine = open_registry(cfg)
    with db.session_scope(engine) as session:
        row = repository.get_signer(session, name)
        if row.revocation is not None:
            raise RegistryError("registry.signer.revoked", f"signer {name!r} is revoked: {row.revocation.reason}")
        public_key = PublicKey.from_spki(row.public_key)
    chain = issue_signer_certificate(cfg, name, public_key, resolve_passphrase(cfg))
    leaf = load_certificates(chain)[0]
    out_console.print(f"certificate for {name}")
    out_console.print(f"subject     {leaf.subject}")
    out_console.print(f"sha256      {leaf.fingerprint_sha256}")
    out_console.print(f"valid until {leaf.not_after:%Y-%m-%dT%H:%M:%SZ}")
    out_console.print(f"chain       {signer_certificate_path(cfg, name)}")
