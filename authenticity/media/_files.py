"""Opening media files with the ``media.file.*`` error codes (private helpers).

Every public function of :mod:`authenticity.media` that touches the filesystem goes
through :func:`stat_media_file` / :func:`open_media_file`, so a missing path, a
directory or a permission problem always surfaces as the same :class:`MediaError`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from authenticity.errors import MediaError

__all__ = ["display_path", "open_media_file", "read_head", "stat_media_file"]


def display_path(path: Path) -> str:
    """Render *path* for a one-line message (non-printable characters escaped)."""
    text = os.fspath(path)
    return text if text.isprintable() else ascii(text)


def _os_error(path: Path, exc: OSError) -> MediaError:
    shown = display_path(path)
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return MediaError("media.file.not_found", f"{shown}: file not found")
    if isinstance(exc, IsADirectoryError):
        return MediaError("media.file.is_directory", f"{shown}: is a directory, not a file")
    reason = exc.strerror or type(exc).__name__
    return MediaError("media.file.unreadable", f"{shown}: cannot read file ({reason})")


def stat_media_file(path: Path) -> os.stat_result:
    """Stat *path* (following links) and require a regular file.

    Non-regular files (FIFOs, sockets, devices) are refused as unreadable *before*
    opening them, because opening a FIFO for reading blocks.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise _os_error(path, exc) from exc
    if stat.S_ISDIR(info.st_mode):
        raise MediaError("media.file.is_directory", f"{display_path(path)}: is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise MediaError("media.file.unreadable", f"{display_path(path)}: not a regular file")
    return info


def open_media_file(path: Path) -> BinaryIO:
    """Open *path* for binary reading after :func:`stat_media_file` checks."""
    stat_media_file(path)
    try:
        return open(path, "rb")  # the caller owns (and closes) the handle
    except OSError as exc:
        raise _os_error(path, exc) from exc


def read_head(path: Path, size: int) -> bytes:
    """Return up to *size* leading bytes of *path* (``media.file.empty`` when none)."""
    with open_media_file(path) as handle:
        try:
            head = handle.read(size)
        except OSError as exc:
            raise _os_error(path, exc) from exc
    if not head:
        raise MediaError("media.file.empty", f"{display_path(path)}: file is empty")
    return head
