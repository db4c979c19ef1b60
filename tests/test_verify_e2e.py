"""End to end: one verdict from provenance, near-match, C2PA and the shipped detector, on real files.

sign an original → exact copy is ``authentic`` → JPEG q=80 at half size is ``authentic-derivative``
naming the original → a heavy edit falls through to the detector → an unsigned DCGAN face is
``likely-synthetic``. Plus: near-matches never come from unsigned index rows or revoked originals,
videos match by the vPDQ rule, C2PA credentials written by ``sign --embed c2pa`` verify, and
``verify --json`` emits exactly one object per file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import text

from authenticity.config import Settings
from authenticity.provenance.capture import Signer
from authenticity.provenance.keys import Algorithm
from authenticity.provenance.keystore import create_signer_key
from authenticity.registry import db, repository
from authenticity.registry.store import open_registry
from authenticity.verify import VerdictState, Verifier

from .conftest import PASSPHRASE

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _photo(path: Path, seed: int, size: tuple[int, int] = (360, 480)) -> Path:
    """A photo-like JPEG with structure at every scale (so PDQ has quality and the detector has texture)."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = cv2.resize(rng.integers(0, 256, (h // 24, w // 24, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(12):
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, center, int(rng.integers(10, 80)), [int(v) for v in rng.integers(0, 256, 3)], -1)
    img = cv2.GaussianBlur(img, (5, 5), 0)
    img = cv2.add(img, rng.integers(0, 12, img.shape, dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def _derive(src: Path, dst: Path) -> Path:
    img = cv2.imread(str(src))
    small = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    assert cv2.imwrite(str(dst), small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return dst


def _heavy_edit(src: Path, dst: Path) -> Path:
    img = cv2.imread(str(src))
    crop = cv2.flip(img[: img.shape[0] // 2, : img.shape[1] // 2], 1)
    cv2.rectangle(crop, (5, 5), (crop.shape[1] // 2, crop.shape[0] // 2), (0, 255, 0), -1)
    assert cv2.imwrite(str(dst), crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return dst


@pytest.fixture
def signer(settings: Settings) -> Signer:
    key = create_signer_key(settings, "cam-1", Algorithm.ED25519, PASSPHRASE.encode())
    engine = open_registry(settings)
    with db.session_scope(engine) as session:
        repository.add_signer(session, "cam-1", key.public_key, datetime.now(UTC))
    return Signer(settings, "cam-1", PASSPHRASE.encode())


def test_sign_exact_derivative_heavy_edit_and_synthetic(settings: Settings, signer: Signer, tmp_path: Path) -> None:
    pytest.importorskip("gan_face_generate", reason="gan-face-generate is installed by the README test command")
    from authenticity.detection.train.synth import dcgan_faces

    original = _photo(tmp_path / "original.jpg", seed=5)
    result = signer.sign(original)
    assert result.perceptual == 1
    derived = _derive(original, tmp_path / "derived.jpg")
    heavy = _heavy_edit(original, tmp_path / "heavy.jpg")
    face = tmp_path / "face.png"
    assert cv2.imwrite(str(face), dcgan_faces(1, np.random.default_rng(0))[0])

    verifier = Verifier(settings)  # the shipped detector
    exact = verifier.verify(original)
    assert exact.state is VerdictState.AUTHENTIC and exact.detection is not None
    assert exact.evidence["record"]["id"] == result.record_id and "log.inclusion.verified" in exact.codes
    assert exact.evidence["log"]["inclusion_proof"]["leaf_index"] == result.leaf_index

    near = verifier.verify(derived)
    assert near.state is VerdictState.AUTHENTIC_DERIVATIVE
    assert [m.record_id for m in near.near_matches] == [result.record_id]
    assert near.near_matches[0].content_digest == result.content_digest and near.near_matches[0].distance <= 31
    assert "nearmatch.found" in near.codes and near.trusted

    edited = verifier.verify(heavy)
    assert edited.near_matches == () and "nearmatch.none" in edited.codes
    assert edited.detection is not None and edited.detection.score is not None
    assert edited.state in {VerdictState.LIKELY_SYNTHETIC, VerdictState.UNCERTAIN, VerdictState.UNVERIFIED}
    assert f"detector.{edited.detection.label}" in edited.codes

    synthetic = verifier.verify(face)
    assert synthetic.state is VerdictState.LIKELY_SYNTHETIC and synthetic.audit and not synthetic.trusted
    assert synthetic.detection is not None and synthetic.detection.score is not None
    assert synthetic.detection.score >= 0.65 and synthetic.detection.tiles
    as_json = synthetic.to_dict()
    assert as_json["evidence"]["detector"]["label"] == "synthetic" and as_json["evidence"]["near_matches"] == []


def test_near_match_needs_the_original_to_verify(settings: Settings, signer: Signer, tmp_path: Path) -> None:
    original = _photo(tmp_path / "original.jpg", seed=6)
    signer.sign(original)
    derived = _derive(original, tmp_path / "derived.jpg")
    verifier = Verifier(settings, detector=False)
    assert verifier.verify(derived).state is VerdictState.AUTHENTIC_DERIVATIVE
    with db.session_scope(signer.engine) as session:
        # Compromised before the original was logged: the original no longer vouches for anything.
        repository.revoke_signer(session, "cam-1", "stolen camera", datetime.now(UTC), datetime(2000, 1, 1, tzinfo=UTC))
    after = Verifier(settings, detector=False).verify(derived)
    assert after.state is VerdictState.UNVERIFIED and after.near_matches == ()
    assert "nearmatch.none" in after.codes


def test_unsigned_index_rows_cannot_create_a_near_match(settings: Settings, signer: Signer, tmp_path: Path) -> None:
    """A row slipped into perceptual_hash (trigger dropped) pointing an unrelated image at a record."""
    original = _photo(tmp_path / "original.jpg", seed=7)
    record_id = signer.sign(original).record_id
    other = _photo(tmp_path / "other.jpg", seed=8)
    from authenticity.media.pdq import pdq_file

    forged = pdq_file(other, max_pixels=settings.max_pixels)[0]
    with signer.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO perceptual_hash (record_id, frame_index, algorithm, hash, quality) "
                "VALUES (:r, 99, 'pdq', :h, 100)"
            ),
            {"r": record_id, "h": forged.bits},
        )
    verdict = Verifier(settings, detector=False).verify(other)
    assert verdict.state is VerdictState.UNVERIFIED and verdict.near_matches == ()


def _video(path: Path, seed: int, *, size: tuple[int, int] = (160, 120), frames: int = 48, fps: int = 8) -> Path:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), size, interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        frame = np.roll(base, i * 2, axis=1)
        cv2.circle(frame, (20 + i * 2, 60), 15, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def _reencode_video(src: Path, dst: Path, scale: float) -> Path:
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    cap.release()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return dst


def test_video_near_match_by_the_vpdq_rule(settings: Settings, signer: Signer, tmp_path: Path) -> None:
    original = _video(tmp_path / "clip.mp4", seed=1)
    result = signer.sign(original)
    assert result.perceptual >= 5
    copy = _reencode_video(original, tmp_path / "copy.mp4", 0.5)
    other = _video(tmp_path / "other.mp4", seed=2)
    verifier = Verifier(settings, detector=False)
    near = verifier.verify(copy)
    assert near.state is VerdictState.AUTHENTIC_DERIVATIVE
    match = near.near_matches[0]
    assert match.record_id == result.record_id and match.query_fraction is not None
    assert match.query_fraction >= 0.8 and (match.original_fraction or 0) >= 0.8
    assert verifier.verify(other).state is VerdictState.UNVERIFIED


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "AUTHENTICITY_HOME": str(home), "AUTHENTICITY_KEY_PASSPHRASE": PASSPHRASE,
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "authenticity", *args], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip


def test_sign_embed_c2pa_then_verify(home: Path, tmp_path: Path) -> None:
    assert _cli(home, "signer", "create", "cam-1").returncode == 0
    original = _photo(tmp_path / "shot.jpg", seed=9)
    before = original.read_bytes()
    missing_ca = _cli(home, "sign", str(original), "--signer", "cam-1", "--embed", "c2pa")
    assert missing_ca.returncode == 2 and "error: ca.missing:" in missing_ca.stderr
    assert "Traceback" not in missing_ca.stderr and not (tmp_path / "shot.c2pa.jpg").exists()
    assert _cli(home, "ca", "init").returncode == 0
    # Bad input is refused before a certificate, key or folder is written (regression: they were).
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("x")
    embed = ("--signer", "cam-1", "--embed", "c2pa")
    refused = _cli(home, "sign", str(original), *embed, "--out", str(tmp_path / "a-file"))
    assert refused.returncode == 2 and refused.stderr.startswith("error: usage.out.not_a_folder:")
    refused = _cli(home, "sign", str(tmp_path / "empty"), *embed, "--out", str(tmp_path / "new"))
    assert refused.returncode == 2 and refused.stderr.startswith("error: usage.no_files:")
    assert not (tmp_path / "new").exists() and not (home / "ca" / "signers" / "cam-1.pem").exists()
    signed = _cli(home, "sign", str(original), "--signer", "cam-1", "--embed", "c2pa")
    assert signed.returncode == 0, signed.stderr
    embedded = tmp_path / "shot.c2pa.jpg"
    assert original.read_bytes() == before and embedded.exists()
    out = _cli(home, "verify", "--no-detector", "--json", str(embedded), str(original))
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 2 and out.returncode == 0
    credentialed, plain = rows
    assert credentialed["state"] == "authentic" and "c2pa.valid" in credentialed["codes"]
    assert credentialed["evidence"]["c2pa"]["state"] == "valid"
    assert credentialed["evidence"]["c2pa"]["declared_synthetic"] is False
    # The un-embedded original was never registered itself: it is the same picture without credentials.
    assert plain["state"] == "authentic-derivative" and plain["evidence"]["near_matches"][0]["distance"] == 0
    # One byte changed inside the image data: C2PA's hash and our sidecar both disagree.
    tampered = tmp_path / "tampered.c2pa.jpg"
    data = bytearray(embedded.read_bytes())
    data[-200] ^= 0xFF
    tampered.write_bytes(bytes(data))
    shutil.copyfile(str(embedded) + ".authenticity.json", str(tampered) + ".authenticity.json")
    out = _cli(home, "verify", "--no-detector", "--json", str(tampered))
    [row] = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 1 and row["state"] == "tampered"
    assert "c2pa.content.mismatch" in row["codes"] and "provenance.content.mismatch" in row["codes"]


def test_declared_ai_generated_c2pa_fixture(home: Path) -> None:
    fixture = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "c2pa" / "C.jpg"
    if not fixture.exists():
        pytest.skip(f"C2PA fixtures not found at {fixture.parent} (../shared is absent)")
    out = _cli(home, "verify", "--no-detector", "--json", str(fixture))
    [row] = [json.loads(line) for line in out.stdout.splitlines()]
    assert row["state"] == "declared-synthetic" and row["audit"] is True
    assert row["evidence"]["c2pa"]["declared_synthetic"] is True


def test_verify_json_is_one_object_per_file_and_nothing_else(home: Path, tmp_path: Path) -> None:
    files = [_photo(tmp_path / f"p{i}.jpg", seed=20 + i, size=(96, 128)) for i in range(3)]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    out = _cli(home, "verify", "--no-detector", "--json", *map(str, files), str(bad))
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["path"] for r in rows] == [*map(str, files), str(bad)]
    assert [r["state"] for r in rows] == ["unverified"] * 3 + ["error"]
    assert rows[-1]["codes"] == ["media.type.unsupported"] and out.returncode == 2


def test_c2pa_credentials_of_a_revoked_signer_are_revoked(settings: Settings, signer: Signer, tmp_path: Path) -> None:
    """Regression: the certificate travels inside every file, so a stolen key kept minting credentials
    that verified as ``authentic`` (row 6) after its signer was revoked in the registry."""
    from authenticity.provenance.c2pa import DigitalSourceType
    from authenticity.provenance.c2pa_write import embed_c2pa
    from authenticity.provenance.ca import init_ca, issue_signer_certificate

    init_ca(settings, PASSPHRASE.encode())
    chain = issue_signer_certificate(settings, "cam-1", signer.key.public_key, PASSPHRASE.encode())

    def credentialed(name: str, seed: int) -> Path:
        dst = tmp_path / f"{name}.c2pa.jpg"
        capture = DigitalSourceType.DIGITAL_CAPTURE
        embed_c2pa(_photo(tmp_path / f"{name}.jpg", seed=seed), dst, key=signer.key, cert_chain_pem=chain,
                   claim_generator="test", title=name, digital_source_type=capture)  # fmt: skip
        return dst

    before = Verifier(settings, detector=False).verify(credentialed("before", 30))
    assert before.state is VerdictState.AUTHENTIC and "c2pa.valid" in before.codes
    with db.session_scope(signer.engine) as session:
        repository.revoke_signer(session, "cam-1", "stolen camera", datetime.now(UTC), datetime(2000, 1, 1, tzinfo=UTC))
    verifier = Verifier(settings, detector=False)
    for path in (tmp_path / "before.c2pa.jpg", credentialed("after", 31)):  # minted with the stolen key
        verdict = verifier.verify(path)
        assert verdict.state is VerdictState.REVOKED, verdict.codes
        assert "c2pa.signer.revoked" in verdict.codes and not verdict.trusted


def _c2pa_fixture(name: str) -> Path:
    fixture = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "c2pa" / name
    if not fixture.exists():
        pytest.skip(f"C2PA fixture {name} not found at {fixture.parent} (../shared is absent)")
    return fixture


def test_remote_only_c2pa_manifest_is_reported_not_fatal(settings: Settings) -> None:
    """cloud.jpg references its manifest by URL only; fetching is off, so the verdict says so and
    the other channels decide (nothing registered: unverified)."""
    import time

    started = time.monotonic()
    verdict = Verifier(settings, detector=False).verify(_c2pa_fixture("cloud.jpg"))
    assert time.monotonic() - started < 5
    assert verdict.state is VerdictState.UNVERIFIED and verdict.c2pa is None
    assert verdict.codes == (
        "c2pa.unreadable.c2pa.manifest.remote",
        "registry.record.not_found",
        "nearmatch.none",
        "detector.skipped",
    )
    assert verdict.to_dict()["evidence"]["c2pa"] is None


def test_nested_moov_parser_bomb_is_refused_fast_before_any_c2pa_read(settings: Settings) -> None:
    """1000 nested moov boxes: the media inspection (FFmpeg: "Atoms too deeply nested") refuses the
    file before C2PA is read, so verify raises media.decode.failed instead of hanging."""
    import time

    from authenticity.errors import AuthenticityError

    started = time.monotonic()
    with pytest.raises(AuthenticityError) as excinfo:
        Verifier(settings, detector=False).verify(_c2pa_fixture("nested_moov_1000.mp4"))
    assert excinfo.value.code == "media.decode.failed"
    assert time.monotonic() - started < 5


def test_verify_of_a_parser_bomb_prints_our_line_and_nothing_from_ffmpeg(home: Path) -> None:
    """Regression: FFmpeg's and OpenCV's own warnings ("Atoms too deeply nested", "[ WARN:0 ...]")
    reached stderr beside our one error line."""
    bomb = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "c2pa" / "nested_moov_1000.mp4"
    if not bomb.exists():
        pytest.skip(f"C2PA fixtures not found at {bomb.parent} (../shared is absent)")
    out = _cli(home, "verify", "--no-detector", str(bomb))
    assert out.returncode == 2
    expected = f"error: media.decode.failed: {bomb}: video does not open (no demuxer accepts it)"
    assert out.stderr.splitlines() == [expected, "1 files: 1 error"]
