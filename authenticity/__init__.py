"""authenticity: can we trust that this photo or video is real?

Two independent channels — cryptographic provenance and a discriminator-derived
detector — combined into one verdict. The public Python API:

>>> from authenticity import sign_file, verify_file   # doctest: +SKIP
>>> result = sign_file("photo.jpg", signer="newsroom-cam-1", passphrase="...")  # doctest: +SKIP
>>> verify_file("photo.jpg").state  # doctest: +SKIP
<VerdictState.AUTHENTIC: 'authentic'>
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Settings", "Verdict", "VerdictState", "__version__", "sign_file", "verify_file"]

if TYPE_CHECKING:
    from authenticity.config import Settings
    from authenticity.provenance.capture import sign_file
    from authenticity.verify import Verdict, VerdictState, verify_file

_LAZY = {
    "Settings": "authenticity.config",
    "sign_file": "authenticity.provenance.capture",
    "verify_file": "authenticity.verify",
    "Verdict": "authenticity.verify",
    "VerdictState": "authenticity.verify",
}


def __getattr__(name: str) -> Any:
    # Lazy so that `import authenticity` stays cheap and never pulls in heavy deps.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
