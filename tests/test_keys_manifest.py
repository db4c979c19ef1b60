"""Keys, signatures and manifests: real keys, real signatures, exact error codes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from authenticity.errors import KeyStoreError, ManifestError, VerificationError
from authenticity.provenance.keys import Algorithm, PublicKey, generate_signing_key, load_private_key, save_private_key
from authenticity.provenance.manifest import MANIFEST_CONTEXT, Manifest, format_timestamp, parse_timestamp


def _manifest(**over: object) -> Manifest:
    fields: dict[str, object] = dict(
        content_digest="sha256:" + "ab" * 32, media_type="image/jpeg", size_bytes=10,
        algorithm=Algorithm.ED25519, key_id="cd" * 32, signed_at="2026-11-25T10:00:00.000000Z",
        capture={"device_make": "Canon"}, claims={"author": "Ana"},
    )  # fmt: skip
    fields.update(over)
    return Manifest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_sign_and_verify_roundtrip_for_each_algorithm(algorithm: Algorithm) -> None:
    key = generate_signing_key(algorithm)
    sig = key.sign(MANIFEST_CONTEXT, b"payload")
    key.public_key.verify(MANIFEST_CONTEXT, b"payload", sig)
    assert key.algorithm is algorithm
    assert PublicKey.from_spki(key.public_key.spki_der).key_id == key.key_id
    assert len(key.key_id) == 64


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_tampered_message_or_other_context_is_rejected(algorithm: Algorithm) -> None:
    key = generate_signing_key(algorithm)
    sig = key.sign(MANIFEST_CONTEXT, b"payload")
    with pytest.raises(VerificationError) as exc:
        key.public_key.verify(MANIFEST_CONTEXT, b"payloae", sig)
    assert exc.value.code == "provenance.signature.invalid"
    with pytest.raises(VerificationError):
        key.public_key.verify(b"authenticity.treehead.v1\x00", b"payload", sig)


def test_signature_by_another_key_is_rejected() -> None:
    a, b = generate_signing_key(), generate_signing_key()
    with pytest.raises(VerificationError) as exc:
        b.public_key.verify(MANIFEST_CONTEXT, b"x", a.sign(MANIFEST_CONTEXT, b"x"))
    assert exc.value.code == "provenance.signature.invalid"


def test_private_key_file_is_encrypted_pkcs8_with_mode_0600(tmp_path: Path) -> None:
    key = generate_signing_key()
    path = tmp_path / "keys" / "k.key"
    save_private_key(key, path, b"secret")
    text = path.read_text()
    assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_private_key(path, b"secret").key_id == key.key_id


def test_wrong_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    save_private_key(generate_signing_key(), path, b"secret")
    with pytest.raises(KeyStoreError) as exc:
        load_private_key(path, b"wrong")
    assert exc.value.code == "key.passphrase.wrong"
    with pytest.raises(KeyStoreError) as exc:
        load_private_key(path, None)
    assert exc.value.code == "key.passphrase.required"


def test_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    save_private_key(generate_signing_key(), path, b"secret")
    before = path.read_bytes()
    with pytest.raises(KeyStoreError) as exc:
        save_private_key(generate_signing_key(), path, b"secret")
    assert exc.value.code == "key.file.exists"
    assert path.read_bytes() == before


def test_missing_and_malformed_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError) as exc:
        load_private_key(tmp_path / "nope.key", b"x")
    assert exc.value.code == "key.file.not_found"
    bad = tmp_path / "bad.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyStoreError) as exc:
        load_private_key(bad, None)
    assert exc.value.code == "key.file.malformed"


def test_manifest_canonical_bytes_are_deterministic_and_sorted() -> None:
    m = _manifest()
    raw = m.canonical_bytes()
    assert raw == _manifest().canonical_bytes()
    assert b" " not in raw.replace(b"image/jpeg", b"")  # no insignificant whitespace
    keys = list(json.loads(raw))
    assert keys == sorted(keys)
    assert Manifest.from_json(raw) == m


def test_manifest_future_version_is_rejected() -> None:
    data = _manifest().to_dict() | {"version": 2}
    with pytest.raises(ManifestError) as exc:
        Manifest.from_dict(data)
    assert exc.value.code == "manifest.version.unsupported"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"content_digest": "md5:abc"}, "content_digest"),
        ({"key_id": "XY"}, "key_id"),
        ({"size_bytes": -1}, "size_bytes"),
        ({"algorithm": "rsa"}, "algorithm"),
        ({"signed_at": "2026-11-25 10:00"}, "timestamp"),
        ({"extra": 1}, "unknown manifest fields"),
        ({"claims": {"a": 1}}, "claims"),
        # Regression: 2^53 passed validation, then RFC 8785 serialisation raised a bare ValueError.
        ({"size_bytes": 2**53}, "size_bytes"),
        ({"capture": {"iso": 2**53}}, "capture"),
        ({"capture": {"iso": -(2**53)}}, "capture"),
        ({"perceptual": []}, "perceptual"),
        ({"perceptual": [{"algorithm": "pdq", "hash": "0" * 64}]}, "perceptual entries"),
        ({"perceptual": [{"algorithm": "md5", "hash": "0" * 64, "quality": 1}]}, "perceptual algorithm"),
        ({"perceptual": [{"algorithm": "pdq", "hash": "0" * 63, "quality": 1}]}, "perceptual hash"),
        ({"perceptual": [{"algorithm": "pdq", "hash": "0" * 64, "quality": 101}]}, "perceptual quality"),
        ({"perceptual": [{"algorithm": "pdq", "hash": "0" * 64, "quality": 1}] * 1001}, "perceptual must be"),
        ({"perceptual": [{"algorithm": "pdq", "hash": "0" * 64, "quality": 1}] * 2}, "at most one perceptual"),
    ],
)
def test_malformed_manifest_fields_are_rejected(change: dict[str, object], fragment: str) -> None:
    with pytest.raises(ManifestError) as exc:
        Manifest.from_dict(_manifest().to_dict() | change)
    assert exc.value.code == "manifest.malformed"
    assert fragment in exc.value.message


def test_largest_safe_integers_still_serialise() -> None:
    manifest = Manifest.from_dict(_manifest().to_dict() | {"size_bytes": 2**53 - 1, "capture": {"iso": 2**53 - 1}})
    assert Manifest.from_json(manifest.canonical_bytes()) == manifest


def test_manifest_malformed_json() -> None:
    with pytest.raises(ManifestError) as exc:
        Manifest.from_json(b"{not json")
    assert exc.value.code == "manifest.malformed"


def test_timestamps_have_one_spelling() -> None:
    t = parse_timestamp("2026-11-25T10:00:00.000001Z")
    assert format_timestamp(t) == "2026-11-25T10:00:00.000001Z"
