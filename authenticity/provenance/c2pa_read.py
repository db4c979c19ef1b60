"""Read and validate embedded C2PA Content Credentials into a typed :class:`C2paReport`.

Outcomes (CONVENTIONS 2):

* no manifest in the file → ``None``;
* a manifest, validated → a report whose ``state`` is ``valid`` (intact and the signer
  chains to a trust anchor), ``untrusted`` (intact, signer not under any anchor) or
  ``invalid`` (a hash, signature or certificate check failed); an ingredient's own
  failures come as ``c2pa.ingredient.<our code>`` and do not change the state;
* a manifest that is present but cannot be parsed (corrupt JUMBF/CBOR) is *evaluated
  as bad*: an ``invalid`` report with ``c2pa.manifest.malformed``;
* could not evaluate → raises: the container cannot be parsed (``c2pa.asset.unparseable``,
  e.g. a parser bomb of nested MP4 boxes), the manifest is only referenced remotely and
  fetching is off (``c2pa.manifest.remote``), or the read ran past its time limit
  (``c2pa.read.timeout``).

>>> report = read_c2pa(Path("photo.jpg"), trust_anchors_pem=None)  # doctest: +SKIP
>>> report.state, report.codes  # doctest: +SKIP
(<C2paState.UNTRUSTED: 'untrusted'>, ('c2pa.signer.untrusted',))
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import c2pa

from authenticity.errors import ManifestError, MediaError
from authenticity.media import sniff_file
from authenticity.provenance.c2pa import is_synthetic_source_type, sdk_context, sdk_error_kind, sdk_mime

__all__ = [
    "READ_TIMEOUT_S",
    "STATUS_CODE_MAP",
    "C2paAction",
    "C2paIngredient",
    "C2paReport",
    "C2paSigner",
    "C2paState",
    "map_status_code",
    "read_c2pa",
]

READ_TIMEOUT_S = 10.0
"""Default wall-clock limit for one read (the SDK's own limits make this a backstop)."""


class C2paState(enum.StrEnum):
    """What validating the active manifest concluded."""

    VALID = "valid"  # hashes and signature intact, signer chains to a trust anchor
    UNTRUSTED = "untrusted"  # intact, but the signer is under no trust anchor we hold
    INVALID = "invalid"  # an integrity or certificate check failed, or the manifest is corrupt


# c2pa-rs failure codes (C2PA spec §15 "standard status codes") → our namespace. The
# first exact match wins; then the prefix rules; anything else is c2pa.validation.failed.
STATUS_CODE_MAP: Mapping[str, str] = {
    "assertion.dataHash.mismatch": "c2pa.content.mismatch",
    "assertion.bmffHash.mismatch": "c2pa.content.mismatch",
    "assertion.boxesHash.mismatch": "c2pa.content.mismatch",
    "assertion.boxesHash.unknownBox": "c2pa.content.mismatch",
    "assertion.collectionHash.mismatch": "c2pa.content.mismatch",
    "claimSignature.mismatch": "c2pa.signature.invalid",
    "claimSignature.missing": "c2pa.signature.missing",
    "claimSignature.outsideValidity": "c2pa.signer.expired",
    "signingCredential.expired": "c2pa.signer.expired",
    "signingCredential.untrusted": "c2pa.signer.untrusted",
    "signingCredential.invalid": "c2pa.signer.invalid",
    "signingCredential.ocsp.revoked": "c2pa.signer.revoked",
    "algorithm.unsupported": "c2pa.algorithm.unsupported",
    "timeStamp.mismatch": "c2pa.timestamp.invalid",
    "timeStamp.malformed": "c2pa.timestamp.invalid",
    "timeStamp.outsideValidity": "c2pa.timestamp.invalid",
    "manifest.inaccessible": "c2pa.manifest.inaccessible",
}
_PREFIX_MAP = (
    ("assertion.", "c2pa.assertion.invalid"),
    ("claim.", "c2pa.manifest.malformed"),
    ("manifest.", "c2pa.manifest.invalid"),
    ("ingredient.", "c2pa.ingredient.invalid"),
)
_STATE = {"Trusted": C2paState.VALID, "Valid": C2paState.UNTRUSTED, "Invalid": C2paState.INVALID}
# SDK errors that mean "a manifest is there but cannot be decoded": tamper evidence, so data.
_MALFORMED_KINDS = frozenset({"Assertion", "AssertionNotFound", "Decoding", "Encoding", "Json", "Manifest",
                              "ResourceNotFound", "Signature", "Verify"})  # fmt: skip


def map_status_code(raw: str) -> str:
    """Our dotted code for a c2pa-rs validation status code.

    >>> map_status_code("assertion.dataHash.mismatch"), map_status_code("claim.cbor.invalid")
    ('c2pa.content.mismatch', 'c2pa.manifest.malformed')
    """
    if raw in STATUS_CODE_MAP:
        return STATUS_CODE_MAP[raw]
    return next((ours for prefix, ours in _PREFIX_MAP if raw.startswith(prefix)), "c2pa.validation.failed")


def _ingredient_code(raw: str) -> str:
    # An ingredient's own failures are reported apart: an untrusted ingredient signer
    # does not make this manifest's signer untrusted.
    ours = map_status_code(raw)
    return ours if ours.startswith("c2pa.ingredient.") else "c2pa.ingredient." + ours.removeprefix("c2pa.")


@dataclass(frozen=True)
class C2paSigner:
    """The signing certificate as the manifest carries it (subject/issuer in RFC 4514 order)."""

    subject: str
    issuer: str
    common_name: str | None
    organization: str | None
    algorithm: str | None  # "es256", "ed25519", "ps256", ...
    serial: str | None
    timestamp: str | None = None  # RFC 3161 time, when the manifest was time-stamped


@dataclass(frozen=True)
class C2paAction:
    """One entry of a ``c2pa.actions`` assertion."""

    action: str
    digital_source_type: str | None = None
    software_agent: str | None = None


@dataclass(frozen=True)
class C2paIngredient:
    title: str | None
    relationship: str | None
    format: str | None


@dataclass(frozen=True)
class C2paReport:
    """The active manifest of a file, validated.

    ``codes`` are ours (see :data:`STATUS_CODE_MAP`), one each, in the order met;
    ``raw_codes`` are the SDK's failure codes as reported (ingredient ones prefixed
    ``ingredient:``; an SDK error kind as ``sdk.<Kind>`` when the manifest could not be parsed).
    """

    state: C2paState
    codes: tuple[str, ...]
    raw_codes: tuple[str, ...]
    label: str | None = None
    title: str | None = None
    claim_generator: str | None = None
    signer: C2paSigner | None = None
    actions: tuple[C2paAction, ...] = ()
    digital_source_type: str | None = None
    declared_synthetic: bool = False
    ingredients: tuple[C2paIngredient, ...] = ()
    assertion_labels: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (enums as their values).

        >>> C2paReport(C2paState.INVALID, ("c2pa.content.mismatch",), ()).to_dict()["state"]
        'invalid'
        """
        out = asdict(self)
        out["state"] = self.state.value
        return out


T = TypeVar("T")


def read_c2pa(path: Path, *, trust_anchors_pem: bytes | None, timeout_s: float = READ_TIMEOUT_S) -> C2paReport | None:
    """Validate the C2PA manifest embedded in *path*; ``None`` when there is none.

    *trust_anchors_pem*: root (or intermediate) certificates, PEM, under which a signer
    is ``valid``; see :func:`authenticity.provenance.ca.default_trust_anchors`.

    Raises :class:`MediaError` (``media.*`` from sniffing; ``c2pa.asset.unparseable``,
    ``c2pa.read.timeout``) or :class:`ManifestError` (``c2pa.manifest.remote``,
    ``c2pa.read.failed``). On timeout the SDK call keeps running in a daemon thread:
    a native call cannot be interrupted, only abandoned.

    >>> read_c2pa(Path("no_manifest.jpg"), trust_anchors_pem=None) is None  # doctest: +SKIP
    True
    """
    mime = sdk_mime(sniff_file(path))
    if mime is None:
        return None
    context = sdk_context(trust_anchors_pem=trust_anchors_pem)
    return _with_time_limit(lambda: _read(path, mime, context), timeout_s, path)


def _read(path: Path, mime: str, context: Any) -> C2paReport | None:
    try:
        with path.open("rb") as stream:
            reader = c2pa.Reader.try_create(mime, stream, None, context)
            if reader is None:
                return None
            with reader:
                store = json.loads(reader.json())
                signature = _signature_of(json.loads(reader.crjson()), store.get("active_manifest"))
    except c2pa.C2paError as exc:
        return _from_sdk_error(path, exc)
    except OSError as exc:
        raise MediaError("media.file.unreadable", f"{path}: {exc.strerror}") from exc
    return _report(store, signature)


def _from_sdk_error(path: Path, exc: BaseException) -> C2paReport:
    kind = sdk_error_kind(exc)
    if kind in _MALFORMED_KINDS:
        return C2paReport(C2paState.INVALID, ("c2pa.manifest.malformed",), (f"sdk.{kind}",))
    if kind == "RemoteManifest":
        message = f"{path}: the manifest is only referenced by URL and remote fetching is off ({exc})"
        raise ManifestError("c2pa.manifest.remote", message) from exc
    if kind in ("Other", "Io", "NotSupported"):
        raise MediaError("c2pa.asset.unparseable", f"{path}: C2PA reader could not parse the file ({exc})") from exc
    raise ManifestError("c2pa.read.failed", f"{path}: C2PA reader failed ({exc})") from exc


def _report(store: Mapping[str, Any], signature: Mapping[str, Any] | None) -> C2paReport:
    label = store.get("active_manifest")
    manifest: Mapping[str, Any] = (store.get("manifests") or {}).get(label) or {}
    results = store.get("validation_results") or {}
    raw = [s["code"] for s in (results.get("activeManifest") or {}).get("failure", []) if "code" in s]
    codes = [map_status_code(c) for c in raw]
    for delta in results.get("ingredientDeltas") or []:
        for status in (delta.get("validationDeltas") or {}).get("failure", []):
            raw.append(f"ingredient:{status.get('code')}")
            codes.append(_ingredient_code(str(status.get("code"))))
    state = _STATE.get(store.get("validation_state", ""), C2paState.INVALID)
    if state is C2paState.INVALID and not codes:
        codes.append("c2pa.validation.failed")
    actions = tuple(_actions(_dicts(manifest.get("assertions"))))
    created = [a.digital_source_type for a in actions if a.action == "c2pa.created" and a.digital_source_type]
    declared = created or [a.digital_source_type for a in actions if a.digital_source_type]
    return C2paReport(
        state=state,
        codes=tuple(dict.fromkeys(codes)),
        raw_codes=tuple(dict.fromkeys(raw)),
        label=label,
        title=manifest.get("title"),
        claim_generator=_claim_generator(manifest),
        signer=_signer(manifest.get("signature_info") or {}, signature),
        actions=actions,
        digital_source_type=declared[0] if declared else None,
        declared_synthetic=any(is_synthetic_source_type(a.digital_source_type or "") for a in actions),
        ingredients=tuple(
            C2paIngredient(i.get("title"), i.get("relationship"), i.get("format"))
            for i in _dicts(manifest.get("ingredients"))
        ),
        assertion_labels=tuple(str(a.get("label", "")) for a in _dicts(manifest.get("assertions"))),
    )


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    # The SDK types most of the manifest, but custom parts are whatever the file's author wrote.
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _actions(assertions: Iterable[Mapping[str, Any]]) -> Iterable[C2paAction]:
    for assertion in assertions:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for entry in _dicts((assertion.get("data") or {}).get("actions")):
            agent = entry.get("softwareAgent")
            agent = agent.get("name") if isinstance(agent, Mapping) else agent  # v2: {"name", "version"}
            yield C2paAction(str(entry.get("action", "")), entry.get("digitalSourceType"), agent)


def _claim_generator(manifest: Mapping[str, Any]) -> str | None:
    if manifest.get("claim_generator"):
        return str(manifest["claim_generator"])
    infos = _dicts(manifest.get("claim_generator_info"))  # v2 claims carry only this list
    parts = [f"{i['name']}/{i['version']}" if i.get("version") else str(i["name"]) for i in infos if i.get("name")]
    return " ".join(parts) or None


def _signature_of(crjson: Mapping[str, Any], label: str | None) -> Mapping[str, Any] | None:
    # The plain JSON only names the signer's organization; crJSON has the full subject/issuer.
    for manifest in crjson.get("manifests") or []:
        if manifest.get("label") == label:
            found: Mapping[str, Any] | None = manifest.get("signature")
            return found
    return None


def _dn(parts: Mapping[str, Any]) -> str:
    # crJSON lists attributes in certificate order; RFC 4514 writes them most-specific first.
    return ",".join(f"{k}={v}" for k, v in reversed(list(parts.items())))


def _signer(info: Mapping[str, Any], signature: Mapping[str, Any] | None) -> C2paSigner | None:
    cert = (signature or {}).get("certificateInfo") or {}
    if not info and not cert:
        return None
    subject, issuer = cert.get("subject") or {}, cert.get("issuer") or {}
    return C2paSigner(
        subject=_dn(subject),
        issuer=_dn(issuer),
        common_name=subject.get("CN") or info.get("common_name"),
        organization=subject.get("O") or info.get("issuer"),  # c2pa-rs calls the signer's O "issuer"
        algorithm=(signature or {}).get("algorithm") or (str(info["alg"]).lower() if info.get("alg") else None),
        serial=cert.get("serialNumber") or info.get("cert_serial_number"),
        timestamp=((signature or {}).get("timeStampInfo") or {}).get("timestamp") or info.get("time"),
    )


def _with_time_limit(fn: Callable[[], T], timeout_s: float, path: Path) -> T:
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name="c2pa-read", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not outcome:
        raise MediaError("c2pa.read.timeout", f"{path}: C2PA validation did not finish within {timeout_s:g} s")
    ok, value = outcome[0]
    if not ok:
        raise value
    result: T = value
    return result
