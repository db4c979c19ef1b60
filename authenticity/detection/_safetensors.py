"""Writing safetensors files whose bytes depend on their content alone (private).

The safetensors library writes a file's ``__metadata__`` entries in its hash map's order,
which changes from one process to the next (safetensors issue 584, open in 0.8). Two runs
that train the very same tensors then write files with different SHA-256s, and the
detector's identity is the SHA-256 of its weights file. :func:`save_safetensors` writes the
same bytes the library would, with the metadata entries in sorted key order, so equal
tensors and metadata give an equal file; the file is replaced atomically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save

from authenticity._files import write_atomically

__all__ = ["canonical_bytes", "save_safetensors"]

METADATA = "__metadata__"
ALIGN = 8  # the format pads its JSON header with spaces to a multiple of 8 bytes


def canonical_bytes(blob: bytes) -> bytes:
    """*blob* (a whole safetensors file) with its header's metadata entries in sorted key order."""
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    if METADATA not in header:
        return blob
    ordered = {METADATA: dict(sorted(header.pop(METADATA).items())), **header}
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % ALIGN)
    return len(text).to_bytes(8, "little") + text + blob[8 + size :]


def save_safetensors(
    tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str] | None = None
) -> None:
    """Write *tensors* (and string *metadata*) to *path* as safetensors, byte-for-byte reproducible."""
    blob = save(dict(tensors), metadata=dict(metadata) if metadata is not None else None)
    write_atomically(path, canonical_bytes(blob))
