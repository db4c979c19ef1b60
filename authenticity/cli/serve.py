"""``authenticity serve``: the HTTP API under uvicorn (OpenAPI at ``/docs``).

The registry is opened (and migrated) and the log key loaded before uvicorn starts, so a
bad database URL or an unreachable database is one error line and exit 2/3, not a traceback
from inside the server. Each worker then builds its own app (and loads the detector once).
"""

from __future__ import annotations

import os
import socket

import typer

from authenticity.cli._common import err_console, settings
from authenticity.cli._errors import guarded
from authenticity.errors import UsageError
from authenticity.provenance.keystore import ensure_log_key
from authenticity.registry.store import open_registry

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@guarded
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    no_detector: bool = typer.Option(False, "--no-detector", help="Provenance only: never load the detector."),
    workers: int = typer.Option(1, "--workers", help="Worker processes (each loads its own detector)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Run the HTTP service: verify uploads, register signed manifests, serve the transparency log."""
    import uvicorn

    from authenticity.api.app import DETECTOR_ENV

    if workers < 1 or not 0 <= port <= 65535:
        raise UsageError("usage.serve.invalid", "--workers must be >= 1 and --port within 0..65535")
    if log_level not in _LOG_LEVELS:
        raise UsageError("usage.serve.invalid", f"--log-level must be one of: {', '.join(_LOG_LEVELS)}")
    try:  # checked before the registry is touched: uvicorn would report it as a failed start
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError("usage.serve.host", f"cannot resolve --host {host!r}: {exc}") from exc
    cfg = settings()
    open_registry(cfg)
    ensure_log_key(cfg)
    os.environ[DETECTOR_ENV] = "0" if no_detector else "1"  # read by every worker's app factory
    err_console.print(f"serving on http://{host}:{port} (docs at /docs, detector {'off' if no_detector else 'on'})")
    uvicorn.run("authenticity.api.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)  # fmt: skip
