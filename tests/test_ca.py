"""The registry CA: root and signer certificates fit the C2PA profile, files are safe, errors exact.

In-process tests call :mod:`authenticity.provenance.ca` on a throw-away home; CLI tests
run ``python -m authenticity ca ...`` as a subprocess (stdin not a terminal) and assert
the exact ``error: <code>:`` line, exit code 2, no traceback and untouched files.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from typer.testing import CliRunner

from authenticity.cli.app import app
from authenticity.config import Settings
from authenticity.errors import AuthenticityError
from authenticity.provenance.ca import (
    ca_dir,
    default_trust_anchors,
    init_ca,
    issue_signer_certificate,
    load_root,
    signer_certificate_path,
)
from authenticity.provenance.keys import Algorithm, generate_signing_key, load_certificates

from .conftest import PASSPHRASE

PW = PASSPHRASE.encode()
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def _code(excinfo: pytest.ExceptionInfo[AuthenticityError]) -> str:
    return excinfo.value.code


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


# --------------------------------------------------------------------------- root


def test_init_writes_encrypted_root_key_0600_and_a_ca_certificate(cfg: Settings) -> None:
    root = init_ca(cfg, PW)
    assert root.key_path == ca_dir(cfg) / "root.key" and root.cert_path == ca_dir(cfg) / "root.pem"
    assert stat.S_IMODE(root.key_path.stat().st_mode) == 0o600
    assert root.key_path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    cert = x509.load_pem_x509_certificate(root.cert_path.read_bytes())
    assert cert.subject == cert.issuer
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign and not usage.value.digital_signature
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert root.cert.is_ca and root.cert.organization == "authenticity registry"
    assert root.cert.fingerprint_sha256 == hashlib.sha256(root.cert.der).hexdigest()


def test_init_twice_is_refused_and_leaves_the_first_ca(cfg: Settings) -> None:
    init_ca(cfg, PW)
    before = _files(ca_dir(cfg))
    with pytest.raises(AuthenticityError) as excinfo:
        init_ca(cfg, PW)
    assert _code(excinfo) == "ca.exists"
    assert _files(ca_dir(cfg)) == before


def test_init_with_only_a_stray_key_file_is_refused(cfg: Settings) -> None:
    (ca_dir(cfg)).mkdir(parents=True)
    (ca_dir(cfg) / "root.key").write_bytes(b"left over")
    with pytest.raises(AuthenticityError) as excinfo:
        init_ca(cfg, PW)
    assert _code(excinfo) == "ca.exists"
    assert not (ca_dir(cfg) / "root.pem").exists()


def test_init_refuses_an_empty_passphrase_and_writes_nothing(cfg: Settings) -> None:
    with pytest.raises(AuthenticityError) as excinfo:
        init_ca(cfg, b"")
    assert _code(excinfo) == "key.passphrase.empty"
    assert not ca_dir(cfg).exists() or _files(ca_dir(cfg)) == {}


def test_missing_ca_is_reported_with_a_hint(cfg: Settings) -> None:
    with pytest.raises(AuthenticityError) as excinfo:
        load_root(cfg)
    assert _code(excinfo) == "ca.missing"
    assert "authenticity ca init" in excinfo.value.diagnostics()
    with pytest.raises(AuthenticityError) as excinfo:
        issue_signer_certificate(cfg, "cam-1", generate_signing_key().public_key, PW)
    assert _code(excinfo) == "ca.missing"


# --------------------------------------------------------------------------- signer certificates


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_signer_certificate_meets_the_c2pa_signing_profile(cfg: Settings, algorithm: Algorithm) -> None:
    root = init_ca(cfg, PW)
    key = generate_signing_key(algorithm)
    chain = issue_signer_certificate(cfg, "cam-1", key.public_key, PW)
    leaf, root_pem = x509.load_pem_x509_certificates(chain)
    assert load_certificates(chain)[1].der == root.cert.der
    leaf.verify_directly_issued_by(root_pem)
    assert leaf.version is x509.Version.v3
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "cam-1"
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)  # c2pa-rs needs an O
    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert not basic.value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING}
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = root_pem.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    info = load_certificates(chain)[0]
    assert info.spki_der == key.public_key.spki_der
    assert info.not_after - info.not_before > timedelta(days=9 * 365)
    assert info.not_after <= root.cert.not_after
    assert signer_certificate_path(cfg, "cam-1").read_bytes() == chain


def test_stored_certificate_is_reused_without_the_ca_passphrase(cfg: Settings) -> None:
    init_ca(cfg, PW)
    key = generate_signing_key()
    first = issue_signer_certificate(cfg, "cam-1", key.public_key, PW)
    assert issue_signer_certificate(cfg, "cam-1", key.public_key, b"not the passphrase") == first


def test_certificate_is_reissued_for_a_new_key_or_near_expiry(cfg: Settings) -> None:
    init_ca(cfg, PW)
    key = generate_signing_key()
    first = issue_signer_certificate(cfg, "cam-1", key.public_key, PW)
    new_key = generate_signing_key(Algorithm.ECDSA_P256)
    second = issue_signer_certificate(cfg, "cam-1", new_key.public_key, PW)
    assert second != first and load_certificates(second)[0].spki_der == new_key.public_key.spki_der
    later = datetime.now(UTC) + timedelta(days=10 * 365)
    third = issue_signer_certificate(cfg, "cam-1", new_key.public_key, PW, now=later)
    assert third != second


def test_wrong_ca_passphrase_writes_no_certificate(cfg: Settings) -> None:
    init_ca(cfg, PW)
    with pytest.raises(AuthenticityError) as excinfo:
        issue_signer_certificate(cfg, "cam-1", generate_signing_key().public_key, b"wrong")
    assert _code(excinfo) == "key.passphrase.wrong"
    assert not signer_certificate_path(cfg, "cam-1").exists()


def test_signer_name_cannot_escape_the_ca_folder(cfg: Settings) -> None:
    init_ca(cfg, PW)
    with pytest.raises(AuthenticityError) as excinfo:
        issue_signer_certificate(cfg, "../evil", generate_signing_key().public_key, PW)
    assert _code(excinfo) == "usage.signer_name.invalid"


# --------------------------------------------------------------------------- trust anchors


def test_default_trust_anchors_are_our_root_plus_an_extra_file(cfg: Settings, tmp_path: Path) -> None:
    assert default_trust_anchors(cfg) is None
    root = init_ca(cfg, PW)
    assert default_trust_anchors(cfg) == root.cert.pem()
    other = Settings(home=tmp_path / "other")
    extra = tmp_path / "extra.pem"
    extra.write_bytes(init_ca(other, PW).cert.pem())
    anchors = default_trust_anchors(cfg, extra)
    assert anchors is not None
    assert [c.der for c in load_certificates(anchors)] == [root.cert.der, load_root(other).cert.der]


BAD_EXTRA = [(None, "config.c2pa_trust_anchors.unreadable"), (b"not a pem", "config.c2pa_trust_anchors.malformed")]


@pytest.mark.parametrize(("content", "code"), BAD_EXTRA)
def test_bad_extra_trust_anchor_file(cfg: Settings, tmp_path: Path, content: bytes | None, code: str) -> None:
    extra = tmp_path / "extra.pem"
    if content is not None:
        extra.write_bytes(content)
    with pytest.raises(AuthenticityError) as excinfo:
        default_trust_anchors(cfg, extra)
    assert _code(excinfo) == code


# --------------------------------------------------------------------------- CLI


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {}), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "authenticity", *args], env=full_env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def assert_error(result: subprocess.CompletedProcess[str], code: str, exit_code: int = 2) -> None:
    shown = f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert result.returncode == exit_code, shown
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}: "), shown


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


@sqlite_only
def test_cli_init_twice_fails_with_ca_exists(home: Path) -> None:
    out = _invoke("ca", "init")
    assert "created certificate authority" in out and "sha256" in out
    before = _files(home / "ca")
    assert_error(run_cli("ca", "init"), "ca.exists")
    assert _files(home / "ca") == before


@sqlite_only
def test_cli_issue_with_wrong_passphrase(home: Path) -> None:
    _invoke("signer", "create", "cam-1")
    _invoke("ca", "init")
    before = _files(home)
    assert_error(run_cli("ca", "issue", "cam-1", env={"AUTHENTICITY_KEY_PASSPHRASE": "wrong"}), "key.passphrase.wrong")
    assert _files(home) == before


@sqlite_only
def test_cli_issue_and_show_without_a_ca(home: Path) -> None:
    _invoke("signer", "create", "cam-1")
    before = _files(home)
    assert_error(run_cli("ca", "issue", "cam-1"), "ca.missing")
    assert _files(home) == before
    assert CliRunner().invoke(app, ["ca", "show"]).exit_code == 2


@sqlite_only
def test_cli_issue_then_show(home: Path) -> None:
    _invoke("signer", "create", "cam-1")
    _invoke("ca", "init")
    out = _invoke("ca", "issue", "cam-1")
    assert "CN=cam-1" in out and str(home / "ca" / "signers" / "cam-1.pem") in out
    pem = _invoke("ca", "show", "--pem")
    assert pem.encode() == (home / "ca" / "root.pem").read_bytes()


# --------------------------------------------------------------------------- damaged CA files


def _other_root(tmp_path: Path) -> tuple[bytes, bytes]:
    """(root.pem, root.key) of a second, unrelated CA under the same passphrase."""
    other = init_ca(Settings(home=tmp_path / "other-home"), PW)
    return other.cert_path.read_bytes(), other.key_path.read_bytes()


def test_root_key_of_another_ca_is_a_key_mismatch_and_writes_no_certificate(cfg: Settings, tmp_path: Path) -> None:
    root = init_ca(cfg, PW)
    root.key_path.write_bytes(_other_root(tmp_path)[1])  # decrypts fine, but certifies nothing of ours
    before = _files(ca_dir(cfg))
    with pytest.raises(AuthenticityError) as excinfo:
        issue_signer_certificate(cfg, "cam-1", generate_signing_key().public_key, PW)
    assert _code(excinfo) == "ca.key.mismatch"
    assert _files(ca_dir(cfg)) == before and not signer_certificate_path(cfg, "cam-1").exists()


def _malformed_root(content: str, ours: bytes, tmp_path: Path) -> bytes:
    other_pem, other_key = _other_root(tmp_path)
    return {
        "not-pem": b"this is not a certificate\n",
        "private-key": other_key,
        "two-certificates": ours + other_pem,
        "empty": b"",
    }[content]


@pytest.mark.parametrize("content", ["not-pem", "private-key", "two-certificates", "empty"])
def test_root_certificate_that_is_not_exactly_one_certificate_is_malformed(
    cfg: Settings, tmp_path: Path, content: str
) -> None:
    root = init_ca(cfg, PW)
    root.cert_path.write_bytes(_malformed_root(content, root.cert_path.read_bytes(), tmp_path))
    before = _files(ca_dir(cfg))
    for call in (
        lambda: load_root(cfg),
        lambda: issue_signer_certificate(cfg, "cam-1", generate_signing_key().public_key, PW),
    ):
        with pytest.raises(AuthenticityError) as excinfo:
            call()
        assert _code(excinfo) == "ca.malformed"
    assert _files(ca_dir(cfg)) == before


def test_root_certificate_path_that_is_a_folder_is_unreadable(cfg: Settings) -> None:
    root = init_ca(cfg, PW)
    root.cert_path.unlink()
    root.cert_path.mkdir()
    with pytest.raises(AuthenticityError) as excinfo:
        load_root(cfg)
    assert _code(excinfo) == "ca.unreadable"
    with pytest.raises(AuthenticityError) as excinfo:
        issue_signer_certificate(cfg, "cam-1", generate_signing_key().public_key, PW)
    assert _code(excinfo) == "ca.unreadable"
    assert root.cert_path.is_dir() and not signer_certificate_path(cfg, "cam-1").exists()


@sqlite_only
def test_cli_issue_with_another_cas_root_key(home: Path, tmp_path: Path) -> None:
    _invoke("signer", "create", "cam-1")
    _invoke("ca", "init")
    (home / "ca" / "root.key").write_bytes(_other_root(tmp_path)[1])
    before = _files(home)
    assert_error(run_cli("ca", "issue", "cam-1"), "ca.key.mismatch")
    assert _files(home) == before


@sqlite_only
def test_cli_show_and_issue_with_two_certificates_in_root_pem(home: Path, tmp_path: Path) -> None:
    _invoke("signer", "create", "cam-1")
    _invoke("ca", "init")
    root_pem = home / "ca" / "root.pem"
    root_pem.write_bytes(root_pem.read_bytes() + _other_root(tmp_path)[0])
    before = _files(home)
    assert_error(run_cli("ca", "show"), "ca.malformed")
    assert_error(run_cli("ca", "show", "--pem"), "ca.malformed")
    assert_error(run_cli("ca", "issue", "cam-1"), "ca.malformed")
    assert _files(home) == before


@sqlite_only
def test_cli_show_and_issue_with_root_pem_replaced_by_a_folder(home: Path) -> None:
    _invoke("signer", "create", "cam-1")
    _invoke("ca", "init")
    root_pem = home / "ca" / "root.pem"
    root_pem.unlink()
    root_pem.mkdir()
    before = _files(home)
    assert_error(run_cli("ca", "show"), "ca.unreadable")
    assert_error(run_cli("ca", "issue", "cam-1"), "ca.unreadable")
    assert _files(home) == before and root_pem.is_dir()
