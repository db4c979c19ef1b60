"""One exception tree for the whole project.

Every failure a user can cause or meet derives from :class:`AuthenticityError`. Each
error carries a stable dotted ``code`` (the same vocabulary as verdict status codes)
and a one-line ``diagnostics()`` message; the CLI maps classes to exit codes in a
single table (``authenticity.cli._errors``) and never prints a traceback for them.

Rule of thumb (CONVENTIONS 2): *could not evaluate* raises one of these; *evaluated
as bad* is data inside a :class:`authenticity.verify.Verdict`.

>>> err = MediaError("media.file.empty", "photo.jpg: file is empty")
>>> err.diagnostics()
'media.file.empty: photo.jpg: file is empty'
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "AuthenticityError",
    "ConfigError",
    "KeyStoreError",
    "ManifestError",
    "MediaError",
    "RegistryError",
    "RegistryUnavailableError",
    "UsageError",
    "VerificationError",
]


class AuthenticityError(Exception):
    """Root of every error this package raises on purpose."""

    default_code = "error"

    def __init__(self, code: str | None = None, message: str = "", *, hint: str | None = None) -> None:
        self.code = code or self.default_code
        self.message = message or self.code
        self.hint = hint
        super().__init__(self.message)

    def diagnostics(self) -> str:
        """One line for a human: ``code: message`` (plus a hint when there is one)."""
        line = f"{self.code}: {self.message}"
        if self.hint:
            line += f" ({self.hint})"
        return line


class UsageError(AuthenticityError):
    """The caller asked for something that cannot be done as asked."""

    default_code = "usage.invalid"


class ConfigError(AuthenticityError):
    """Settings are missing or contradictory."""

    default_code = "config.invalid"


class MediaError(AuthenticityError):
    """A file is missing, not media, empty, truncated or corrupt."""

    default_code = "media.invalid"


class KeyStoreError(AuthenticityError):
    """A private key file cannot be created, found or decrypted."""

    default_code = "key.invalid"


class ManifestError(AuthenticityError):
    """A manifest or sidecar cannot be parsed (malformed, unknown version)."""

    default_code = "manifest.malformed"


class VerificationError(AuthenticityError):
    """A cryptographic check failed (signature, Merkle proof).

    Raised by the low-level checks; the verification pipeline turns it into status
    codes on a verdict.
    """

    default_code = "provenance.signature.invalid"


class RegistryError(AuthenticityError):
    """A registry operation was refused (unknown signer, duplicate name, ...)."""

    default_code = "registry.invalid"


class RegistryUnavailableError(RegistryError):
    """The database cannot be reached, is locked, or is not migrated."""

    default_code = "registry.unavailable"


class AuthError(AuthenticityError):
    """A caller could not be authenticated or is not allowed (``auth.*``): an API key or a review session."""

    default_code = "auth.invalid"
