"""Rendering for the review page: one Jinja2 environment (autoescape always on), strict headers, error pages.

Every page is sent with a Content-Security-Policy that allows no script at all and only this
origin's images, media and stylesheet: even if some text escaped escaping, a browser would not run
it. Pages are never cached (they show flagged content and the reviewer's session).

>>> ENV.from_string("{{ note }}").render(note="<script>alert(1)</script>")
'&lt;script&gt;alert(1)&lt;/script&gt;'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

__all__ = ["ENV", "PAGE_HEADERS", "STATIC_DIR", "TEMPLATE_DIR", "error_page", "render"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
ENV = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=True, undefined=StrictUndefined,
                  trim_blocks=True, lstrip_blocks=True)  # fmt: skip
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render *template* with *context* (escaped) and the page headers."""
    return HTMLResponse(ENV.get_template(template).render(**context), status_code=status, headers=PAGE_HEADERS)


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    """The error table's page renderer for ``/review``: the stable code and message, never a traceback.

    A page opened without a session goes to the login form instead.
    """
    if code == "auth.session.missing" and request.method in ("GET", "HEAD"):
        return RedirectResponse("/review/login", status_code=303, headers=PAGE_HEADERS)
    login = code.startswith("auth.")
    return render("error.html", status, code=code, message=message, http_status=status, login=login, reviewer=None)
