"""Move a training workdir to another machine in size-capped parts, pixels unchanged.

``bench/lofo.py`` needs a finished workdir (``gan/`` and ``dataset/``), and the seven-family
dataset is about 225 MB of PNG, more than one transfer to a lent GPU machine may carry
(64 MiB). ``pack`` re-encodes every dataset image as lossless WebP (about 0.65 of the PNG
bytes; each one decoded and compared before it is kept, and an image WebP cannot hold
exactly, grey or 16-bit, travels as its PNG) and deals the files into parts
of at most ``--part-mb``, each with a manifest; ``unpack`` checks that every part of the
pack is there and complete, then turns them back into a workdir of PNGs with the same
pixels. Only what ``bench/lofo.py`` reads travels: the GAN stage's
discriminator, ``dataset/summary.json`` and the chosen splits.

    python bench/workdir_parts.py pack --workdir /tmp/train_run --out .work --part-mb 40
    python bench/workdir_parts.py unpack --parts .work/part1 .work/part2 --workdir /tmp/wd

On the lent machine, a part carried into the checkout does not outlive the next call that
carries another (seen 2026-11-28): each call that brings a part should move it out
(``mv .work/part* /tmp/parts/``), and the last one unpacks ``/tmp/parts/part*``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from authenticity.detection.train.gan import DISCRIMINATOR_FILE

WEBP_LOSSLESS = [cv2.IMWRITE_WEBP_QUALITY, 101]  # quality above 100 selects lossless WebP
KEPT = (f"gan/{DISCRIMINATOR_FILE}", "dataset/summary.json")
MANIFEST = "workdir_parts.json"  # in each part: its number, how many parts the pack has, its file count


T = TypeVar("T")
R = TypeVar("R")


class PackError(Exception):
    """A workdir or part that cannot be packed or unpacked as asked (one line for the user)."""


def encode_lossless(png: Path) -> bytes | None:
    """The image at *png* as lossless WebP bytes, or None where WebP would not give the same
    pixels back (grey or 16-bit images: they travel as they are)."""
    pixels = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise PackError(f"{png}: not a readable image")
    ok, buf = cv2.imencode(".webp", pixels, WEBP_LOSSLESS)
    back = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else None
    if back is None or back.shape != pixels.shape or back.dtype != pixels.dtype or not np.array_equal(back, pixels):
        return None
    return buf.tobytes()


def _map(fn: Callable[[T], R], items: Iterable[T], jobs: int) -> list[R]:
    """``map`` over worker processes, or in this process for one job."""
    if jobs <= 1:
        return [fn(item) for item in items]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(fn, items, chunksize=16))


def _encode_job(job: tuple[Path, Path]) -> Path:
    src, webp = job
    data = encode_lossless(src)
    target = webp if data is not None else webp.with_suffix(".png")
    target.parent.mkdir(parents=True, exist_ok=True)
    if data is None:
        shutil.copy2(src, target)
    else:
        target.write_bytes(data)
    return target


def _manifest(part: Path) -> dict[str, int]:
    try:
        data = json.loads((part / MANIFEST).read_text())
        return {"part": int(data["part"]), "of": int(data["of"]), "files": int(data["files"])}
    except (OSError, ValueError, KeyError, TypeError):
        raise PackError(f"{part}: no readable {MANIFEST}; not a part written by `pack`") from None


def _fresh(folder: Path, verb: str) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise PackError(f"{folder}: not empty; {verb} into a new folder")


def pack(workdir: Path, out: Path, part_bytes: int, splits: tuple[str, ...] = ("train", "test"),
         jobs: int = 2) -> list[Path]:  # fmt: skip
    """Write ``out/part1..N``, each holding at most *part_bytes* of files and a manifest.

    All or nothing: on any error *out* is left as it was found (absent or empty).
    """
    if part_bytes <= 0:
        raise PackError(f"a part must hold something: {part_bytes} bytes asked")
    missing = [rel for rel in KEPT if not (workdir / rel).is_file()]
    if missing:
        raise PackError(f"{workdir / missing[0]} missing: not a finished `detector train` workdir")
    images = sorted(p for s in splits for p in (workdir / "dataset" / s).rglob("*.png"))
    if not images:
        raise PackError(f"{workdir / 'dataset'}: no PNG images in {', '.join(splits)}")
    _fresh(out, "pack")
    created = not out.exists()
    partial = out / ".partial"
    try:
        staging = partial / ".encoding"
        encoded = _map(_encode_job, [(p, staging / p.relative_to(workdir).with_suffix(".webp")) for p in images], jobs)
        files = [(path, path.relative_to(staging)) for path in encoded] + [(workdir / r, Path(r)) for r in KEPT]
        groups: list[list[tuple[Path, Path]]] = []
        used = part_bytes  # the first file starts a part
        for path, rel in files:
            size = path.stat().st_size
            if size > part_bytes:
                raise PackError(f"{rel}: {size} bytes, more than a part may hold ({part_bytes}); raise --part-mb")
            if used + size > part_bytes:
                groups.append([])
                used = 0
            groups[-1].append((path, rel))
            used += size
        for k, group in enumerate(groups, 1):
            part = partial / f"part{k}"
            for path, rel in group:
                (part / rel).parent.mkdir(parents=True, exist_ok=True)
                if path.is_relative_to(staging):
                    os.replace(path, part / rel)
                else:
                    shutil.copy2(path, part / rel)
            (part / MANIFEST).write_text(json.dumps({"part": k, "of": len(groups), "files": len(group)}) + "\n")
        parts = [out / f"part{k}" for k in range(1, len(groups) + 1)]
        for part in parts:
            os.replace(partial / part.name, part)
        shutil.rmtree(partial)
        return parts
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        for stray in out.glob("part*"):
            shutil.rmtree(stray, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _decode_job(job: tuple[Path, Path]) -> None:
    src, dst = job
    pixels = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise PackError(f"{src}: not a readable WebP")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(dst), pixels):
        raise PackError(f"{dst}: could not be written")


def unpack(parts: list[Path], workdir: Path, jobs: int = 2) -> int:
    """Rebuild *workdir* (absent or empty) from every part of one pack; returns the images written.

    The parts' manifests are checked first, so a part left out or one from another pack is
    refused before anything is written; on any error *workdir* is left as it was found.
    """
    for part in parts:
        if not part.is_dir():
            raise PackError(f"{part}: not a folder of packed files")
    manifests = {part: _manifest(part) for part in parts}
    total = {m["of"] for m in manifests.values()}
    numbers = sorted(m["part"] for m in manifests.values())
    if len(total) != 1 or numbers != list(range(1, next(iter(total)) + 1)):
        have = ", ".join(str(n) for n in numbers)
        raise PackError(f"parts {have} given, but the pack has {' or '.join(str(t) for t in sorted(total))}: "
                        "pass every part of one pack")  # fmt: skip
    for part, manifest in manifests.items():
        count = sum(1 for f in part.rglob("*") if f.is_file() and f.name != MANIFEST)
        if count != manifest["files"]:
            raise PackError(f"{part}: {count} files, its manifest says {manifest['files']}: an incomplete copy")
    _fresh(workdir, "unpack")
    created = not workdir.exists()
    try:
        work, copied = [], 0
        for part in parts:
            for path in sorted(part.rglob("*")):
                if path.name == MANIFEST or not path.is_file():
                    continue
                if path.suffix == ".webp":
                    work.append((path, workdir / path.relative_to(part).with_suffix(".png")))
                else:  # the discriminator, the summary, and images kept as PNG
                    (workdir / path.relative_to(part)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, workdir / path.relative_to(part))
                    copied += path.suffix == ".png"
        _map(_decode_job, work, jobs)
        return len(work) + copied
    except BaseException:
        if created:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for child in list(workdir.iterdir()):  # it was empty: all of this is ours
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="workdir -> parts of lossless WebP")
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--part-mb", type=float, default=40.0, help="the most one part may hold (MB)")
    p.add_argument("--splits", default="train,test", help="dataset splits to carry (bench/lofo.py reads train,test)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    u = sub.add_parser("unpack", help="parts -> workdir of PNGs")
    u.add_argument("--parts", type=Path, nargs="+", required=True)
    u.add_argument("--workdir", type=Path, required=True)
    u.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            splits = tuple(s for s in args.splits.split(",") if s)
            parts = pack(args.workdir, args.out, int(args.part_mb * 1e6), splits, args.jobs)
            for part in parts:
                size = sum(f.stat().st_size for f in part.rglob("*") if f.is_file())
                print(f"{part}: {size / 1e6:.1f} MB")
        else:
            print(f"{args.workdir}: {unpack(args.parts, args.workdir, args.jobs)} images")
    except PackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
