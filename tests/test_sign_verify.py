"""Signing at capture and verification by exact hash, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from authenticity import sign_file, verify_file
from authenticity.cli.app import app
from authenticity.config import Settings
from authenticity.provenance.capture import Signer
from authenticity.provenance.sidecar import read_sidecar, sidecar_path
from authenticity.registry import db, repository
from authenticity.registry.models import Revocation
from authenticity.registry.store import open_registry
from authenticity.verify import VerdictState, Verifier

from .conftest import PASSPHRASE, write_photo

runner = CliRunner()


def _cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def signer(home: Path) -> str:
    code, _out, err = _cli("signer", "create", "cam-1")
    assert code == 0, err
    return "cam-1"


def test_signer_create_writes_encrypted_key_and_registers_public_key(home: Path, signer: str) -> None:
    key_file = home / "keys" / "cam-1.key"
    assert key_file.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert key_file.stat().st_mode & 0o777 == 0o600
    _code, out, _ = _cli("signer", "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["name"] for r in rows] == ["cam-1"] and rows[0]["algorithm"] == "ed25519"
    assert rows[0]["revoked"] is False


def test_ecdsa_signer_signs_and_verifies(home: Path, photo: Path) -> None:
    assert _cli("signer", "create", "cam-ec", "--algorithm", "ecdsa-p256")[0] == 0
    assert _cli("sign", str(photo), "--signer", "cam-ec")[0] == 0
    assert verify_file(photo, detector=False).state is VerdictState.AUTHENTIC


def test_sign_then_verify_is_authentic_with_evidence(home: Path, signer: str, photo: Path) -> None:
    code, out, err = _cli("sign", str(photo), "--signer", signer, "--claim", "author=Ana")
    assert code == 0, err
    sidecar = read_sidecar(photo)
    assert sidecar is not None and sidecar.manifest.claims == {"author": "Ana"}
    assert sidecar.manifest.media_type == "image/jpeg"
    code, out, _ = _cli("verify", "--no-detector", str(photo), "--json")
    assert code == 0
    verdict = json.loads(out)
    assert verdict["state"] == "authentic" and verdict["path"] == str(photo)
    for expected in (
        "registry.record.found",
        "provenance.signature.valid",
        "registry.signer.trusted",
        "log.inclusion.verified",
        "provenance.sidecar.signature.valid",
        "log.consistency.verified",
    ):
        assert expected in verdict["codes"]  # fmt: skip
    assert verdict["evidence"]["record"]["signer"] == "cam-1"


def test_verify_without_sidecar_uses_the_registry(home: Path, signer: str, photo: Path) -> None:
    sign_file(photo, signer=signer, passphrase=PASSPHRASE)
    sidecar_path(photo).unlink()
    verdict = verify_file(photo, detector=False)
    assert verdict.state is VerdictState.AUTHENTIC
    assert "provenance.sidecar.present" not in verdict.codes


def test_one_changed_byte_is_not_authentic(home: Path, signer: str, photo: Path, tmp_path: Path) -> None:
    sign_file(photo, signer=signer, passphrase=PASSPHRASE)
    copy = tmp_path / "copy.jpg"
    data = bytearray(photo.read_bytes())
    data[len(data) // 2] ^= 0x01  # still decodes: a JPEG entropy-coded byte
    copy.write_bytes(bytes(data))
    shutil.copyfile(sidecar_path(photo), sidecar_path(copy))
    verdict = verify_file(copy, detector=False)
    assert verdict.state is VerdictState.TAMPERED
    assert "provenance.content.mismatch" in verdict.codes
    sidecar_path(copy).unlink()
    # Without the sidecar nothing vouches for these bytes; a flipped entropy-coded bit shifts every
    # later block's DC value, so the picture is no near-copy either (PDQ distance 58 > 31).
    without = verify_file(copy, detector=False)
    assert without.state is VerdictState.UNVERIFIED
    assert without.near_matches == () and "nearmatch.none" in without.codes


def test_unsigned_file_is_unverified_and_exits_1(home: Path, photo: Path) -> None:
    code, out, _ = _cli("verify", "--no-detector", str(photo), "--json")
    assert code == 1
    assert json.loads(out)["state"] == "unverified"
    assert json.loads(out)["codes"] == [
        "c2pa.absent",
        "registry.record.not_found",
        "nearmatch.none",
        "detector.skipped",
    ]


def test_folder_signing_and_verification_many_files(home: Path, signer: str, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    for i in range(5):
        write_photo(folder / f"p{i}.jpg", seed=100 + i)
    write_photo(folder / "sub" / "q.png", seed=200)
    code, out, err = _cli("sign", str(folder), "--signer", signer)
    assert code == 0, err
    assert len(list(folder.rglob("*.authenticity.json"))) == 6
    code, out, _ = _cli("verify", "--no-detector", str(folder), "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 6 and {r["state"] for r in rows} == {"authentic"}


def test_revocation_with_compromise_time_splits_records(home: Path, signer: str, tmp_path: Path) -> None:
    early = write_photo(tmp_path / "early.jpg", seed=11)
    late = write_photo(tmp_path / "late.jpg", seed=12)
    settings = Settings()
    loaded = Signer(settings, signer, PASSPHRASE.encode())
    loaded.sign(early)
    cutoff = datetime.now(UTC)
    loaded.sign(late)
    code, _, err = _cli("signer", "revoke", signer, "--reason", "stolen camera",
                        "--compromised-at", cutoff.isoformat())  # fmt: skip
    assert code == 0, err
    verifier = Verifier(settings, detector=False)
    assert verifier.verify(early).state is VerdictState.AUTHENTIC
    assert "registry.signer.revoked_later" in verifier.verify(early).codes
    late_verdict = verifier.verify(late)
    assert late_verdict.state is VerdictState.REVOKED
    assert "registry.signer.revoked" in late_verdict.codes
    code, _out, _ = _cli("verify", "--no-detector", str(early), str(late), "--json")
    assert code == 1


def test_revocation_without_time_keeps_earlier_records(home: Path, signer: str, photo: Path) -> None:
    sign_file(photo, signer=signer, passphrase=PASSPHRASE)
    assert _cli("signer", "revoke", signer, "--reason", "retired")[0] == 0
    assert verify_file(photo, detector=False).state is VerdictState.AUTHENTIC
    with db.session_scope(open_registry(Settings())) as session:
        revocation = session.query(Revocation).one()
        assert revocation.compromised_at is None
        assert revocation.untrusted_from <= datetime.now(UTC) + timedelta(seconds=1)
        assert repository.get_signer(session, signer).revocation is not None


def test_python_api_sign_file_uses_env_passphrase(home: Path, signer: str, photo: Path) -> None:
    result = sign_file(photo, signer=signer)
    assert result.leaf_index == 0 and result.tree_size == 1
    assert result.content_digest.startswith("sha256:")
    assert verify_file(photo, detector=False).state is VerdictState.AUTHENTIC


def test_exif_capture_metadata_goes_into_the_manifest(home: Path, signer: str, tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "exif.jpg"
    img = Image.new("RGB", (64, 48), (120, 30, 200))
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS R5"
    exif.get_ifd(0x8769)[0x9003] = "2026:11:25 10:11:12"
    img.save(path, exif=exif, quality=90)
    sign_file(path, signer=signer)
    sidecar = read_sidecar(path)
    assert sidecar is not None
    capture = sidecar.manifest.capture
    assert capture["device_make"] == "Canon" and capture["device_model"] == "EOS R5"
    assert str(capture["captured_at"]).startswith("2026-11-25T10:11:12")


def test_verify_never_imports_torch(home: Path, signer: str, photo: Path) -> None:
    """Provenance-only verification works without the detect extra; asking for the detector then
    fails with one clear code instead of an ImportError traceback."""
    sign_file(photo, signer=signer)
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any import of torch would now raise
        "from typer.testing import CliRunner\n"
        "from authenticity.cli.app import app\n"
        f"r = CliRunner().invoke(app, ['verify', '--no-detector', {str(photo)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'timm' not in sys.modules and 'torchvision' not in sys.modules\n"
        f"r = CliRunner().invoke(app, ['verify', {str(photo)!r}])\n"
        "assert r.exit_code == 2, r.output\n"
        "assert 'error: detector.unavailable:' in r.output and 'Traceback' not in r.output, r.output\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_demo_signs_verifies_and_detects(home: Path, tmp_path: Path) -> None:
    code, out, err = _cli("demo", "--workdir", str(tmp_path / "demo"))
    assert code == 0, err
    assert "demo OK" in out and "P(synthetic)" in out
    originals = list((tmp_path / "demo").glob("original-*.jpg"))
    assert len(originals) == 1 and verify_file(originals[0], detector=False).state is VerdictState.AUTHENTIC


def test_log_head_prints_a_tree_head_signed_by_the_log_key(home: Path, signer: str, photo: Path) -> None:
    from authenticity.provenance.keys import load_private_key
    from authenticity.registry.log import SignedTreeHead

    code, out, _ = _cli("log", "head")
    assert code == 0 and json.loads(out) == {"tree_size": 0}
    sign_file(photo, signer=signer)
    code, out, _ = _cli("log", "head")
    head = SignedTreeHead.from_dict(json.loads(out))
    assert code == 0 and head.tree_size == 1
    head.verify(load_private_key(Settings().log_key_path, None).public_key)


def test_a_verifier_started_before_the_log_key_existed_trusts_it_later(home: Path, signer: str, photo: Path) -> None:
    """Regression: a long-lived verifier (the HTTP service) read the trusted log keys once, at start,
    so everything signed afterwards came out ``tampered`` (``log.key.untrusted``)."""
    settings = Settings()
    assert not settings.log_key_path.exists()
    verifier = Verifier(settings, detector=False)
    sign_file(photo, signer=signer, passphrase=PASSPHRASE)
    verdict = verifier.verify(photo)
    assert verdict.state is VerdictState.AUTHENTIC and "log.key.untrusted" not in verdict.codes
