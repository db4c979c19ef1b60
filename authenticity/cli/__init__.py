"""Command-line shell (Typer). Entry point: :func:`authenticity.cli.app.run`."""
