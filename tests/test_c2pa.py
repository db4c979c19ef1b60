"""C2PA Content Credentials: reading c2pa-rs fixtures, and embedding with our own CA.

Fixtures (``../shared/fixtures/c2pa``) come from c2pa-rs; ``*.known_good.json`` is its
reader's output for the same file. Their signer chains to the c2pa-rs *test*
intermediate CA, which is not under our anchors unless a test adds it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import pytest
from cryptography import x509

from authenticity.config import Settings
from authenticity.errors import AuthenticityError
from authenticity.provenance import c2pa_read
from authenticity.provenance.c2pa import DigitalSourceType, is_synthetic_source_type
from authenticity.provenance.c2pa_read import C2paAction, C2paState, map_status_code, read_c2pa
from authenticity.provenance.c2pa_write import CLAIMS_LABEL, embed_c2pa
from authenticity.provenance.ca import default_trust_anchors, init_ca, issue_signer_certificate, load_root
from authenticity.provenance.keys import (
    Algorithm,
    SigningKey,
    generate_signing_key,
    load_certificates,
    load_private_key,
)

from .conftest import write_photo
from .media_samples import write_video

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "c2pa"
CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


@pytest.fixture(scope="module")
def fx() -> Path:
    if not (FIXTURES / "CA.jpg").is_file():
        pytest.skip(f"C2PA fixtures not found at {FIXTURES} (shared/fixtures/c2pa from c2pa-rs)")
    return FIXTURES


@pytest.fixture(scope="module")
def test_intermediate(fx: Path) -> bytes:
    """The c2pa-rs test intermediate CA, cut out of CA.jpg's x5chain (the leaf's issuer)."""
    data = (fx / "CA.jpg").read_bytes()
    found: dict[bytes, x509.Certificate] = {}
    start = data.find(b"\x30\x82")
    while start >= 0:
        der = data[start : start + 4 + int.from_bytes(data[start + 2 : start + 4])]
        with contextlib.suppress(ValueError):  # not every 0x30 0x82 starts a certificate
            found[der] = x509.load_der_x509_certificate(der)
        start = data.find(b"\x30\x82", start + 2)
    leaf = next(c for c in found.values() if "C2PA Signer" in c.subject.rfc4514_string())
    der = next(d for d, c in found.items() if c.subject == leaf.issuer)
    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"


def known_good(fx: Path, name: str) -> dict[str, Any]:
    store = json.loads((fx / f"{name}.known_good.json").read_text())
    manifest: dict[str, Any] = store["manifests"][store["active_manifest"]]
    return manifest


def _code(excinfo: pytest.ExceptionInfo[AuthenticityError]) -> str:
    return excinfo.value.code


# --------------------------------------------------------------------------- reading fixtures


def test_intact_manifest_of_an_unknown_signer_is_untrusted(fx: Path) -> None:
    report = read_c2pa(fx / "CA.jpg", trust_anchors_pem=None)
    assert report is not None
    assert report.state is C2paState.UNTRUSTED
    assert report.codes == ("c2pa.signer.untrusted",)
    assert report.raw_codes == ("signingCredential.untrusted",)
    good = known_good(fx, "CA")
    assert report.claim_generator == good["claim_generator"] and report.title == good["title"]
    assert report.signer is not None
    assert report.signer.common_name == good["signature_info"]["common_name"]
    assert report.signer.organization == good["signature_info"]["issuer"]
    assert (
        report.signer.subject.startswith("CN=C2PA Signer,")
        and "O=C2PA Test Intermediate Root CA" in report.signer.issuer
    )
    assert [(i.title, i.relationship) for i in report.ingredients] == [
        (i["title"], i["relationship"]) for i in good["ingredients"]
    ]
    actions = next(a for a in good["assertions"] if a["label"].startswith("c2pa.actions"))["data"]["actions"]
    assert [a.action for a in report.actions] == [a["action"] for a in actions]
    assert report.declared_synthetic is False and report.digital_source_type is None
    assert json.loads(json.dumps(report.to_dict()))["state"] == "untrusted"


def test_same_file_is_valid_under_its_ca_as_trust_anchor(fx: Path, test_intermediate: bytes) -> None:
    report = read_c2pa(fx / "CA.jpg", trust_anchors_pem=test_intermediate)
    assert report is not None and report.state is C2paState.VALID and report.codes == ()


INTEGRITY_FAILURES = [
    ("XCA.jpg", "c2pa.content.mismatch", "assertion.dataHash.mismatch"),
    ("E-sig-CA.jpg", "c2pa.signature.invalid", "claimSignature.mismatch"),
]


@pytest.mark.parametrize(("name", "code", "raw"), INTEGRITY_FAILURES)
def test_integrity_failures_are_invalid_with_the_mapped_code(
    fx: Path, test_intermediate: bytes, name: str, code: str, raw: str
) -> None:
    trusted = read_c2pa(fx / name, trust_anchors_pem=test_intermediate)
    assert trusted is not None and trusted.state is C2paState.INVALID
    assert trusted.codes == (code,) and trusted.raw_codes == (raw,)
    untrusted = read_c2pa(fx / name, trust_anchors_pem=None)
    assert untrusted is not None and untrusted.state is C2paState.INVALID
    assert untrusted.codes == ("c2pa.signer.untrusted", code)


def test_known_good_agrees_on_the_data_hash_failure(fx: Path) -> None:
    good = json.loads((fx / "XCA.known_good.json").read_text())["validation_results"]["activeManifest"]["failure"]
    assert "assertion.dataHash.mismatch" in [s["code"] for s in good]


@pytest.mark.parametrize("name", ["no_manifest.jpg", "libpng-test.png", "sample1.png", "video1_no_manifest.mp4"])
def test_files_without_a_manifest_read_as_none(fx: Path, name: str) -> None:
    assert read_c2pa(fx / name, trust_anchors_pem=None) is None


def test_generative_ai_edit_is_declared_synthetic(fx: Path) -> None:
    report = read_c2pa(fx / "ocsp.jpg", trust_anchors_pem=None)
    assert report is not None and report.state is C2paState.UNTRUSTED
    assert report.declared_synthetic is True
    assert report.digital_source_type is not None
    assert report.digital_source_type.endswith("/compositeWithTrainedAlgorithmicMedia")
    assert any(a.software_agent == "Adobe Firefly" for a in report.actions)


def test_algorithmic_media_counts_as_synthetic(fx: Path) -> None:
    report = read_c2pa(fx / "C.jpg", trust_anchors_pem=None)
    assert report is not None and report.declared_synthetic is True
    assert report.digital_source_type == "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"


def test_video_manifest_is_read(fx: Path) -> None:
    report = read_c2pa(fx / "video1.mp4", trust_anchors_pem=None)
    assert report is not None and report.state is C2paState.UNTRUSTED
    assert report.codes == ("c2pa.signer.untrusted", "c2pa.ingredient.signer.untrusted")
    assert report.signer is not None and report.signer.algorithm == "es256"
    assert [(i.title, i.relationship) for i in report.ingredients] == [("video1.mp4", "parentOf")]


def test_regression_nested_moov_parser_bomb_raises_fast(fx: Path) -> None:
    started = time.monotonic()
    with pytest.raises(AuthenticityError) as excinfo:
        read_c2pa(fx / "nested_moov_1000.mp4", trust_anchors_pem=None)
    assert _code(excinfo) == "c2pa.asset.unparseable"
    assert time.monotonic() - started < 5


def test_remote_manifest_is_not_fetched(fx: Path) -> None:
    started = time.monotonic()
    with pytest.raises(AuthenticityError) as excinfo:
        read_c2pa(fx / "cloud.jpg", trust_anchors_pem=None)
    assert _code(excinfo) == "c2pa.manifest.remote"
    assert time.monotonic() - started < 2


def test_corrupt_claim_is_an_invalid_report(fx: Path, tmp_path: Path) -> None:
    data = bytearray((fx / "CA.jpg").read_bytes())
    data[data.index(b"c2cl") + 200] ^= 0xFF  # inside the claim's CBOR
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(bytes(data))
    report = read_c2pa(damaged, trust_anchors_pem=None)
    assert report is not None and report.state is C2paState.INVALID
    assert report.codes == ("c2pa.manifest.malformed",) and report.raw_codes == ("sdk.Decoding",)


def test_a_hung_read_times_out(fx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c2pa_read, "_read", lambda *args: time.sleep(2))
    with pytest.raises(AuthenticityError) as excinfo:
        read_c2pa(fx / "CA.jpg", trust_anchors_pem=None, timeout_s=0.1)
    assert _code(excinfo) == "c2pa.read.timeout"


def test_status_code_mapping() -> None:
    assert map_status_code("assertion.bmffHash.mismatch") == "c2pa.content.mismatch"
    assert map_status_code("signingCredential.untrusted") == "c2pa.signer.untrusted"
    assert map_status_code("signingCredential.ocsp.revoked") == "c2pa.signer.revoked"
    assert map_status_code("assertion.hashedURI.mismatch") == "c2pa.assertion.invalid"
    assert map_status_code("something.new") == "c2pa.validation.failed"
    assert is_synthetic_source_type("http://c2pa.org/digitalsourcetype/trainedAlgorithmicData")
    assert not DigitalSourceType.DIGITAL_CAPTURE.is_synthetic


# --------------------------------------------------------------------------- embedding with our CA


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    cfg = Settings(home=tmp_path / "home")
    init_ca(cfg, b"ca passphrase")
    return cfg


def _embed(cfg: Settings, key: SigningKey, src: Path, dst: Path, **kw: Any) -> None:
    chain = issue_signer_certificate(cfg, "cam-1", key.public_key, b"ca passphrase")
    kw.setdefault("digital_source_type", DigitalSourceType.DIGITAL_CAPTURE)
    embed_c2pa(src, dst, key=key, cert_chain_pem=chain, claim_generator="authenticity", title=src.name, **kw)


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_round_trip_is_valid_under_our_root(cfg: Settings, tmp_path: Path, algorithm: Algorithm) -> None:
    src = write_photo(tmp_path / "in.jpg", seed=3)
    original = src.read_bytes()
    dst = tmp_path / "out.jpg"
    key = generate_signing_key(algorithm)
    _embed(cfg, key, src, dst, claims={"author": "Ana"}, digital_source_type=DigitalSourceType.DIGITAL_CAPTURE)
    assert src.read_bytes() == original
    assert cv2.imread(str(dst)) is not None
    report = read_c2pa(dst, trust_anchors_pem=default_trust_anchors(cfg))
    assert report is not None
    assert (report.state, report.codes) == (C2paState.VALID, ())
    leaf = load_certificates((cfg.home / "ca" / "signers" / "cam-1.pem").read_bytes())[0]
    assert report.signer is not None and report.signer.subject == leaf.subject
    assert report.signer.algorithm == {Algorithm.ED25519: "ed25519", Algorithm.ECDSA_P256: "es256"}[algorithm]
    assert report.actions == (C2paAction("c2pa.created", CAPTURE, "authenticity"),)
    assert report.digital_source_type == CAPTURE and report.declared_synthetic is False
    assert report.title == "in.jpg" and report.claim_generator is not None
    assert report.claim_generator.startswith("authenticity/")
    assert CLAIMS_LABEL in report.assertion_labels


def test_without_our_root_the_same_file_is_untrusted(cfg: Settings, tmp_path: Path) -> None:
    dst = tmp_path / "out.jpg"
    _embed(cfg, generate_signing_key(), write_photo(tmp_path / "in.jpg"), dst)
    report = read_c2pa(dst, trust_anchors_pem=None)
    assert report is not None and (report.state, report.codes) == (C2paState.UNTRUSTED, ("c2pa.signer.untrusted",))


def test_one_changed_byte_of_image_data_is_a_content_mismatch(cfg: Settings, tmp_path: Path) -> None:
    dst = tmp_path / "out.jpg"
    _embed(cfg, generate_signing_key(), write_photo(tmp_path / "in.jpg"), dst)
    data = bytearray(dst.read_bytes())
    data[data.rindex(b"\xff\xda") + 40] ^= 0x01  # entropy-coded scan, after the manifest
    dst.write_bytes(bytes(data))
    report = read_c2pa(dst, trust_anchors_pem=default_trust_anchors(cfg))
    assert report is not None and (report.state, report.codes) == (C2paState.INVALID, ("c2pa.content.mismatch",))


@pytest.mark.parametrize("source", ["png", "mp4"])
def test_png_and_mp4_round_trip(cfg: Settings, tmp_path: Path, fx: Path, source: str) -> None:
    src = write_photo(tmp_path / "in.png") if source == "png" else fx / "video1_no_manifest.mp4"
    dst = tmp_path / f"out.{source}"
    _embed(cfg, generate_signing_key(Algorithm.ECDSA_P256), src, dst)
    report = read_c2pa(dst, trust_anchors_pem=default_trust_anchors(cfg))
    assert report is not None and (report.state, report.codes) == (C2paState.VALID, ())


def test_existing_output_is_refused_and_kept(cfg: Settings, tmp_path: Path) -> None:
    dst = tmp_path / "out.jpg"
    dst.write_bytes(b"keep me")
    with pytest.raises(AuthenticityError) as excinfo:
        _embed(cfg, generate_signing_key(), write_photo(tmp_path / "in.jpg"), dst)
    assert _code(excinfo) == "c2pa.output.exists" and dst.read_bytes() == b"keep me"


def test_source_with_credentials_is_refused(cfg: Settings, tmp_path: Path, fx: Path) -> None:
    with pytest.raises(AuthenticityError) as excinfo:
        _embed(cfg, generate_signing_key(), fx / "CA.jpg", tmp_path / "out.jpg")
    assert _code(excinfo) == "c2pa.source.has_manifest" and not (tmp_path / "out.jpg").exists()


def test_unparseable_source_leaves_nothing_behind(cfg: Settings, tmp_path: Path) -> None:
    src = tmp_path / "media" / "broken.jpg"
    src.parent.mkdir()
    src.write_bytes(b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 50)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(AuthenticityError) as excinfo:
        _embed(cfg, generate_signing_key(), src, out_dir / "out.jpg")
    assert _code(excinfo) == "c2pa.asset.unparseable" and list(out_dir.iterdir()) == []


def _embed_with(chain: bytes, key: SigningKey, src: Path, dst: Path) -> None:
    capture = DigitalSourceType.DIGITAL_CAPTURE
    embed_c2pa(src, dst, key=key, cert_chain_pem=chain, claim_generator="a", title="t", digital_source_type=capture)


def test_certificate_for_another_key_is_refused(cfg: Settings, tmp_path: Path) -> None:
    chain = issue_signer_certificate(cfg, "cam-1", generate_signing_key().public_key, b"ca passphrase")
    with pytest.raises(AuthenticityError) as excinfo:
        _embed_with(chain, generate_signing_key(), write_photo(tmp_path / "in.jpg"), tmp_path / "out.jpg")
    assert _code(excinfo) == "c2pa.certificate.mismatch"


def test_signing_key_failure_surfaces_with_its_own_code(
    cfg: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_signing_key()

    def refuse(data: bytes) -> bytes:
        raise AuthenticityError("key.unavailable", "the key is locked")

    monkeypatch.setattr(key, "sign_cose", refuse)
    dst = tmp_path / "out.jpg"
    with pytest.raises(AuthenticityError) as excinfo:
        _embed(cfg, key, write_photo(tmp_path / "in.jpg"), dst)
    assert _code(excinfo) == "key.unavailable" and not dst.exists()


# --------------------------------------------------------------------------- refused embeds: exact code, nothing left


def _out_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out


def test_webm_cannot_carry_c2pa(cfg: Settings, tmp_path: Path) -> None:
    """WebM is the one sniffed type with no C2PA embedding (c2pa-rs has no Matroska handler)."""
    src = write_video(tmp_path / "clip.webm", "VP90")
    out = _out_dir(tmp_path)
    with pytest.raises(AuthenticityError) as excinfo:
        _embed(cfg, generate_signing_key(), src, out / "clip.c2pa.webm")
    assert _code(excinfo) == "c2pa.format.unsupported" and list(out.iterdir()) == []


@pytest.mark.parametrize("via", ["same-path", "symlink"])
def test_output_that_is_the_source_is_refused_even_with_overwrite(cfg: Settings, tmp_path: Path, via: str) -> None:
    src = write_photo(tmp_path / "media" / "in.jpg")
    original = src.read_bytes()
    dst = src
    if via == "symlink":
        dst = tmp_path / "media" / "link.jpg"
        dst.symlink_to(src)
    before = sorted(p.name for p in src.parent.iterdir())
    with pytest.raises(AuthenticityError) as excinfo:
        _embed(cfg, generate_signing_key(), src, dst, overwrite=True)
    assert _code(excinfo) == "c2pa.output.is_source"
    assert src.read_bytes() == original and sorted(p.name for p in src.parent.iterdir()) == before


UNWRITABLE = ["missing-folder", "parent-is-a-file", "proc"]


@pytest.mark.parametrize("where", UNWRITABLE)
def test_output_in_a_folder_that_cannot_hold_files_is_unwritable(cfg: Settings, tmp_path: Path, where: str) -> None:
    """The temporary file next to *dst* cannot be created (root ignores permissions, so these are
    folders nobody can write: one that does not exist, a regular file, and procfs)."""
    src = write_photo(tmp_path / "in.jpg")
    if where == "missing-folder":
        dst = tmp_path / "no-such-folder" / "out.jpg"
    elif where == "parent-is-a-file":
        (tmp_path / "a-file").write_bytes(b"x")
        dst = tmp_path / "a-file" / "out.jpg"
    else:
        if not Path("/proc/self").is_dir():
            pytest.skip("no procfs on this system")
        dst = Path("/proc") / f"authenticity-test-{tmp_path.name}.jpg"
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(AuthenticityError) as excinfo:
        _embed(cfg, generate_signing_key(), src, dst)
    assert _code(excinfo) == "c2pa.output.unwritable"
    assert not dst.exists() and sorted(p.name for p in tmp_path.iterdir()) == before


def test_expired_signing_certificate_is_refused_by_the_sdk(cfg: Settings, tmp_path: Path) -> None:
    """c2pa-rs refuses to sign with a leaf outside its validity (``Signature`` error → embed.failed)."""
    key = generate_signing_key()
    long_ago = datetime.now(UTC) - timedelta(days=11 * 365)  # LEAF_VALIDITY is ten years
    chain = issue_signer_certificate(cfg, "cam-old", key.public_key, b"ca passphrase", now=long_ago)
    out = _out_dir(tmp_path)
    with pytest.raises(AuthenticityError) as excinfo:
        _embed_with(chain, key, write_photo(tmp_path / "in.jpg"), out / "out.jpg")
    assert _code(excinfo) == "c2pa.embed.failed" and "not valid at time of signing" in str(excinfo.value)
    assert list(out.iterdir()) == []


def test_root_certificate_cannot_sign_content(cfg: Settings, tmp_path: Path) -> None:
    """The CA's own key and self-signed root fit together, but C2PA refuses a self-signed signer."""
    root = load_root(cfg)
    ca_key = load_private_key(root.key_path, b"ca passphrase")
    out = _out_dir(tmp_path)
    with pytest.raises(AuthenticityError) as excinfo:
        _embed_with(root.cert.pem(), ca_key, write_photo(tmp_path / "in.jpg"), out / "out.jpg")
    assert _code(excinfo) == "c2pa.embed.failed" and "self-signed" in str(excinfo.value)
    assert list(out.iterdir()) == []
