"""Container structure checks that never read payloads (private helpers).

* ISO-BMFF (MP4, MOV, HEIC, AVIF): walk the top-level boxes with seeks, so a
  multi-GB video costs a few reads. A box whose size runs past end of file means
  the file was truncated. Size 0 means "extends to end of file" and is legal for
  the last box; size 1 means a 64-bit size follows the type.
* EBML (WebM/Matroska): the EBML header and the Segment element must fit in the
  file unless the Segment size is the "unknown" marker (live recordings).

Every failure is ``media.decode.failed``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from authenticity.errors import MediaError
from authenticity.media._files import display_path

__all__ = ["Box", "check_bmff", "check_ebml", "largest_ispe", "read_vint", "walk_bmff"]

_MAX_TOP_LEVEL_BOXES = 1 << 20
_MAX_META_BYTES = 16 << 20
_EBML_ID = 0x1A45DFA3
_SEGMENT_ID = 0x18538067


@dataclass(frozen=True)
class Box:
    """One ISO-BMFF box: four-character type, absolute offset, total and header size."""

    type: str
    offset: int
    size: int
    header_size: int


def _fail(path: Path, detail: str) -> MediaError:
    return MediaError("media.decode.failed", f"{display_path(path)}: {detail}")


def read_vint(buf: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, int] | None:
    """Decode an EBML variable-length integer at *pos*.

    Returns ``(value, length, next_pos)`` or ``None`` when the bytes are not a
    valid vint. IDs keep their length-marker bit (``keep_marker=True``); sizes do not.
    """
    if pos >= len(buf) or buf[pos] == 0:
        return None
    length = 9 - buf[pos].bit_length()
    if pos + length > len(buf):
        return None
    value = int.from_bytes(buf[pos : pos + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, length, pos + length


def walk_bmff(handle: BinaryIO, file_size: int, path: Path) -> list[Box]:
    """Walk the top-level boxes of an ISO-BMFF file; raise if any is truncated."""
    boxes: list[Box] = []
    offset = 0
    while offset < file_size:
        remaining = file_size - offset
        handle.seek(offset)
        header = handle.read(min(16, remaining))
        if remaining < 8:
            if header.strip(b"\0"):
                raise _fail(path, f"truncated box header at offset {offset}")
            break  # zero padding after the last box
        size, raw_type = struct.unpack(">I4s", header[:8])
        box_type = raw_type.decode("latin-1")
        header_size = 8
        if size == 1:
            if len(header) < 16:
                raise _fail(path, f"truncated 64-bit size of box {box_type!r} at offset {offset}")
            size = struct.unpack(">Q", header[8:16])[0]
            header_size = 16
        elif size == 0:
            size = remaining
        if size < header_size:
            raise _fail(path, f"invalid size {size} of box {box_type!r} at offset {offset}")
        if size > remaining:
            raise _fail(
                path,
                f"truncated: box {box_type!r} at offset {offset} needs {size} bytes, {remaining} remain",
            )
        boxes.append(Box(box_type, offset, size, header_size))
        if len(boxes) > _MAX_TOP_LEVEL_BOXES:
            raise _fail(path, "too many top-level boxes")
        offset += size
    return boxes


def check_bmff(path: Path, file_size: int, required: frozenset[str]) -> list[Box]:
    """Open *path*, walk its boxes and require one of the *required* box types."""
    with open(path, "rb") as handle:
        boxes = walk_bmff(handle, file_size, path)
    if not any(box.type in required for box in boxes):
        wanted = " or ".join(repr(name) for name in sorted(required))
        raise _fail(path, f"no {wanted} box: incomplete or corrupt file")
    return boxes


def _children(buf: bytes, start: int, end: int, path: Path) -> list[tuple[str, int, int]]:
    """Child boxes of a buffer region as ``(type, payload_start, payload_end)``."""
    found: list[tuple[str, int, int]] = []
    pos = start
    while pos + 8 <= end:
        size, raw_type = struct.unpack(">I4s", buf[pos : pos + 8])
        header = 8
        if size == 1 and pos + 16 <= end:
            size = struct.unpack(">Q", buf[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise _fail(path, f"corrupt box {raw_type.decode('latin-1')!r} inside 'meta'")
        found.append((raw_type.decode("latin-1"), pos + header, pos + size))
        pos += size
    return found


def largest_ispe(path: Path, boxes: list[Box]) -> tuple[int, int] | None:
    """Largest ``ispe`` (image spatial extents) in ``meta/iprp/ipco`` of a HEIF file.

    The primary image (or the grid assembling it) is the largest item; thumbnails
    and tiles are smaller. Returns ``None`` when there is no readable ``ispe``.
    """
    meta = next((box for box in boxes if box.type == "meta"), None)
    if meta is None or meta.size > _MAX_META_BYTES:
        return None
    with open(path, "rb") as handle:
        handle.seek(meta.offset)
        buf = handle.read(meta.size)
    best: tuple[int, int] | None = None
    # meta is a FullBox in HEIF: 4 bytes of version/flags precede its children.
    for name, start, end in _children(buf, meta.header_size + 4, len(buf), path):
        if name != "iprp":
            continue
        for inner, istart, iend in _children(buf, start, end, path):
            if inner != "ipco":
                continue
            for prop, pstart, pend in _children(buf, istart, iend, path):
                if prop == "ispe" and pend - pstart >= 12:
                    width, height = struct.unpack(">II", buf[pstart + 4 : pstart + 12])
                    if best is None or width * height > best[0] * best[1]:
                        best = (width, height)
    return best


def check_ebml(path: Path, file_size: int) -> None:
    """Require the EBML header and the (known-size) Segment of a WebM to fit the file."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
        element = read_vint(head, 0, keep_marker=True)
        size = read_vint(head, element[2], keep_marker=False) if element else None
        if element is None or element[0] != _EBML_ID or size is None:
            raise _fail(path, "invalid EBML header")
        segment_at = size[2] + size[0]
        if segment_at >= file_size:
            raise _fail(path, "truncated: no Segment after the EBML header")
        handle.seek(segment_at)
        seg_head = handle.read(12)
    seg_id = read_vint(seg_head, 0, keep_marker=True)
    seg_size = read_vint(seg_head, seg_id[2], keep_marker=False) if seg_id else None
    if seg_id is None or seg_id[0] != _SEGMENT_ID or seg_size is None:
        raise _fail(path, f"no Segment element at offset {segment_at}")
    value, length, payload_at = seg_size
    unknown = value == (1 << (7 * length)) - 1
    if not unknown and segment_at + payload_at + value > file_size:
        raise _fail(
            path,
            f"truncated: Segment needs {payload_at + value} bytes at offset {segment_at}, "
            f"{file_size - segment_at} remain",
        )
