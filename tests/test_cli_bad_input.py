"""Bad input at the CLI: one line on stderr, the documented exit code, nothing written.

Every failing command runs as a real ``python -m authenticity`` subprocess (stdin is not
a terminal) and must print exactly one ``error: <code>: <message>`` line on stderr, no
traceback, and exit with the code from ``authenticity.cli._errors`` (1 evaluated as bad,
2 usage/input error, 3 registry unavailable). A snapshot of every database row and of
every file (with its bytes) under the home and media folders is taken after setup and
compared after the failing command.

Setup (a signer ``cam-1`` and one signed photo) goes through the same CLI commands, but
in-process via Typer's runner, to keep the number of slow subprocesses down. Cases whose
outcome depends on registry state run on SQLite and PostgreSQL; pure input errors run
on SQLite only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import MetaData, create_engine
from typer.testing import CliRunner

from authenticity.cli.app import app
from authenticity.media import sha256_file
from authenticity.provenance.keys import generate_signing_key
from authenticity.provenance.manifest import MANIFEST_CONTEXT, Manifest, format_timestamp
from authenticity.provenance.sidecar import Sidecar, read_sidecar, sidecar_path
from authenticity.registry import store

from .conftest import write_photo

EXIT_BAD, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3
SIGNER = "cam-1"
# The human-mode ``verify`` summary that follows the error line on stderr.
_VERIFY_SUMMARY = re.compile(r"^\d+ files: \d+ [a-z-]+(, \d+ [a-z-]+)*$")  # e.g. "3 files: 1 authentic, 2 error"

# Tests whose outcome does not depend on the backend run on SQLite only.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


# --------------------------------------------------------------------------- helpers


def verify_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``authenticity verify --no-detector ARGS``: these tests are about provenance input errors."""
    return run_cli("verify", "--no-detector", *args)


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess with the test's environment (plus *env*, minus *unset*)."""
    full_env = os.environ.copy()
    full_env.update(env or {})
    full_env["COLUMNS"] = "200"
    for name in unset:
        full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "authenticity", *args],
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_error(
    result: subprocess.CompletedProcess[str], code: str, exit_code: int, *, contains: str = "", summary: bool = False
) -> str:
    """Exact exit code; stderr is exactly one ``error: <code>: ...`` line; no traceback anywhere.

    *summary*: human-mode ``verify`` also prints its ``N files: ...`` count on stderr.
    Returns the error line.
    """
    shown = f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout, shown
    assert result.returncode == exit_code, shown
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if summary:
        assert lines and _VERIFY_SUMMARY.match(lines[-1]), shown
        lines = lines[:-1]
    assert len(lines) == 1, shown
    assert lines[0].startswith(f"error: {code}: "), shown
    assert contains in lines[0], shown
    return lines[0]


def assert_verdicts(result: subprocess.CompletedProcess[str], exit_code: int) -> list[dict[str, Any]]:
    """``verify --json``: exact exit code, stdout is one JSON object per line and nothing else."""
    shown = f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout, shown
    assert result.returncode == exit_code, shown
    assert result.stderr.strip() == "", shown
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(isinstance(o, dict) and {"path", "state", "codes"} <= o.keys() for o in objects), shown
    return objects


def _files(root: Path) -> dict[str, str | None]:
    """Every entry under *root*: relative path -> sha256 of its bytes (None for a folder)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def _rows(url: str) -> dict[str, list[str]]:
    """Every row of every table of the database at *url*, sorted."""
    engine = create_engine(url)
    try:
        meta = MetaData()
        meta.reflect(bind=engine)
        with engine.connect() as conn:
            return {
                name: sorted(repr(tuple(row)) for row in conn.execute(table.select()))
                for name, table in sorted(meta.tables.items())
            }
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Snapshot:
    rows: dict[str, list[str]]
    home: dict[str, str | None]
    media: dict[str, str | None]


def snapshot(home: Path, media: Path) -> Snapshot:
    return Snapshot(_rows(os.environ["AUTHENTICITY_DATABASE_URL"]), _files(home), _files(media))


def assert_nothing_written(before: Snapshot, home: Path, media: Path) -> None:
    after = snapshot(home, media)
    assert after.rows == before.rows, "database changed"
    assert after.home == before.home, "files under AUTHENTICITY_HOME changed"
    assert after.media == before.media, "files in the media folder changed"


def _invoke(*args: str) -> None:
    """Setup through the real CLI commands, in-process (fast)."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output, result.exception)


