"""Small file plumbing (private): atomic writes, and walking folders of media.

Writing a small file so that readers see all of it or none of it:

One mechanism for sidecars, keys, certificates, exports and checkpoints: the bytes go to a
temporary file in the same folder, are flushed to disk, and then either *replace* the target
(``os.replace``) or are *linked* into place only if nothing is there yet (``os.link``: creation
that never overwrites, so concurrent processes racing to create the same file all end up with
the one that won).

>>> # write_atomically(Path("out.json"), b"{}")                       # create or replace
>>> # created = write_atomically(Path("key.pem"), pem, replace=False, mode=0o600)

Walking a folder: :func:`walk_files` lists its files in a stable order, follows symlinked
folders (an evaluation set is often a folder of links) and visits each real folder once.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["walk_files", "write_atomically"]


def write_atomically(path: Path, data: bytes, *, replace: bool = True, mode: int = 0o644) -> bool:
    """Write *data* to *path* with file *mode*; returns False only when ``replace=False`` and *path*
    already existed (it is then left exactly as it was). The parent folder must exist."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def walk_files(root: Path) -> Iterator[Path]:
    """Every file below *root*, sorted folder by folder, skipping names that start with a dot.

    Symlinked folders are followed; a folder reached twice (a link loop, or two links to one
    place) is walked only the first time.
    """
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name
