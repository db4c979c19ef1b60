"""``authenticity ca ...``: the registry's own certificate authority for C2PA signing."""

from __future__ import annotations

import typer

app = typer.Typer(help="The registry's certificate authority (for C2PA Content Credentials).", no_args_is_help=True)