def _release_engines() -> None:
    """Close this process's pooled connections to the test database (no lock is left held)."""
    url = os.environ["AUTHENTICITY_DATABASE_URL"]
    for key, engine in list(store._ENGINES.items()):
        if key[0] == url:
            engine.dispose()
            del store._ENGINES[key]


@dataclass(frozen=True)
class World:
    home: Path
    media: Path
    photo: Path  # signed by cam-1, with its sidecar
    other: Path  # an unsigned valid JPEG in the same folder
    before: Snapshot | None = None

    def freeze(self) -> World:
        """Take the 'before' snapshot (call after any extra setup)."""
        _release_engines()
        return World(self.home, self.media, self.photo, self.other, snapshot(self.home, self.media))

    def unchanged(self) -> None:
        assert self.before is not None, "freeze() first"
        assert_nothing_written(self.before, self.home, self.media)


@pytest.fixture
def world(home: Path, photo: Path) -> Iterator[World]:
    _invoke("signer", "create", SIGNER)
    _invoke("sign", str(photo), "--signer", SIGNER)
    other = write_photo(photo.parent / "other.jpg", seed=2)
    yield World(home, photo.parent, photo, other)
    _release_engines()


def _jpeg_bytes(world: World) -> bytes:
    return world.other.read_bytes()


# --------------------------------------------------------------------------- the argument parser's own errors


@sqlite_only
@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["sign"], "usage.missing", "Missing argument 'paths'. (see 'authenticity sign --help')"),
        (["sign", "{photo}", "--signer"], "usage.option", "Option '--signer' requires an argument."),
        (["verify", "--bogus", "{photo}"], "usage.option", "No such option: --bogus"),
        (["detect", "--format", "xml", "{photo}"], "usage.value", "Invalid value for '--format': "),
        (["detector", "train", "--steps", "many"], "usage.value", "Invalid value for '--steps': "),
        (["nosuch"], "usage.arguments", "No such command 'nosuch'. (see 'authenticity --help')"),
    ],
    ids=["missing-argument", "option-without-value", "unknown-option", "bad-choice", "bad-integer", "unknown-command"],
)
def test_a_parser_error_is_one_usage_line_with_exit_2(world: World, args: list[str], code: str, line: str) -> None:
    w = world.freeze()
    result = run_cli(*(a.format(photo=w.photo) for a in args))
    assert_error(result, code, EXIT_USAGE, contains=line)
    assert result.stdout == ""
    w.unchanged()


@sqlite_only
def test_no_command_prints_the_help_and_exits_2(world: World) -> None:
    w = world.freeze()
    result = run_cli()
    assert result.returncode == EXIT_USAGE and result.stderr == ""
    assert "Usage: authenticity [OPTIONS] COMMAND [ARGS]..." in result.stdout
    w.unchanged()


# --------------------------------------------------------------------------- sign: bad media


@sqlite_only
def test_sign_missing_file(world: World) -> None:
    w = world.freeze()
    missing = w.media / "missing.jpg"
    assert_error(run_cli("sign", str(missing), "--signer", SIGNER), "media.file.not_found", EXIT_USAGE,
                 contains=str(missing))  # fmt: skip
    w.unchanged()


@sqlite_only
def test_sign_directory_without_files(world: World) -> None:
    empty_dir = world.media / "empty"
    empty_dir.mkdir()
    (empty_dir / ".hidden").write_bytes(b"dotfiles are skipped")
    w = world.freeze()
    assert_error(run_cli("sign", str(empty_dir), "--signer", SIGNER), "usage.no_files", EXIT_USAGE)
    w.unchanged()


@sqlite_only
def test_sign_empty_file(world: World) -> None:
    empty = world.media / "empty.jpg"
    empty.write_bytes(b"")
    w = world.freeze()
    assert_error(run_cli("sign", str(empty), "--signer", SIGNER), "media.file.empty", EXIT_USAGE, contains=str(empty))
    w.unchanged()


@sqlite_only
def test_sign_truncated_jpeg(world: World) -> None:
    data = _jpeg_bytes(world)
    truncated = world.media / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    w = world.freeze()
    assert_error(run_cli("sign", str(truncated), "--signer", SIGNER), "media.decode.failed", EXIT_USAGE,
                 contains=str(truncated))  # fmt: skip
    w.unchanged()


