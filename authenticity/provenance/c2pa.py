"""C2PA Content Credentials: what the reader and the writer share.

The bridge to the ``c2pa-python`` SDK is split in three: this module (SDK settings,
error wrapping, the IPTC digital-source-type vocabulary), :mod:`.c2pa_read`
(``read_c2pa`` → :class:`~.c2pa_read.C2paReport`) and :mod:`.c2pa_write` (``embed_c2pa``).

Network access is off everywhere: no remote manifests, no OCSP, no time-stamp
authority. A verifier must reach the same answer offline, and a read must never make a
request whose URL was chosen by whoever crafted the file.

>>> DigitalSourceType.DIGITAL_CAPTURE.is_synthetic
False
>>> is_synthetic_source_type("http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia")
True
"""

from __future__ import annotations

import enum
import json
from typing import Any

import c2pa

from authenticity.media import MediaType

__all__ = [
    "IPTC_SOURCE_TYPE_PREFIX",
    "SYNTHETIC_SOURCE_TYPES",
    "DigitalSourceType",
    "is_synthetic_source_type",
    "sdk_context",
    "sdk_error_kind",
    "sdk_mime",
]

IPTC_SOURCE_TYPE_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"


class DigitalSourceType(enum.StrEnum):
    """IPTC digital source types we write (the reader accepts any URI)."""

    DIGITAL_CAPTURE = IPTC_SOURCE_TYPE_PREFIX + "digitalCapture"
    COMPUTATIONAL_CAPTURE = IPTC_SOURCE_TYPE_PREFIX + "computationalCapture"
    TRAINED_ALGORITHMIC_MEDIA = IPTC_SOURCE_TYPE_PREFIX + "trainedAlgorithmicMedia"
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = IPTC_SOURCE_TYPE_PREFIX + "compositeWithTrainedAlgorithmicMedia"

    @property
    def is_synthetic(self) -> bool:
        """True when this type declares generated (not captured) content."""
        return is_synthetic_source_type(self.value)


# Source types that declare the content (or part of it) generated rather than recorded
# from reality. Matched on the term after the last "/", so the C2PA namespace
# (http://c2pa.org/digitalsourcetype/...) counts the same as IPTC's.
SYNTHETIC_SOURCE_TYPES = frozenset(
    {
        "trainedAlgorithmicMedia",  # generative AI from a trained model
        "compositeWithTrainedAlgorithmicMedia",  # a capture with generative-AI parts (inpainting, fill)
        "trainedAlgorithmicData",  # C2PA: output of a trained model that is not media
        "algorithmicMedia",  # made purely by an algorithm, no training data (procedural, CGI)
        "compositeSynthetic",  # composite in which at least one element is synthetic
    }
)


def is_synthetic_source_type(uri: str) -> bool:
    """True when *uri* is one of :data:`SYNTHETIC_SOURCE_TYPES` (any namespace).

    >>> is_synthetic_source_type("http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture")
    False
    """
    return uri.rstrip("/").rsplit("/", 1)[-1] in SYNTHETIC_SOURCE_TYPES


# Types c2pa-rs can carry a manifest in, named the way its Reader/Builder expect. WebM
# is not among them: a WebM file can have no embedded manifest.
_SDK_MIME = {
    MediaType.JPEG: "image/jpeg",
    MediaType.PNG: "image/png",
    MediaType.WEBP: "image/webp",
    MediaType.GIF: "image/gif",
    MediaType.TIFF: "image/tiff",
    MediaType.HEIC: "image/heic",
    MediaType.AVIF: "image/avif",
    MediaType.MP4: "video/mp4",
    MediaType.MOV: "video/quicktime",
}


def sdk_mime(media_type: MediaType) -> str | None:
    """The MIME type to hand the SDK, or ``None`` when C2PA cannot be embedded in this type.

    >>> sdk_mime(MediaType.JPEG), sdk_mime(MediaType.WEBM)
    ('image/jpeg', None)
    """
    return _SDK_MIME.get(media_type)


def sdk_context(*, trust_anchors_pem: bytes | None = None, verify_trust: bool = True) -> Any:
    """A ``c2pa.Context`` with our offline settings.

    ``trust.trust_anchors`` replaces the SDK's (empty) list; with none, every signer is
    reported ``signingCredential.untrusted``. Thumbnails are off: they would embed a
    second, unverified rendering of the image and grow every file.

    >>> ctx = sdk_context()
    """
    config: dict[str, Any] = {
        "verify": {
            "remote_manifest_fetch": False,
            "ocsp_fetch": False,
            "verify_trust": verify_trust,
            "verify_after_reading": True,
            "verify_after_sign": True,
        },
        "builder": {"thumbnail": {"enabled": False}},
    }
    if trust_anchors_pem:
        config["trust"] = {"trust_anchors": trust_anchors_pem.decode("ascii")}
    return c2pa.Context.from_json(json.dumps(config))


def sdk_error_kind(exc: BaseException) -> str:
    """The SDK's error kind (``"Verify"``, ``"Other"``, ...) from a ``c2pa.C2paError``.

    The SDK raises one subclass per kind of the native error, and its message starts
    with the kind; both are tried so an unknown subclass still yields a name.

    >>> sdk_error_kind(c2pa.C2paError("Other: asset could not be parsed"))
    'Other'
    """
    for kind in _KINDS:
        cls = getattr(c2pa.C2paError, kind, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return kind
    head = str(exc).split(":", 1)[0].strip()
    if head == "Remote":  # the native "Remote: ..." error has no Python subclass
        return "RemoteManifest"
    return head if head in _KINDS else "Error"


_KINDS = (
    "Assertion",
    "AssertionNotFound",
    "Decoding",
    "Encoding",
    "FileNotFound",
    "Io",
    "Json",
    "Manifest",
    "ManifestNotFound",
    "NotSupported",
    "Other",
    "RemoteManifest",
    "ResourceNotFound",
    "Signature",
    "Verify",
)
