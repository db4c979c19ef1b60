"""Video checks: container structure, then one decoded frame (private helpers).

Nothing here reads a whole file: the structure walk seeks from box to box and
``cv2.VideoCapture`` streams from disk.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2

from authenticity.errors import MediaError
from authenticity.media._containers import check_bmff, check_ebml
from authenticity.media._decode import one_line
from authenticity.media._files import display_path, stat_media_file
from authenticity.media.sniff import MediaType

# A hostile or broken video makes FFmpeg and OpenCV print their own multi-line warnings on stderr,
# where the CLI promises one "error: code: message" line. The failure itself is still detected and
# reported with our code; only their chatter is silenced (FFmpeg reads this when its backend loads).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

__all__ = ["open_capture", "probe_video"]


def _failed(path: Path, detail: str) -> MediaError:
    return MediaError("media.decode.failed", f"{display_path(path)}: {detail}")


def open_capture(path: Path) -> cv2.VideoCapture:
    """Open *path* with FFmpeg when available.

    The path is made absolute so FFmpeg never reads a relative name such as
    ``http:clip.mp4`` as a protocol URL.
    """
    api = cv2.CAP_FFMPEG if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG) else cv2.CAP_ANY
    return cv2.VideoCapture(os.path.abspath(path), api)


def probe_video(path: Path, media_type: MediaType) -> tuple[int, int, int | None]:
    """Check the container, decode the first frame; return ``(width, height, frames)``.

    ``frames`` is the container's frame count, ``None`` when it does not say.
    """
    file_size = stat_media_file(path).st_size
    if media_type is MediaType.WEBM:
        check_ebml(path, file_size)
    else:
        check_bmff(path, file_size, frozenset({"moov"}))
    try:
        capture = open_capture(path)
    except cv2.error as exc:
        raise _failed(path, f"video does not open ({one_line(exc)})") from exc
    try:
        if not capture.isOpened():
            raise _failed(path, "video does not open (no demuxer accepts it)")
        ok, frame = capture.read()
        if not ok or frame is None or frame.size == 0:
            raise _failed(path, "no video frame decodes")
        height, width = int(frame.shape[0]), int(frame.shape[1])
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    except cv2.error as exc:
        raise _failed(path, f"video does not decode ({one_line(exc)})") from exc
    finally:
        capture.release()
    frames = int(count) if math.isfinite(count) and count >= 1 else None
    return width, height, frames
