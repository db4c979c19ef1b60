"""Real-image sources for detector training, and a leak-free train/val/test split.

The split is decided per *file* (per scene, for the few classic test images that ship in
several subsets) from a seeded hash, so every crop, resize or fake derived from a test
photo lands in the test split too: nothing of a test photo is ever trained on.

>>> assign_split("LIVE1/bikes.png", seed=0) in set(Split)
True
>>> assign_split("LIVE1/bikes.png", seed=0) == assign_split("LIVE1/bikes.png", seed=0)
True
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from authenticity.errors import ConfigError

__all__ = [
    "IMAGE_SUFFIXES",
    "OPENCV_SAMPLES",
    "PHOTO_SUBSETS",
    "SPLIT_FRACTIONS",
    "Split",
    "assign_split",
    "cifake_files",
    "extra_photos",
    "find_shared",
    "missing_opencv_samples",
    "real_sources",
    "scene_key",
    "split_sources",
]

PHOTO_SUBSETS = ("set5", "set12", "real_faces", "LIVE1", "Set14", "BSD68", "Train400-gray", "McMaster", "RealSRSet")
OPENCV_SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
_REPO_ROOT = Path(__file__).resolve().parents[3]


class Split(enum.StrEnum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


# The same classic scenes ship in several subsets (Set14 "lenna" is set12 "08" and
# opencv-less "lena"; Set14/LIVE1 "monarch"; Set14/RealSRSet "foreman", "ppt3"…). They
# share one split key so a scene never straddles train and test. Over-grouping is harmless.
_SET12_NAMES = ("cameraman", "house", "peppers", "starfish", "monarch", "airplane",
                "parrots", "lena", "barbara", "boat", "man", "couple")  # fmt: skip
_SCENE_ALIASES = {"lenna": "lena", "pepper": "peppers", "parrot": "parrots", "butterfly": "monarch",
                  "mandrill": "baboon", "plane": "airplane", "ppt": "ppt", "comic": "comic"}  # fmt: skip
_CLASSIC = frozenset(_SET12_NAMES) | frozenset(_SCENE_ALIASES.values()) | {"baboon", "foreman", "face", "zebra"}
# opencv-doc samples come in stereo pairs and series (left01/right01, aloeL/aloeR, …).
_OPENCV_ALIASES = {"right": "left", "aloel": "aloe", "aloer": "aloe", "aloegt": "aloe", "leuvena": "leuven",
                   "leuvenb": "leuven", "elamodified": "ela", "elaoriginal": "ela", "imagetextn": "imagetext",
                   "imagetextr": "imagetext", "boxinscene": "box", "textdefocus": "text", "textmotion": "text",
                   "tmpl": "templ"}  # fmt: skip


def find_shared(root: Path | None = None) -> Path:
    """The ``shared`` data folder (default: ``<repo>/../shared``), checked to hold ``data/photos``.

    >>> find_shared(Path("/nonexistent"))
    Traceback (most recent call last):
    ...
    authenticity.errors.ConfigError: /nonexistent: no training data here (expected data/photos/ and data/cifake/)
    """
    shared = Path(root) if root is not None else _REPO_ROOT.parent / "shared"
    if not (shared / "data" / "photos").is_dir():
        raise ConfigError(
            "detector.data.missing",
            f"{shared}: no training data here (expected data/photos/ and data/cifake/)",
            hint="pass the folder that holds data/photos, e.g. --shared ../shared",
        )
    known = {subset.lower() for subset in PHOTO_SUBSETS}
    folders = [p for p in (shared / "data" / "photos").iterdir() if p.is_dir() and p.name.lower() in known]
    if not any(_images_in(folder) for folder in folders):  # training on nothing would "succeed" on CIFAKE alone
        raise ConfigError(
            "detector.data.missing",
            f"{shared / 'data' / 'photos'}: no images in any known subset ({', '.join(PHOTO_SUBSETS)})",
            hint="pass the folder that holds data/photos, e.g. --shared ../shared",
        )
    return shared


def missing_opencv_samples(opencv_dir: Path | None = OPENCV_SAMPLES) -> str | None:
    """What to tell a user whose machine lacks the Debian ``opencv-doc`` sample photos, or None.

    Without them the dataset (and the GAN stage trained on it) is not the shipped model's.

    >>> missing_opencv_samples(Path("/nonexistent"))
    'no opencv-doc samples in /nonexistent: the shipped model was trained with them (apt-get install opencv-doc)'
    """
    if opencv_dir is None or _images_in(opencv_dir):
        return None
    return (
        f"no opencv-doc samples in {opencv_dir}: the shipped model was trained with them (apt-get install opencv-doc)"
    )


def extra_photos(folder: Path | None) -> list[Path]:
    """The image files directly in ``folder`` (``--extra-real``), sorted; none for ``None``.

    >>> extra_photos(None)
    []
    """
    return _images_in(folder) if folder is not None else []


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def real_sources(
    shared: Path, *, opencv_dir: Path | None = OPENCV_SAMPLES, extra_dir: Path | None = None
) -> dict[str, list[Path]]:
    """Real photos by source name: the photo subsets, ``opencv``, ``extra``, ``cifake_real`` (sorted, non-empty only).

    Subset folders are matched case-insensitively (``set5`` / ``Set5``). ``extra_dir`` is a
    folder of further real photos (``detector train --extra-real``, e.g. what ``detector
    fetch-photos`` writes), treated like every other photo source.

    >>> sorted(real_sources(find_shared()))  # doctest: +SKIP
    ['BSD68', 'LIVE1', 'McMaster', 'RealSRSet', 'Set14', 'Train400-gray', 'cifake_real', 'opencv', ...]
    """
    photos = shared / "data" / "photos"
    by_lower = {p.name.lower(): p for p in photos.iterdir() if p.is_dir()} if photos.is_dir() else {}
    sources: dict[str, list[Path]] = {}
    for subset in PHOTO_SUBSETS:
        folder = by_lower.get(subset.lower())
        files = _images_in(folder) if folder is not None else []
        if files:
            sources[subset] = files
    if opencv_dir is not None and (files := _images_in(opencv_dir)):
        sources["opencv"] = files
    if files := extra_photos(extra_dir):
        sources["extra"] = files
    if files := cifake_files(shared, "real"):
        sources["cifake_real"] = files
    return sources


def cifake_files(shared: Path, kind: str) -> list[Path]:
    """CIFAKE 32×32 files, ``kind`` = ``"real"`` (CIFAR-10) or ``"fake"`` (Stable Diffusion 1.4), sorted.

    >>> len(cifake_files(find_shared(), "fake"))  # doctest: +SKIP
    10000
    """
    if kind not in ("real", "fake"):
        raise ValueError(f"kind must be 'real' or 'fake', got {kind!r}")
    return _images_in(shared / "data" / "cifake" / kind)


def scene_key(source: str, path: Path) -> str:
    """What the split is decided on: ``source/filename``, or ``scene/<name>`` for a classic shared scene.

    An ``extra`` photo's key is its name's letters, so photos of one subject named
    ``obama.jpg``, ``obama2.jpg`` share a split.

    >>> scene_key("Set14", Path("lenna.png")), scene_key("set12", Path("08.png")), scene_key("BSD68", Path("t1.png"))
    ('scene/lena', 'scene/lena', 'BSD68/t1.png')
    >>> scene_key("extra", Path("obama2.jpg")) == scene_key("extra", Path("obama.jpg"))
    True
    """
    stem = path.stem.lower()
    letters = re.sub(r"[^a-z]", "", stem)
    if source == "set12" and stem.isdigit() and 1 <= int(stem) <= len(_SET12_NAMES):
        return f"scene/{_SET12_NAMES[int(stem) - 1]}"
    if source == "opencv":
        return f"opencv/{_OPENCV_ALIASES.get(letters, letters) or stem}"
    if source == "extra":
        return f"extra/{letters or stem}"
    canonical = _SCENE_ALIASES.get(letters, letters)
    if source != "real_faces" and canonical in _CLASSIC:
        return f"scene/{canonical}"
    return f"{source}/{path.name}"


def assign_split(key: str, seed: int = 0, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> Split:
    """Deterministic split of one key: SHA-256 of ``seed:key`` read as a number in [0, 1).

    >>> assign_split("a", 0) == assign_split("a", 0)
    True
    """
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    if u < fractions[0]:
        return Split.TRAIN
    return Split.VAL if u < fractions[0] + fractions[1] else Split.TEST


def split_sources(sources: Mapping[str, Iterable[Path]], seed: int = 0) -> dict[Split, dict[str, list[Path]]]:
    """Partition every source's files into train/val/test by :func:`scene_key`; each file lands in exactly one.

    >>> parts = split_sources({"LIVE1": [Path("a.png"), Path("b.png")]}, seed=1)
    >>> sum(len(f) for by_source in parts.values() for f in by_source.values())
    2
    """
    parts: dict[Split, dict[str, list[Path]]] = {split: {} for split in Split}
    for source, files in sources.items():
        for path in files:
            split = assign_split(scene_key(source, path), seed)
            parts[split].setdefault(source, []).append(path)
    return parts
