"""Materialise the training set as lossless PNGs: ``out/{train,val,test}/{real,fake}/<source>/<name>.png``.

Every derived image (crop, resize, fake) inherits the split of the photo it came from, so
a test photo leaks nothing into training. Sampled fakes (GAN, DCGAN) are split by sample
index, CIFAKE by file. JPEG re-encoding etc. is left to training-time augmentation, for
both classes alike.

Shortcut control: wherever a fake family has a telling *framing*, the real side gets the
same framing of real photos — native 256 px crops (vs ``upsample``), face crops of the
same region (vs ``blend``, paired), the CycleGAN's resize-and-centre-crop (vs
``cyclegan``, paired), and small 32–64 px real images, a third of them faces (vs the
32/64 px ``sd``, ``dcgan`` and ``gan`` families). The ``small`` count balances the classes.
``autoenc`` (crops re-drawn by a small latent autoencoder trained on the train split's
colour photos, vs the same native crops) is written last, after that count, so a dataset built
with ``autoenc_steps=0`` holds exactly the same files as one built with it, less that family.

>>> summary = build_dataset(find_shared(), Path("data/detector"), cfg=DetectorCfg(), per_family=400,
...                         seed=0, gan_dir=Path("data/gan"))      # doctest: +SKIP
>>> summary.total("train", "fake") > 0                              # doctest: +SKIP
True
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from authenticity.detection.config import FAKE_FAMILIES, DetectorCfg
from authenticity.detection.train._autoenc import (
    AE_FILE,
    AE_RECIPE,
    is_colour,
    reconstruct,
    save_autoencoder,
    train_autoencoder,
)
from authenticity.detection.train._srgan import SR_PACKAGE, SR_SCALE, load_sr_generator, super_resolve
from authenticity.detection.train._tfjs import LayersModel
from authenticity.detection.train._writer import DatasetSummary, Photo, PngWriter, load_photo
from authenticity.detection.train.gan import generator_checkpoints, sample_generator
from authenticity.detection.train.sources import (
    OPENCV_SAMPLES,
    Split,
    assign_split,
    cifake_files,
    missing_opencv_samples,
    real_sources,
    scene_key,
)
from authenticity.detection.train.synth import (
    center_resize,
    dcgan_faces,
    detect_faces,
    self_blend_face,
    upsample_resynthesis,
    vintagify_translate_many,
)
from authenticity.errors import ConfigError, UsageError
from authenticity.media import load_image_bgr

__all__ = ["CYCLEGAN_CAP", "DATASET_RECIPE", "DatasetSummary", "build_dataset"]

# Bumped whenever the same seed would write different files; a workdir of another recipe is
# rebuilt, not resumed. 2: self-blends of grey faces stay grey (recipe 1 tinted them).
DATASET_RECIPE = 2
CYCLEGAN_CAP = 150  # vintagify costs ~1–3 s per 256 px image on 2 cores: the one slow family
_FAMILIES = tuple(f for f in FAKE_FAMILIES if f not in ("autoenc", "esrgan"))  # those two: own streams, last


def _crop(image: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(side, h, w)
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return np.ascontiguousarray(image[y : y + side, x : x + side])


def _face_region(photo: Photo, rng: np.random.Generator, least: int) -> np.ndarray:
    """A square around one of the photo's faces: 1.6–2.4 face widths, at least ``least`` px where it fits."""
    h, w = photo.pixels.shape[:2]
    fx, fy, fw, fh = photo.faces[int(rng.integers(len(photo.faces)))]
    side = min(h, w, max(least, round(fw * rng.uniform(1.6, 2.4))))
    cy = fy + fh // 2 + int(rng.integers(-fh // 8, fh // 8 + 1))
    cx = fx + fw // 2 + int(rng.integers(-fw // 8, fw // 8 + 1))
    y, x = min(max(0, cy - side // 2), h - side), min(max(0, cx - side // 2), w - side)
    return np.ascontiguousarray(photo.pixels[y : y + side, x : x + side])


def _cycle(items: list[Photo], n: int, rng: np.random.Generator) -> list[tuple[int, Photo]]:
    """``n`` draws that go through a shuffled list round-robin (each photo used as evenly as possible)."""
    if not items:
        return []
    order = [items[i] for i in rng.permutation(len(items))]
    return [(k, order[k % len(order)]) for k in range(n)]


def build_dataset(
    shared: Path,
    out: Path,
    *,
    cfg: DetectorCfg,
    per_family: int,
    seed: int,
    gan_dir: Path | None,
    progress: bool = True,
    cyclegan_cap: int = CYCLEGAN_CAP,
    cyclegan_size: int = 256,
    opencv_dir: Path | None = OPENCV_SAMPLES,
    overwrite: bool = False,
    reviewed: Path | None = None,
    autoenc_steps: int = 0,
    autoenc_adversarial: float = 0.0,
    extra_real: Path | None = None,
    sr_dir: Path | None = None,
) -> DatasetSummary:
    """Build the dataset (see the module docstring); writes ``out/summary.json`` and returns it.

    ``gan_dir=None`` leaves out the ``gan`` family; a ``gan_dir`` without generator checkpoints
    is an error. ``autoenc_steps > 0`` adds the ``autoenc`` family (its autoencoder is saved
    as ``out/autoencoder.safetensors``; ``config.AUTOENC_STEPS`` is the shipped recipe's);
    ``autoenc_adversarial`` is its critic's weight (0 = L1 losses only, see ``train_autoencoder``).
    ``overwrite`` replaces an existing dataset's split folders. ``reviewed`` is a
    folder of reviewer-confirmed media (``authenticity audit export-labelled``: ``real/`` and
    ``fake/``), added as source / family ``reviewed``, split by file like everything else.
    ``extra_real`` is a folder of further real photos, source ``extra``: cropped, face-blended
    and split like the shared ones (their file names are kept in the summary). ``sr_dir`` (a
    folder from :func:`._srgan.fetch_sr_generator`) adds the ``esrgan`` family, written after
    ``autoenc`` from a stream of its own, so every other file stays as it was.
    """
    began = time.perf_counter()
    if per_family < 1:
        raise UsageError("usage.invalid", "per_family must be >= 1")
    if autoenc_steps < 0:
        raise UsageError("usage.invalid", "autoenc_steps must be >= 0")
    if not autoenc_adversarial >= 0:
        raise UsageError("usage.invalid", "autoenc_adversarial must be >= 0")
    checkpoints = generator_checkpoints(gan_dir) if gan_dir is not None else []
    if gan_dir is not None and not checkpoints:
        raise ConfigError("detector.gan.missing", f"{gan_dir}: no generator_step*.safetensors (train the GAN first)")
    if any((out / s.value).exists() for s in Split) or (out / "summary.json").exists():
        if not overwrite:
            raise UsageError("detector.data.exists", f"{out}: a dataset is already there (pass overwrite)")
        for folder in (*(s.value for s in Split), "twins"):
            shutil.rmtree(out / folder, ignore_errors=True)
        for name in (AE_FILE, Path(AE_FILE).with_suffix(".json").name):
            (out / name).unlink(missing_ok=True)
    writer, notes = PngWriter(out), []
    sources = real_sources(shared, opencv_dir=opencv_dir, extra_dir=extra_real)
    extra_names = tuple(p.name for p in sources.get("extra", []))
    cifake_real = sources.pop("cifake_real", [])
    crop_side = 2 * cfg.tile_size
    rngs = {name: np.random.default_rng([seed, i]) for i, name in enumerate(("real", *_FAMILIES, "small"))}
    console = Console(stderr=True)
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not progress) as bar:

        def track(name: str, total: int) -> TaskID:
            return bar.add_task(name, total=total)

        # real photos: the whole photo (≤1024 px, native), up to three native crops, face detection
        paths = [(source, path) for source, files in sources.items() for path in files]
        task, photos = track("photos", len(paths)), []
        for source, path in paths:
            photo = load_photo(source, path, seed)
            photo = Photo(photo.source, photo.path, photo.split, photo.pixels, tuple(detect_faces(photo.pixels)))
            photos.append(photo)
            writer.write(photo.split, "real", "photo", photo.name, photo.pixels)
            h, w = photo.pixels.shape[:2]
            n_crops = min(3, (h * w) // (2 * crop_side**2)) if min(h, w) >= 1.5 * crop_side else 0
            for k in range(n_crops):
                crop = _crop(photo.pixels, crop_side, rngs["real"])
                writer.write(photo.split, "real", "crop", f"{photo.name}__{k}", crop)
            bar.advance(task)
        face_photos = [p for p in photos if p.faces]
        notes.append(f"{len(photos)} real photos, {len(face_photos)} with faces")
        if (missing := missing_opencv_samples(opencv_dir)) is not None:
            notes.append(missing)

        rng, task = rngs["upsample"], track("upsample", per_family)
        for k, photo in _cycle(photos, per_family, rng):
            fake = upsample_resynthesis(_crop(photo.pixels, crop_side, rng), rng)
            writer.write(photo.split, "fake", "upsample", f"{photo.name}__{k}", fake)
            bar.advance(task)

        rng, task = rngs["blend"], track("blend", per_family)
        for k, photo in _cycle(face_photos, per_family, rng):
            region = _face_region(photo, rng, cfg.tile_size)
            blended = self_blend_face(region, rng)
            if blended is not None:  # the face must still be found within its crop
                writer.write(photo.split, "fake", "blend", f"{photo.name}__{k}", blended)
                writer.write(photo.split, "real", "face", f"{photo.name}__{k}", region)
            bar.advance(task)
        if not face_photos:
            notes.append("blend: no faces found in the real photos, family left out")

        rng, n_cycle = rngs["cyclegan"], min(per_family, cyclegan_cap)
        task = track("cyclegan", n_cycle)
        drawn = _cycle(photos, n_cycle, rng)
        for begin in range(0, len(drawn), 4):
            chunk = drawn[begin : begin + 4]
            fakes = vintagify_translate_many([p.pixels for _, p in chunk], size=cyclegan_size)
            for (k, photo), fake in zip(chunk, fakes, strict=True):
                writer.write(photo.split, "fake", "cyclegan", f"{photo.name}__{k}", fake)
                real = center_resize(photo.pixels, cyclegan_size)  # the same framing, untranslated
                writer.write(photo.split, "real", "resized", f"{photo.name}__{k}", real)
            bar.advance(task, len(chunk))
        if n_cycle < per_family:
            notes.append(f"cyclegan: capped at {n_cycle} images of {cyclegan_size} px (vintagify is slow on CPU)")

        task = track("dcgan", per_family)
        for k, face in enumerate(dcgan_faces(per_family, rngs["dcgan"])):
            writer.write(assign_split(f"dcgan/{k:06d}", seed), "fake", "dcgan", f"dcgan__{k:06d}", face)
            bar.advance(task)

        task = track("gan", per_family if checkpoints else 0)
        for c, checkpoint in enumerate(checkpoints):
            share = per_family // len(checkpoints) + (1 if c < per_family % len(checkpoints) else 0)
            for k, image in enumerate(sample_generator(checkpoint, share, seed=seed * 1000 + c)):
                key = f"gan/{checkpoint.stem}/{k:06d}"
                writer.write(assign_split(key, seed), "fake", "gan", f"{checkpoint.stem}__{k:06d}", image)
                bar.advance(task)
        if not checkpoints:
            notes.append("gan: no generator checkpoints given, family left out")

        if reviewed is not None:
            notes.append(_write_reviewed(writer, reviewed, seed))
        _write_cifake(writer, cifake_files(shared, "fake"), "fake", "sd", per_family, rngs["sd"], seed, bar)
        _write_cifake(writer, cifake_real, "real", "cifake_real", per_family // 2, rngs["real"], seed, bar)

        # small real images balance the classes and make "small or upscaled" no fake-only trait
        n_small = max(per_family // 2, _total(writer, "fake") - _total(writer, "real"))
        rng, task = rngs["small"], track("small", n_small)
        for k, photo in _cycle(photos, n_small, rng):
            if face_photos and k % 3 == 0:  # a third are faces, like the 64 px DCGAN faces
                photo = photo if photo.faces else face_photos[int(rng.integers(len(face_photos)))]
                region = _face_region(photo, rng, 0)
            else:
                short = min(photo.pixels.shape[:2])
                region = _crop(photo.pixels, int(rng.integers(max(32, short // 4), short + 1)), rng)
            size = int(rng.integers(32, 65))
            small = np.asarray(cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA), np.uint8)
            writer.write(photo.split, "real", "small", f"{photo.name}__{k}", small)
            bar.advance(task)
        if autoenc_steps > 0:
            notes.append(write_autoenc(writer, photos, out, steps=autoenc_steps, per_family=per_family,
                                       crop_side=crop_side, seed=seed, bar=bar,
                                       adversarial=autoenc_adversarial))  # fmt: skip
        if sr_dir is not None:
            notes.append(write_esrgan(writer, photos, out, load_sr_generator(sr_dir), per_family=per_family,
                                      crop_side=crop_side, seed=seed, bar=bar))  # fmt: skip
    summary = DatasetSummary(out, writer.counts, time.perf_counter() - began, per_family, seed, tuple(notes),
                             DATASET_RECIPE, extra_names)  # fmt: skip
    (out / "summary.json").write_text(summary.to_json())
    return summary


def write_autoenc(writer: PngWriter, photos: list[Photo], out: Path, *, steps: int, per_family: int,
                  crop_side: int, seed: int, bar: Progress, adversarial: float = 0.0) -> str:  # fmt: skip
    """Train the autoencoder on the train split's photos, then re-draw ``per_family`` native crops through it.

    Each fake's own source crop is kept as its *twin* under ``out/twins/<split>/real/autoenc/``
    (same name), outside the split folders, so no training run sees it: ``detector eval
    --real out/twins/test/real --fake out/test/fake/autoenc`` scores fakes against exactly
    the pixels they were made from.
    """
    train = [p.pixels for p in photos if p.split is Split.TRAIN]
    if not train:  # never fit it to val/test photos: their reconstructions would leak into evaluation
        return "autoenc: no train-split photos, family left out"
    model = train_autoencoder(train, steps=steps, seed=seed, adversarial=adversarial, progress=bar)
    psnr = _write_redrawn(writer, photos, out, "autoenc", partial(reconstruct, model), per_family=per_family,
                          crop_side=crop_side, rng=np.random.default_rng([seed, 100]), bar=bar)  # fmt: skip
    mean_psnr = round(float(np.mean(psnr)), 2) if psnr else None
    n_colour = sum(map(is_colour, train))
    save_autoencoder(model, out / AE_FILE, {"recipe": AE_RECIPE, "steps": steps, "adversarial": adversarial,
                                            "seed": seed, "train_photos": len(train), "colour_photos": n_colour,
                                            "mean_psnr_db": mean_psnr})  # fmt: skip
    critic = f", critic weight {adversarial:g}" if adversarial > 0 else ""
    drawn = f"the {n_colour} colour ones of {len(train)}" if n_colour else f"{len(train)}"
    return f"autoenc: latent autoencoder, {steps} steps{critic} on {drawn} train-split photos, PSNR {mean_psnr} dB"


def _write_redrawn(writer: PngWriter, photos: list[Photo], out: Path, family: str,
                   redraw: Callable[[np.ndarray], np.ndarray], *, per_family: int, crop_side: int,
                   rng: np.random.Generator, bar: Progress, multiple: int = 1) -> list[float]:  # fmt: skip
    """``per_family`` native crops (sides cut to a ``multiple``) and ``redraw`` of each: the fake under
    ``family``, its source crop as its twin under ``out/twins/<split>/real/<family>/``; the PSNRs."""
    psnr, twins, task = [], PngWriter(out / "twins"), bar.add_task(family, total=per_family)
    for k, photo in _cycle(photos, per_family, rng):
        crop = _crop(photo.pixels, crop_side, rng)
        crop = crop[: crop.shape[0] - crop.shape[0] % multiple, : crop.shape[1] - crop.shape[1] % multiple]
        fake = redraw(crop)
        writer.write(photo.split, "fake", family, f"{photo.name}__{k}", fake)
        twins.write(photo.split, "real", family, f"{photo.name}__{k}", crop)
        psnr.append(float(cv2.PSNR(crop, fake)))
        bar.advance(task)
    return psnr


def write_esrgan(writer: PngWriter, photos: list[Photo], out: Path, net: LayersModel, *, per_family: int,
                 crop_side: int, seed: int, bar: Progress) -> str:  # fmt: skip
    """``per_family`` native crops shrunk 4x and re-drawn by the super-resolution GAN (:mod:`._srgan`).

    Photos are drawn in name order from their own stream, so the family is the same whether it
    is written by :func:`build_dataset` or added to a finished dataset (``bench/sr_family.py``).
    Each fake's source crop is kept as its twin under ``out/twins/<split>/real/esrgan/``.
    """
    ordered, rng = sorted(photos, key=lambda p: p.name), np.random.default_rng([seed, 101])
    psnr = _write_redrawn(writer, ordered, out, "esrgan", partial(super_resolve, net), per_family=per_family,
                          crop_side=crop_side, rng=rng, bar=bar, multiple=SR_SCALE)  # fmt: skip
    mean_psnr = round(float(np.mean(psnr)), 2) if psnr else None
    return f"esrgan: {len(psnr)} crops re-drawn 4x by {SR_PACKAGE} (RRDN GAN), PSNR {mean_psnr} dB"


def _write_reviewed(writer: PngWriter, folder: Path, seed: int) -> str:
    """Reviewer-confirmed images: ``folder/real/**`` and ``folder/fake/**``, decoded under the usual limits."""
    if not (folder / "real").is_dir() and not (folder / "fake").is_dir():
        raise UsageError("detector.data.reviewed_invalid", f"{folder}: expected real/ and/or fake/ subfolders")
    counts = {}
    for cls in ("real", "fake"):
        files = sorted(p for p in (folder / cls).rglob("*") if p.is_file()) if (folder / cls).is_dir() else []
        for path in files:
            key = f"reviewed/{cls}/{path.relative_to(folder / cls)}"
            name = key.replace("/", "__")
            writer.write(assign_split(key, seed), cls, "reviewed", name, load_image_bgr(path))
        counts[cls] = len(files)
    return f"reviewed: {counts['real']} real and {counts['fake']} fake images from {folder}"


def _total(writer: PngWriter, cls: str) -> int:
    return sum(n for by_cls in writer.counts.values() for n in by_cls.get(cls, {}).values())


def _write_cifake(writer: PngWriter, files: list[Path], cls: str, source: str, n: int,
                  rng: np.random.Generator, seed: int, bar: Progress) -> None:  # fmt: skip
    """``n`` CIFAKE files drawn without replacement, split by file, re-written as PNG."""
    chosen = [files[i] for i in sorted(rng.choice(len(files), size=min(n, len(files)), replace=False))] if files else []
    task = bar.add_task(source, total=len(chosen))
    for path in chosen:
        split = assign_split(scene_key(source, path), seed)
        writer.write(split, cls, source, path.stem, load_image_bgr(path))
        bar.advance(task)
