"""One settings object, read from the environment at the edges and passed inward.

Variables use the prefix ``AUTHENTICITY_``:

==============================  ===========================================================
``AUTHENTICITY_HOME``           data folder (keys, SQLite file); default: the user data dir
``AUTHENTICITY_DATABASE_URL``   SQLAlchemy URL; default ``sqlite:///<home>/authenticity.db``
``AUTHENTICITY_KEY_PASSPHRASE`` passphrase for signer private keys (else the CLI prompts)
``AUTHENTICITY_DB_TIMEOUT``     seconds to wait for a locked/unreachable database (default 30)
``AUTHENTICITY_MAX_PIXELS``     decompression-bomb limit for images (default 100 MP)
``AUTHENTICITY_TRUSTED_LOG_KEYS`` JSON list of extra log key ids to trust (retired keys, or
                                the log's key on a host that does not hold the log key file)
``AUTHENTICITY_MAX_UPLOAD_BYTES`` ``POST /v1/verify`` upload limit (default 50 MiB; 413 above)
``AUTHENTICITY_MANIFEST_MAX_AGE`` seconds a manifest posted to ``/v1/records`` may be old (default 600)
``AUTHENTICITY_C2PA_TRUST_ANCHORS`` PEM file of extra C2PA trust anchors (the registry's own CA
                                root, ``authenticity ca init``, is always trusted)
==============================  ===========================================================

>>> s = Settings(home=Path("/tmp/a"))
>>> s.resolved_database_url
'sqlite:////tmp/a/authenticity.db'
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("authenticity", appauthor=False))


class Settings(BaseSettings):
    """Runtime configuration (environment prefix ``AUTHENTICITY_``)."""

    model_config = SettingsConfigDict(env_prefix="AUTHENTICITY_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    database_url: str | None = None
    key_passphrase: SecretStr | None = None
    db_timeout: float = 30.0
    max_pixels: int = 100_000_000
    trusted_log_keys: list[str] = Field(default_factory=list)
    c2pa_trust_anchors: Path | None = None
    max_upload_bytes: int = 50 * 1024 * 1024
    manifest_max_age: float = 600.0

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the explicit one, else a SQLite file in ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'authenticity.db'}"

    @property
    def keys_dir(self) -> Path:
        """Folder holding signer private keys (mode 0700)."""
        return self.home / "keys"

    @property
    def log_key_path(self) -> Path:
        """The transparency log's own signing key."""
        return self.home / "log" / "log-key.pem"
