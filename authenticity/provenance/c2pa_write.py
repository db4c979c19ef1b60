"""Embed C2PA Content Credentials, signed with a registry signer's key.

The SDK never sees the private key: it hands the bytes to sign to a callback that
calls :meth:`SigningKey.sign_cose`. No time-stamp authority is contacted, so the claim
carries no trusted time (the registry's transparency log supplies that).

>>> # chain = issue_signer_certificate(settings, "cam-1", key.public_key, passphrase)
>>> # embed_c2pa(Path("in.jpg"), Path("out.jpg"), key=key, cert_chain_pem=chain,
>>> #            claim_generator="authenticity", title="in.jpg",
>>> #            digital_source_type=DigitalSourceType.DIGITAL_CAPTURE)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import c2pa

from authenticity import __version__
from authenticity.errors import AuthenticityError, MediaError, UsageError
from authenticity.media import sniff_file
from authenticity.provenance.c2pa import DigitalSourceType, sdk_context, sdk_error_kind, sdk_mime
from authenticity.provenance.keys import Algorithm, SigningKey, load_certificates

__all__ = ["CLAIMS_LABEL", "embed_c2pa"]

CLAIMS_LABEL = "org.authenticity.claims"
"""Assertion label for the ``key=value`` claims given at signing (a custom, reverse-DNS label)."""

_SDK_ALG = {Algorithm.ED25519: c2pa.C2paSigningAlg.ED25519, Algorithm.ECDSA_P256: c2pa.C2paSigningAlg.ES256}


def embed_c2pa(
    src: Path,
    dst: Path,
    *,
    key: SigningKey,
    cert_chain_pem: bytes,
    claim_generator: str,
    title: str,
    digital_source_type: DigitalSourceType,
    claims: Mapping[str, str] | None = None,
    actions: Sequence[Mapping[str, Any]] = (),
    overwrite: bool = False,
) -> None:
    """Write a copy of *src* to *dst* with an embedded manifest signed by *key*.

    The manifest holds a ``c2pa.actions`` assertion that starts with ``c2pa.created``
    and its *digital_source_type* (required: C2PA 2.x rejects a ``c2pa.created`` without
    one, so there is no neutral default), then *actions* as given (C2PA action dicts),
    and *claims* under :data:`CLAIMS_LABEL`. *claim_generator* is the product
    name; the version is this package's. *dst* appears complete or not at all, and an
    existing *dst* is refused (``c2pa.output.exists``) unless *overwrite*.

    Raises ``media.*`` (from sniffing), ``c2pa.format.unsupported``, ``c2pa.certificate.mismatch``,
    ``c2pa.source.has_manifest`` (the original already carries credentials: re-signing
    would drop them), ``c2pa.asset.unparseable`` or ``c2pa.embed.failed``.

    >>> # embed_c2pa(src, dst, key=key, cert_chain_pem=chain, claim_generator="authenticity", title=src.name,
    >>> #            digital_source_type=DigitalSourceType.DIGITAL_CAPTURE)
    """
    media_type = sniff_file(src)
    mime = sdk_mime(media_type)
    if mime is None:
        raise MediaError("c2pa.format.unsupported", f"{src}: C2PA cannot be embedded in {media_type.value}")
    if dst.exists() and not overwrite:
        raise UsageError("c2pa.output.exists", f"{dst}: already exists")
    if dst.resolve() == src.resolve():
        raise UsageError("c2pa.output.is_source", f"{dst}: the output must not be the input file")
    if load_certificates(cert_chain_pem)[0].spki_der != key.public_key.spki_der:
        raise UsageError("c2pa.certificate.mismatch", "the certificate chain does not certify the signing key")
    context = sdk_context(verify_trust=False)
    if _has_manifest(src, mime, context):
        raise UsageError("c2pa.source.has_manifest", f"{src}: already carries C2PA Content Credentials")
    definition = _definition(claim_generator, title, claims or {}, actions, digital_source_type)
    _sign_to(src, dst, mime, definition, key, cert_chain_pem, context, overwrite=overwrite)


def _definition(
    generator: str,
    title: str,
    claims: Mapping[str, str],
    actions: Sequence[Mapping[str, Any]],
    source_type: DigitalSourceType,
) -> dict[str, Any]:
    created: dict[str, Any] = {
        "action": "c2pa.created",
        "digitalSourceType": source_type.value,
        "softwareAgent": {"name": generator, "version": __version__},
    }
    assertions: list[dict[str, Any]] = [{"label": "c2pa.actions", "data": {"actions": [created, *map(dict, actions)]}}]
    if claims:
        assertions.append({"label": CLAIMS_LABEL, "data": dict(claims)})
    return {
        "claim_generator_info": [{"name": generator, "version": __version__}],
        "title": title,
        "assertions": assertions,
    }


def _has_manifest(src: Path, mime: str, context: Any) -> bool:
    try:
        with src.open("rb") as stream:
            reader = c2pa.Reader.try_create(mime, stream, None, context)
    except c2pa.C2paError as exc:
        # A broken or remote manifest is still a manifest; an unparseable asset is
        # left for the signing step to report.
        return sdk_error_kind(exc) not in ("Other", "Io", "NotSupported")
    if reader is None:
        return False
    reader.close()
    return True


def _sign_to(
    src: Path,
    dst: Path,
    mime: str,
    definition: dict[str, Any],
    key: SigningKey,
    chain: bytes,
    context: Any,
    *,
    overwrite: bool,
) -> None:
    callback_error: list[BaseException] = []

    def sign(data: bytes) -> bytes:
        try:
            return key.sign_cose(data)
        except BaseException as exc:  # the SDK only sees a failed callback; keep the reason
            callback_error.append(exc)
            raise

    try:
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}-")
    except OSError as exc:
        raise UsageError("c2pa.output.unwritable", f"{dst}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w+b") as out, src.open("rb") as source:
            signer = c2pa.Signer.from_callback(sign, _SDK_ALG[key.algorithm], chain.decode("ascii"))
            with signer, c2pa.Builder(definition, context) as builder:
                builder.sign(signer, mime, source, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, dst)
        else:
            os.link(tmp, dst)
    except c2pa.C2paError as exc:
        if callback_error and isinstance(callback_error[0], AuthenticityError):
            raise callback_error[0] from exc
        kind = sdk_error_kind(exc)
        if kind == "NotSupported":
            raise MediaError("c2pa.format.unsupported", f"{src}: {exc}") from exc
        if kind in ("Other", "Io"):
            raise MediaError("c2pa.asset.unparseable", f"{src}: C2PA could not parse the file ({exc})") from exc
        raise AuthenticityError("c2pa.embed.failed", f"{src}: embedding C2PA failed ({exc})") from exc
    except FileExistsError as exc:
        raise UsageError("c2pa.output.exists", f"{dst}: already exists") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
