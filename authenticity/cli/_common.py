"""Helpers shared by CLI commands: settings, passphrases, file expansion, consoles."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from authenticity._files import walk_files
from authenticity.config import Settings
from authenticity.errors import KeyStoreError, MediaError
from authenticity.provenance.sidecar import SIDECAR_SUFFIX

__all__ = ["err_console", "expand_paths", "out_console", "progress_bar", "resolve_passphrase", "settings"]

out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)


def settings() -> Settings:
    return Settings()


def resolve_passphrase(cfg: Settings, *, confirm: bool = False) -> bytes:
    """The key passphrase: ``AUTHENTICITY_KEY_PASSPHRASE``, else a hidden prompt on a terminal."""
    if cfg.key_passphrase is not None:
        return cfg.key_passphrase.get_secret_value().encode()
    if not sys.stdin.isatty():
        raise KeyStoreError(
            "key.passphrase.required",
            "no passphrase: set AUTHENTICITY_KEY_PASSPHRASE or run on a terminal to be prompted",
        )
    text: str = typer.prompt("Key passphrase", hide_input=True, confirmation_prompt=confirm)
    return text.encode()


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given; folders walked recursively in sorted order (symlinked folders followed),
    skipping sidecars and dotfiles.

    A missing path is reported as ``media.file.not_found`` by the caller's per-file check.
    """
    for path in paths:
        if path.is_dir():
            yield from (f for f in walk_files(path) if not f.name.endswith(SIDECAR_SUFFIX))
        else:
            yield path


def require_existing(path: Path) -> None:
    """Early, clear errors for paths that cannot be media at all."""
    if not path.exists():
        raise MediaError("media.file.not_found", f"{path}: no such file")
    if path.is_dir():
        raise MediaError("media.file.is_directory", f"{path}: is a directory")


def progress_bar(total: int, label: str) -> Progress:
    """A rich progress bar on stderr; hidden for a single file or when stderr is not a terminal."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=total <= 1 or not err_console.is_terminal,
        transient=True,
    )
