"""Audit routes: the review queue (flagged items, claims, decisions) over ``authenticity.audit``.

Empty for now: the audit workflow adds its routes here. The app already includes this router,
so routes added to it appear in ``/docs`` without touching the factory.

>>> router.routes
[]
"""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["audit"])
