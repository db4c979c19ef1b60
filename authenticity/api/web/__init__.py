"""The reviewer web page: server-rendered Jinja2 under ``/review``, no JavaScript, no external assets.

:func:`install` adds it to an app: the routes, the stylesheet under ``/review/static`` and the
HTML error page for everything below ``/review``.

>>> "/review/items/{item_id}" in {getattr(r, "path", "") for r in router.routes}
True
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from authenticity.api.web.pages import router
from authenticity.api.web.render import STATIC_DIR, error_page

__all__ = ["PREFIX", "error_page", "install", "router"]

PREFIX = "/review"


def install(app: FastAPI) -> None:
    """Mount the review page on *app* (its error page is registered by the app factory with the error table)."""
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="review-static")
