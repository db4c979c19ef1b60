"""``authenticity apikey create|list|revoke``: the key is shown once, stored only as SHA-256, and works.

Every failure prints one ``error: <code>: ...`` line, exits 2 and writes no row.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from authenticity.api.app import create_app
from authenticity.cli.app import app
from authenticity.config import Settings
from authenticity.provenance.keys import generate_signing_key
from authenticity.registry import db, repository
from authenticity.registry.models import ApiKey
from authenticity.registry.store import open_registry

from .test_api import assert_error, bearer, row_counts

KEY_RE = re.compile(r"^auth_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$")
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def add_signer(settings: Settings, name: str = "cam-1") -> None:
    with db.session_scope(open_registry(settings)) as session:
        repository.add_signer(session, name, generate_signing_key().public_key, datetime.now(UTC))


def assert_cli_error(result: Any, code: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}: "), result.stderr
    assert result.stdout == ""


def test_create_prints_the_key_once_and_stores_only_its_hash(settings: Settings) -> None:
    add_signer(settings)
    result = cli("apikey", "create", "dev-1", "--role", "signer", "--signer", "cam-1")
    assert result.exit_code == 0, result.stderr
    key = result.stdout.strip()
    match = KEY_RE.match(key)
    assert match, result.stdout
    assert "shown only once" in result.stderr and key not in result.stderr
    with db.session_scope(open_registry(settings), read_only=True) as session:
        row = session.scalars(select(ApiKey)).unique().one()
        assert (row.name, row.role, row.prefix, row.signer.name if row.signer else None) == (
            "dev-1", "signer", match.group(1), "cam-1")  # fmt: skip
        assert row.secret_hash == hashlib.sha256(key.encode()).digest()
    listed = cli("apikey", "list", "--json")
    assert listed.exit_code == 0 and key not in listed.stdout and match.group(1) in listed.stdout
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["dev-1"]


def test_key_works_on_the_api_until_revoked(settings: Settings) -> None:
    key = cli("apikey", "create", "ops", "--role", "admin").stdout.strip()
    client = TestClient(create_app(settings, detector=False))
    assert client.get("/v1/signers", headers=bearer(key)).status_code == 200
    assert client.get("/v1/signers", headers={"X-API-Key": key}).status_code == 200
    result = cli("apikey", "revoke", "ops")
    assert result.exit_code == 0 and "revoked API key ops" in result.stdout
    assert_error(client.get("/v1/signers", headers=bearer(key)), 401, "auth.revoked")
    listed = json.loads(cli("apikey", "list", "--json").stdout)
    assert listed["revoked_at"] is not None
    assert "revoked" in cli("apikey", "list").stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [(["create", "dev", "--role", "signer"], "usage.apikey.signer_required"),
     (["create", "ops", "--role", "admin", "--signer", "cam-1"], "usage.apikey.signer_unexpected"),
     (["create", "dev", "--role", "signer", "--signer", "nobody"], "registry.signer.not_found"),
     (["create", "../evil", "--role", "admin"], "usage.apikey_name.invalid"),
     (["create", "taken", "--role", "reviewer"], "registry.apikey.exists"),
     (["create", "dev", "--role", "signer", "--signer", "gone"], "registry.signer.revoked"),
     (["revoke", "nobody"], "registry.apikey.not_found"),
     (["revoke", "old"], "registry.apikey.already_revoked")],
)  # fmt: skip
def test_apikey_errors(settings: Settings, args: list[str], code: str) -> None:
    add_signer(settings)
    add_signer(settings, "gone")
    with db.session_scope(open_registry(settings)) as session:
        repository.revoke_signer(session, "gone", "stolen", datetime.now(UTC))
    assert cli("apikey", "create", "taken", "--role", "admin").exit_code == 0
    assert cli("apikey", "create", "old", "--role", "admin").exit_code == 0
    assert cli("apikey", "revoke", "old").exit_code == 0
    before = row_counts(settings)
    assert_cli_error(cli("apikey", *args), code)
    assert row_counts(settings) == before


@sqlite_only
def test_unknown_role_is_a_usage_error(settings: Settings) -> None:
    result = cli("apikey", "create", "x", "--role", "root")
    assert result.exit_code == 2 and "root" in result.stderr
    assert row_counts(settings)["api_key"] == 0
