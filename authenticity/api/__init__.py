"""The HTTP service: a thin FastAPI shell over the use cases (``authenticity serve``).

>>> # from authenticity.api import create_app
>>> # app = create_app(detector=False)
"""

from __future__ import annotations

from authenticity.api.app import create_app

__all__ = ["create_app"]
