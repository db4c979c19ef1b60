"""The API's routers: provenance (verify, records, log, signers) and audit (review queue).

>>> sorted(r.path for r in provenance_router.routes)[0]
'/v1/log/consistency'
"""

from __future__ import annotations

from authenticity.api.routes.audit import router as audit_router
from authenticity.api.routes.provenance import router as provenance_router

__all__ = ["audit_router", "provenance_router"]