@sqlite_only
def test_sign_corrupt_jpeg(world: World) -> None:
    """Intact headers, but the entropy-coded scan is damaged (every 7th byte flipped)."""
    data = bytearray(_jpeg_bytes(world))
    sos = data.index(b"\xff\xda")
    for i in range(sos + 20, len(data) - 2, 7):
        data[i] ^= 0x5A
    corrupt = world.media / "corrupt.jpg"
    corrupt.write_bytes(bytes(data))
    w = world.freeze()
    assert_error(run_cli("sign", str(corrupt), "--signer", SIGNER), "media.decode.failed", EXIT_USAGE,
                 contains=str(corrupt))  # fmt: skip
    w.unchanged()


@sqlite_only
def test_regression_jpeg_with_garbage_scan_data_is_refused(world: World) -> None:
    data = _jpeg_bytes(world)
    sos = data.index(b"\xff\xda")
    header = data[: sos + 14]  # SOI .. SOS header (3 components: 12 bytes after the marker)
    garbage = np.random.default_rng(0).integers(0, 255, len(data) - len(header) - 2, dtype=np.uint8).tobytes()
    corrupt = world.media / "garbage.jpg"
    corrupt.write_bytes(header + garbage + b"\xff\xd9")
    w = world.freeze()
    assert_error(run_cli("sign", str(corrupt), "--signer", SIGNER), "media.decode.failed", EXIT_USAGE,
                 contains=str(corrupt))  # fmt: skip
    w.unchanged()


@sqlite_only
def test_sign_non_media_bytes(world: World) -> None:
    fake = world.media / "notes.jpg"  # the extension is not trusted: the bytes are sniffed
    fake.write_bytes(b"meeting notes, definitely not a photo\n" * 20)
    w = world.freeze()
    assert_error(run_cli("sign", str(fake), "--signer", SIGNER), "media.type.unsupported", EXIT_USAGE,
                 contains=str(fake))  # fmt: skip
    w.unchanged()


# --------------------------------------------------------------------------- sign: keys, signers, claims


@sqlite_only
def test_sign_wrong_passphrase(world: World) -> None:
    w = world.freeze()
    result = run_cli(
        "sign", str(w.other), "--signer", SIGNER, env={"AUTHENTICITY_KEY_PASSPHRASE": "not the passphrase"}
    )
    assert_error(result, "key.passphrase.wrong", EXIT_USAGE, contains=f"{SIGNER}.key")
    w.unchanged()


@sqlite_only
def test_sign_without_passphrase_and_without_terminal(world: World) -> None:
    w = world.freeze()
    result = run_cli("sign", str(w.other), "--signer", SIGNER, unset=("AUTHENTICITY_KEY_PASSPHRASE",))
    assert_error(result, "key.passphrase.required", EXIT_USAGE, contains="AUTHENTICITY_KEY_PASSPHRASE")
    w.unchanged()


def test_sign_unknown_signer_name(world: World) -> None:
    w = world.freeze()
    assert_error(run_cli("sign", str(w.other), "--signer", "nobody"), "registry.signer.not_found", EXIT_USAGE,
                 contains="'nobody'")  # fmt: skip
    w.unchanged()


def test_sign_with_revoked_signer(world: World) -> None:
    _invoke("signer", "revoke", SIGNER, "--reason", "camera stolen")
    w = world.freeze()
    assert_error(run_cli("sign", str(w.other), "--signer", SIGNER), "registry.signer.revoked", EXIT_USAGE,
                 contains="camera stolen")  # fmt: skip
    w.unchanged()


def test_sign_same_file_twice_is_a_duplicate(world: World) -> None:
    w = world.freeze()
    first_sidecar = sidecar_path(w.photo).read_bytes()
    assert_error(run_cli("sign", str(w.photo), "--signer", SIGNER), "registry.record.duplicate", EXIT_USAGE,
                 contains=sha256_file(w.photo))  # fmt: skip
    assert sidecar_path(w.photo).read_bytes() == first_sidecar
    w.unchanged()


@sqlite_only
def test_sign_invalid_claim(world: World) -> None:
    w = world.freeze()
    result = run_cli("sign", str(w.other), "--signer", SIGNER, "--claim", "author")
    assert_error(result, "usage.claim.invalid", EXIT_USAGE, contains="'author'")
    w.unchanged()


# --------------------------------------------------------------------------- signer create / revoke


@sqlite_only
def test_signer_create_rejects_path_traversal(world: World, tmp_path: Path) -> None:
    w = world.freeze()
    assert_error(run_cli("signer", "create", "../evil"), "usage.signer_name.invalid", EXIT_USAGE, contains="'../evil'")
    w.unchanged()
    assert not list(tmp_path.rglob("*evil*"))
    assert not (tmp_path.parent / "evil.key").exists()


def test_signer_create_existing_name(world: World) -> None:
    w = world.freeze()
    key_file = w.home / "keys" / f"{SIGNER}.key"
    key_bytes = key_file.read_bytes()
    assert_error(run_cli("signer", "create", SIGNER), "registry.signer.exists", EXIT_USAGE, contains=f"'{SIGNER}'")
    assert key_file.read_bytes() == key_bytes
    w.unchanged()


@sqlite_only
def test_signer_revoke_with_bad_time(world: World) -> None:
    w = world.freeze()
    result = run_cli("signer", "revoke", SIGNER, "--reason", "lost", "--compromised-at", "yesterday")
    assert_error(result, "usage.time.invalid", EXIT_USAGE, contains="'yesterday'")
    w.unchanged()


def test_signer_revoke_twice(world: World) -> None:
    _invoke("signer", "revoke", SIGNER, "--reason", "lost")
    w = world.freeze()
    result = run_cli("signer", "revoke", SIGNER, "--reason", "lost again")
    assert_error(result, "registry.signer.already_revoked", EXIT_USAGE, contains=f"'{SIGNER}'")
    w.unchanged()


# --------------------------------------------------------------------------- verify: bad media


@sqlite_only
def test_verify_missing_file(world: World) -> None:
    w = world.freeze()
    missing = w.media / "missing.jpg"
    assert_error(verify_cli(str(missing)), "media.file.not_found", EXIT_USAGE, contains=str(missing),
                 summary=True)  # fmt: skip
    w.unchanged()


@sqlite_only
def test_verify_directory_without_files(world: World) -> None:
    folder = world.media / "only-sidecars"
    folder.mkdir()
    shutil.copyfile(sidecar_path(world.photo), folder / "x.jpg.authenticity.json")  # sidecars are skipped
    w = world.freeze()
    assert_error(verify_cli(str(folder)), "usage.no_files", EXIT_USAGE)
    w.unchanged()


@sqlite_only
def test_verify_empty_file(world: World) -> None:
    empty = world.media / "empty.jpg"
    empty.write_bytes(b"")
    w = world.freeze()
    assert_error(verify_cli(str(empty)), "media.file.empty", EXIT_USAGE, contains=str(empty), summary=True)
    w.unchanged()


@sqlite_only
def test_verify_truncated_media(world: World) -> None:
    data = world.photo.read_bytes()
    truncated = world.media / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    w = world.freeze()
    assert_error(verify_cli(str(truncated)), "media.decode.failed", EXIT_USAGE, contains=str(truncated),
                 summary=True)  # fmt: skip
    w.unchanged()


@sqlite_only
def test_verify_non_media_bytes(world: World) -> None:
    fake = world.media / "fake.jpg"
    fake.write_bytes(b"%PDF-1.7 not an image at all\n" * 20)
    w = world.freeze()
    assert_error(verify_cli(str(fake)), "media.type.unsupported", EXIT_USAGE, contains=str(fake), summary=True)
    w.unchanged()


# --------------------------------------------------------------------------- verify: bad sidecars


def _edit_sidecar(photo: Path, edit: Any) -> Path:
    path = sidecar_path(photo)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


@sqlite_only
def test_verify_sidecar_with_malformed_json(world: World) -> None:
    side = sidecar_path(world.photo)
    side.write_text(side.read_text()[:100])  # cut in the middle of the JSON
    w = world.freeze()
    assert_error(verify_cli(str(w.photo)), "sidecar.malformed", EXIT_USAGE, contains=str(side), summary=True)
    w.unchanged()


@sqlite_only
def test_verify_sidecar_with_future_version(world: World) -> None:
    side = _edit_sidecar(world.photo, lambda d: d.update(version=99))
    w = world.freeze()
    assert_error(verify_cli(str(w.photo)), "sidecar.version.unsupported", EXIT_USAGE, contains=str(side),
                 summary=True)  # fmt: skip
    w.unchanged()


@sqlite_only
def test_verify_sidecar_whose_manifest_has_future_version(world: World) -> None:
    side = _edit_sidecar(world.photo, lambda d: d["manifest"].update(version=2))
    w = world.freeze()
    assert_error(verify_cli(str(w.photo)), "manifest.version.unsupported", EXIT_USAGE, contains=str(side),
                 summary=True)  # fmt: skip
    w.unchanged()


def test_verify_sidecar_with_forged_signature(world: World) -> None:
    def forge(data: dict[str, Any]) -> None:
        sig = bytearray(base64.b64decode(data["signature"]))
        sig[len(sig) // 2] ^= 0x01
        data["signature"] = base64.b64encode(bytes(sig)).decode()

    _edit_sidecar(world.photo, forge)
    w = world.freeze()
    [verdict] = assert_verdicts(verify_cli("--json", str(w.photo)), EXIT_BAD)
    assert verdict["path"] == str(w.photo)
    assert verdict["state"] == "tampered"
    assert "provenance.sidecar.signature.invalid" in verdict["codes"]
    w.unchanged()


def test_verify_sidecar_signed_by_unknown_signer(world: World) -> None:
    genuine = read_sidecar(world.photo)
    assert genuine is not None
    stranger = generate_signing_key()
    digest = sha256_file(world.other)
    manifest = Manifest(
        content_digest=digest, media_type="image/jpeg", size_bytes=world.other.stat().st_size,
        algorithm=stranger.algorithm, key_id=stranger.key_id, signed_at=format_timestamp(datetime.now(UTC)),
    )  # fmt: skip
    manifest_bytes = manifest.canonical_bytes()
    Sidecar(
        manifest=manifest, manifest_bytes=manifest_bytes, signature=stranger.sign(MANIFEST_CONTEXT, manifest_bytes),
        public_key=stranger.public_key, record_id=genuine.record_id, logged_at=genuine.logged_at,
        proof=genuine.proof, tree_head=genuine.tree_head,
    ).write(sidecar_path(world.other))  # fmt: skip
    w = world.freeze()
    [verdict] = assert_verdicts(verify_cli("--json", str(w.other)), EXIT_BAD)
    assert verdict["path"] == str(w.other)
    assert verdict["state"] == "unverified"
    assert "provenance.sidecar.signature.valid" in verdict["codes"]
    assert "registry.signer.unknown" in verdict["codes"]
    w.unchanged()


def test_verify_sidecar_replayed_next_to_another_file(world: World) -> None:
    shutil.copyfile(sidecar_path(world.photo), sidecar_path(world.other))
    w = world.freeze()
    [verdict] = assert_verdicts(verify_cli("--json", str(w.other)), EXIT_BAD)
    assert verdict["path"] == str(w.other)
    assert verdict["state"] == "tampered"
    assert {"provenance.content.mismatch", "provenance.sidecar.replayed"} <= set(verdict["codes"])
    w.unchanged()


def test_verify_good_and_missing_file_reports_both(world: World) -> None:
    w = world.freeze()
    missing = w.media / "missing.jpg"
    good, bad = assert_verdicts(verify_cli("--json", str(w.photo), str(missing)), EXIT_USAGE)
    assert (good["path"], good["state"]) == (str(w.photo), "authentic")
    assert bad == {"path": str(missing), "state": "error", "codes": ["media.file.not_found"],
                   "error": f"{missing}: no such file", "content_digest": None, "evidence": {}}  # fmt: skip
    w.unchanged()


# --------------------------------------------------------------------------- database


@sqlite_only
def test_database_unreachable(world: World) -> None:
    w = world.freeze()
    result = run_cli("sign", str(w.other), "--signer", SIGNER,
                     env={"AUTHENTICITY_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none"})  # fmt: skip
    assert_error(result, "registry.database.unreachable", EXIT_UNAVAILABLE, contains="127.0.0.1:1")
    w.unchanged()


@sqlite_only
def test_database_locked(world: World, tmp_path: Path) -> None:
    w = world.freeze()
    holder = sqlite3.connect(tmp_path / "registry.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        result = run_cli("sign", str(w.other), "--signer", SIGNER, env={"AUTHENTICITY_DB_TIMEOUT": "0.3"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_error(result, "registry.database.locked", EXIT_UNAVAILABLE)
    w.unchanged()


@sqlite_only
def test_database_url_malformed(world: World) -> None:
    w = world.freeze()
    result = run_cli("sign", str(w.other), "--signer", SIGNER, env={"AUTHENTICITY_DATABASE_URL": "not a url"})
    assert_error(result, "config.database_url.invalid", EXIT_USAGE, contains="'not a url'")
    w.unchanged()
