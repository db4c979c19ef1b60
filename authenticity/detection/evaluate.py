"""Evaluate a detector on labelled image folders: ranking, calibration, per source, robustness, attacks.

Layout: every image below ``real_dir`` is real (label 0), every image below ``fake_dir``
synthetic (label 1). The first-level subfolder a file sits in names its *source*
(``fake/sd15/…``, ``fake/gan/…``); files directly inside count as source ``default``.
Files that fail to load are counted and listed in the report; they never stop the run.

Scores are computed exactly as :class:`~authenticity.detection.scoring.Detector` computes
them (same tiles, batched ``tile_logits``, ``aggregate``, ``calibrate``), so a number in
the report is a number the product would have produced.

>>> report = evaluate(Detector.load(), Path("eval/real"), Path("eval/fake"), robustness=True,
...                   attacks=["fgsm", "pgd"], out_dir=Path("eval/out"), progress=True)  # doctest: +SKIP
>>> round(report.overall.auc, 3)                                                         # doctest: +SKIP
0.974
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from authenticity._files import walk_files
from authenticity.detection import metrics as M
from authenticity.detection._transforms import ROBUSTNESS, Transform
from authenticity.detection.config import DetectorCfg, Label
from authenticity.detection.preprocess import ensure_min_side, grid_boxes, image_tiles
from authenticity.detection.scoring import MIN_SIDE, Detector
from authenticity.errors import AuthenticityError, MediaError, UsageError
from authenticity.media import load_image_bgr

__all__ = [
    "ATTACKS",
    "DEFAULT_EPSILONS",
    "IMAGE_SUFFIXES",
    "ROBUSTNESS",
    "AttackRow",
    "EvalReport",
    "LoadFailure",
    "Metrics",
    "SourceRow",
    "evaluate",
    "load_labelled_folder",
    "score_files",
]

Image = NDArray[np.uint8]
_F64 = NDArray[np.float64]
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic", ".heif"})
DEFAULT_SOURCE = "default"
ATTACKS = ("fgsm", "pgd")
DEFAULT_EPSILONS = (1, 2, 4)  # in 8-bit levels, i.e. ε = k/255 in [0, 1] pixel space
PGD_STEPS = 10


# -- report types --------------------------------------------------------------------------
def _clean(value: Any) -> Any:
    """JSON-safe: NaN → None, recursively."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


@dataclass(frozen=True)
class LoadFailure:
    path: str
    code: str
    message: str


@dataclass(frozen=True)
class Metrics:
    """Ranking and decision metrics of one condition (clean, one corruption, ...)."""

    n_real: int
    n_fake: int
    auc: float
    average_precision: float
    tpr_at_1pct_fpr: float
    accuracy: float  # at cfg.threshold on calibrated probabilities
    ece: float
    uncertain_fraction: float
    real_flagged: float = math.nan  # share of real images called synthetic at cfg.threshold (the FPR)
    fake_flagged: float = math.nan  # share of synthetic images called synthetic at cfg.threshold (the TPR)

    @classmethod
    def compute(cls, cfg: DetectorCfg, y: NDArray[np.int64], logits: _F64) -> Metrics:
        keep = np.isfinite(logits)
        y, logits = y[keep], logits[keep]
        probs = _probabilities(cfg, logits)
        return cls(
            n_real=int((y == 0).sum()),
            n_fake=int((y == 1).sum()),
            auc=M.auc(y, logits),
            average_precision=M.average_precision(y, logits),
            tpr_at_1pct_fpr=M.tpr_at_fpr(y, logits, 0.01),
            accuracy=M.accuracy_at(y, probs, cfg.threshold),
            ece=M.expected_calibration_error(y, probs),
            uncertain_fraction=_uncertain(cfg, probs),
            real_flagged=_flagged(cfg, probs[y == 0]),
            fake_flagged=_flagged(cfg, probs[y == 1]),
        )


@dataclass(frozen=True)
class SourceRow:
    """One source: for fakes, caught at the threshold and ranked against ALL reals; for reals, false alarms."""

    kind: str  # "real" | "fake"
    source: str
    n: int
    flagged: float  # fraction called synthetic at cfg.threshold: detection rate (fake) or FPR (real)
    mean_probability: float
    uncertain_fraction: float
    auc: float | None = None  # fakes only: this source vs all reals
    average_precision: float | None = None
    tpr_at_1pct_fpr: float | None = None


@dataclass(frozen=True)
class AttackRow:
    attack: str
    epsilon: int  # in 8-bit levels (ε/255)
    auc: float
    accuracy: float


@dataclass
class EvalReport:
    """Everything :func:`evaluate` measured; ``to_dict()`` for JSON, ``to_markdown()`` for people."""

    model: dict[str, str]
    threshold: float
    uncertain_band: tuple[float, float]
    real_dir: str
    fake_dir: str
    overall: Metrics
    sources: list[SourceRow]
    robustness: dict[str, Metrics] = field(default_factory=dict)
    attacks: list[AttackRow] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    seconds: float = 0.0
    evaluated_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["n_failed"] = len(self.failures)
        return dict(_clean(out))

    def to_markdown(self) -> str:
        o, m = self.overall, self.model
        head = ["condition", "AUC", "AP", "TPR@1%FPR", "accuracy", "ECE", "uncertain", "real flagged", "fake flagged"]
        lines = [
            f"# Detector evaluation: {m.get('name', '?')} ({m.get('arch', '?')})\n",
            f"- weights sha256: `{m.get('weights_sha256') or 'unknown'}`",
            f"- data: {o.n_real} real (`{self.real_dir}`), {o.n_fake} synthetic (`{self.fake_dir}`), "
            f"{len(self.failures)} failed to load",
            f"- decision: threshold {self.threshold:.2f}, uncertain band {self.uncertain_band[0]:.2f}–"
            f"{self.uncertain_band[1]:.2f}; evaluated {self.evaluated_at} in {self.seconds:.1f} s",
            "\n## Overall\n",
            *_table(head, [_metric_cells("clean", o)]),
            "\n## Per source\n\nFake sources are ranked against all real images; "
            "for real sources *flagged* is the false-positive rate.\n",
            *_table(["class", "source", "n", "flagged", "mean P", "uncertain", "AUC", "AP", "TPR@1%FPR"],
                    [[r.kind, r.source, str(r.n), *map(_fmt, (r.flagged, r.mean_probability, r.uncertain_fraction,
                      r.auc, r.average_precision, r.tpr_at_1pct_fpr))] for r in self.sources], left=2),
        ]  # fmt: skip
        if self.robustness:
            lines += ["\n## Robustness\n\nThe same transform applied to real and synthetic images.\n"]
            lines += _table(head, [_metric_cells(k, v) for k, v in {"clean": o, **self.robustness}.items()])
        if self.attacks:
            lines += [f"\n## White-box attacks\n\nEach image pushed toward the wrong class (PGD: {PGD_STEPS} steps "
                      "of ε/4, no random start); ε in 8-bit levels.\n"]  # fmt: skip
            rows = [["none", "0", _fmt(o.auc), _fmt(o.accuracy)]]
            rows += [[a.attack, f"{a.epsilon}/255", _fmt(a.auc), _fmt(a.accuracy)] for a in self.attacks]
            lines += _table(["attack", "ε", "AUC", "accuracy"], rows)
        if self.failures:
            lines += [f"\n## Failed to load ({len(self.failures)})\n"]
            lines += [f"- `{f.path}`: {f.code}: {f.message}" for f in self.failures[:50]]
            lines += [f"- … and {len(self.failures) - 50} more"] if len(self.failures) > 50 else []
        return "\n".join(lines) + "\n"


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    rule = "|" + "|".join(["---"] * left + ["---:"] * (len(header) - left)) + "|"
    return ["| " + " | ".join(header) + " |", rule, *("| " + " | ".join(row) + " |" for row in rows)]


def _metric_cells(name: str, m: Metrics) -> list[str]:
    cells = (m.auc, m.average_precision, m.tpr_at_1pct_fpr, m.accuracy, m.ece, m.uncertain_fraction, m.real_flagged,
             m.fake_flagged)  # fmt: skip
    return [name, *map(_fmt, cells)]


def _probabilities(cfg: DetectorCfg, logits: _F64) -> _F64:
    z = np.clip((logits + cfg.logit_bias) / cfg.temperature, -60.0, 60.0)  # as Detector.calibrate
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _flagged(cfg: DetectorCfg, probs: _F64) -> float:
    return float(np.mean(probs >= cfg.threshold)) if probs.size else math.nan


def _uncertain(cfg: DetectorCfg, probs: _F64) -> float:
    return float(np.mean([cfg.label_for(float(p)) is Label.UNCERTAIN for p in probs])) if probs.size else math.nan


# -- files -----------------------------------------------------------------------------------
def _class_files(root: Path, label: int) -> list[tuple[Path, int, str]]:
    if not root.is_dir():
        raise UsageError("usage.eval.folder", f"{root}: not a folder of images")
    out = []
    for path in walk_files(root):  # symlinked source folders count too
        rel = path.relative_to(root)
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            out.append((path, label, rel.parts[0] if len(rel.parts) > 1 else DEFAULT_SOURCE))
    return out


def load_labelled_folder(root: Path) -> list[tuple[Path, int, str]]:
    """``(path, label, source)`` for every image below ``root/real`` (0) and ``root/fake`` (1).

    Images are recognised by suffix (``IMAGE_SUFFIXES``); hidden files and folders are skipped.

    >>> load_labelled_folder(Path("eval"))[:1]   # doctest: +SKIP
    [(PosixPath('eval/fake/sd15/0001.png'), 1, 'sd15')]
    """
    return _class_files(root / "real", 0) + _class_files(root / "fake", 1)


def _load(detector: Detector, path: Path) -> Image:
    bgr = load_image_bgr(path, max_pixels=detector.max_pixels)
    if min(bgr.shape[:2]) < MIN_SIDE:
        raise MediaError("detection.image.too_small", f"{path}: too small to score (minimum {MIN_SIDE} px per side)")
    return bgr


def score_files(
    detector: Detector,
    paths: Sequence[Path],
    transform: Transform | None = None,
    *,
    failures: list[LoadFailure] | None = None,
    advance: Callable[[int], None] | None = None,
) -> _F64:
    """Aggregated logits of image files (NaN for a file that fails to load, listed in *failures*).

    *transform* is applied to the decoded BGR image before tiling. Tiles of several files
    share a batch of ``detector.tile_logits``.

    >>> score_files(detector, [Path("a.png"), Path("b.jpg")], ROBUSTNESS["jpeg_q75"])  # doctest: +SKIP
    array([-2.31, 4.07])
    """
    out = np.full(len(paths), np.nan)
    queue: list[tuple[int, NDArray[np.float32]]] = []

    def flush() -> None:
        if queue:
            logits = detector.tile_logits(np.concatenate([tiles for _, tiles in queue]))
            start = 0
            for index, tiles in queue:
                out[index] = detector.aggregate(logits[start : start + len(tiles)].tolist())
                start += len(tiles)
            if advance is not None:
                advance(len(queue))
            queue.clear()

    for index, path in enumerate(paths):
        try:
            bgr = _load(detector, path)
        except AuthenticityError as exc:
            if failures is not None:
                failures.append(LoadFailure(str(path), exc.code, exc.message))
            if advance is not None:
                advance(1)
            continue
        queue.append((index, image_tiles(transform(bgr) if transform else bgr, detector.cfg)[0]))
        if sum(len(t) for _, t in queue) >= detector.batch_size:
            flush()
    flush()
    return out


# -- white-box attacks -------------------------------------------------------------------------
def _image_logits(model: torch.nn.Module, cfg: DetectorCfg, images: list[torch.Tensor]) -> torch.Tensor:
    """Differentiable tiles → model → aggregate: one logit per ``3×H×W`` RGB image in [0, 1]."""
    mean = torch.tensor(cfg.mean, device=images[0].device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std, device=images[0].device).view(1, 3, 1, 1)
    tiles, counts = [], []
    for image in images:
        boxes = grid_boxes(image.shape[1], image.shape[2], cfg.tile_size, cfg.max_tiles)
        tiles += [image[:, b.y : b.y + b.size, b.x : b.x + b.size] for b in boxes]
        counts.append(len(boxes))
    logits = model((torch.stack(tiles) - mean) / std).float()
    parts = torch.split(logits, counts)
    return torch.stack([p.max() if cfg.aggregate == "max_logit" else p.mean() for p in parts])


def _attack(model: torch.nn.Module, cfg: DetectorCfg, images: list[torch.Tensor], y: torch.Tensor,
            epsilon: float, steps: int, step_size: float) -> torch.Tensor:  # fmt: skip
    """L∞ steps of ``step_size`` up the BCE toward the wrong class, projected to the ε-ball and [0, 1]."""
    adv = [image.clone() for image in images]
    for _ in range(steps):
        adv = [a.detach().requires_grad_(True) for a in adv]
        with torch.enable_grad():
            loss = F.binary_cross_entropy_with_logits(_image_logits(model, cfg, adv), y, reduction="sum")
            grads = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = [
                torch.min(torch.max(a + step_size * g.sign(), x - epsilon), x + epsilon).clamp(0.0, 1.0)
                for a, g, x in zip(adv, grads, images, strict=True)
            ]
    with torch.no_grad():
        return _image_logits(model, cfg, adv)


def _attack_logits(detector: Detector, paths: Sequence[Path], y: NDArray[np.int64], attacks: Sequence[str],
                   epsilons: Sequence[int], advance: Callable[[int], None]) -> dict[tuple[str, int], _F64]:  # fmt: skip
    """Adversarial aggregated logits per ``(attack, ε)``; images are attacked as scored (after upscaling).

    The perturbation is not rounded to 8 bits: the attacker is given the float image.
    """
    model, cfg = detector.model, detector.cfg
    device = next(model.parameters()).device
    out = {(a, e): np.full(len(paths), np.nan) for a in attacks for e in epsilons}
    group: list[int] = []
    images: list[torch.Tensor] = []
    tiles = 0

    def run() -> None:
        target = torch.tensor([float(y[i]) for i in group], device=device)
        for attack in attacks:
            for eps in epsilons:
                steps, size = (1, eps / 255) if attack == "fgsm" else (PGD_STEPS, eps / 255 / 4)
                out[(attack, eps)][group] = _attack(model, cfg, images, target, eps / 255, steps, size).cpu().numpy()
                advance(len(group))
        group.clear()
        images.clear()

    for i, path in enumerate(paths):
        rgb = ensure_min_side(_load(detector, path), cfg.tile_size)[..., ::-1]
        images.append(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).to(device).float() / 255.0)
        group.append(i)
        tiles += len(grid_boxes(rgb.shape[0], rgb.shape[1], cfg.tile_size, cfg.max_tiles))
        if tiles >= detector.batch_size:
            run()
            tiles = 0
    if group:
        run()
    return out


# -- the evaluation ----------------------------------------------------------------------------
@contextmanager
def _bar(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True, disable=not enabled) as bar:

        def task(description: str, total: int) -> Callable[[int], None]:
            tid = bar.add_task(description, total=total)
            return lambda n: bar.advance(tid, n)

        yield task


def _source_rows(cfg: DetectorCfg, y: NDArray[np.int64], sources: list[str], logits: _F64) -> list[SourceRow]:
    probs = _probabilities(cfg, logits)
    names = np.asarray(sources)
    rows = []
    for kind, label in (("fake", 1), ("real", 0)):
        for source in sorted(set(names[y == label].tolist())):
            member = (y == label) & (names == source)
            p = probs[member]
            row = SourceRow(kind, source, int(member.sum()), _flagged(cfg, p), float(p.mean()), _uncertain(cfg, p))
            if label == 1:
                versus = member | (y == 0)
                yv, zv = y[versus], logits[versus]
                row = replace(row, auc=M.auc(yv, zv), average_precision=M.average_precision(yv, zv),
                              tpr_at_1pct_fpr=M.tpr_at_fpr(yv, zv, 0.01))  # fmt: skip
            rows.append(row)
    return rows


def evaluate(
    detector: Detector,
    real_dir: Path,
    fake_dir: Path,
    *,
    robustness: bool = False,
    attacks: Sequence[str] = (),
    out_dir: Path | None = None,
    progress: bool = True,
    epsilons: Sequence[int] = DEFAULT_EPSILONS,
) -> EvalReport:
    """Score both folders and measure; with *out_dir*, write ``report.json``, ``report.md``, ``roc.png``,
    ``reliability.png``. A class with no loadable image raises ``usage.eval.empty_class``.

    >>> evaluate(detector, Path("real"), Path("fake"), out_dir=Path("out")).overall.auc  # doctest: +SKIP
    0.97
    """
    unknown = sorted(set(attacks) - set(ATTACKS))
    if unknown:
        raise UsageError("usage.eval.attack", f"unknown attack(s) {', '.join(unknown)}; known: {', '.join(ATTACKS)}")
    if attacks:
        _ = detector.model  # a runtime without a differentiable torch model raises here, before any work
    started = time.perf_counter()
    files = _class_files(real_dir, 0) + _class_files(fake_dir, 1)
    cfg = detector.cfg
    failures: list[LoadFailure] = []
    with _bar(progress) as task:
        logits = score_files(detector, [f[0] for f in files], failures=failures, advance=task("clean", len(files)))
        loaded = [f for f, z in zip(files, logits, strict=True) if np.isfinite(z)]
        paths, y, sources = [f[0] for f in loaded], np.asarray([f[1] for f in loaded], np.int64), [f[2] for f in loaded]
        logits = logits[np.isfinite(logits)]
        if (y == 0).sum() == 0 or (y == 1).sum() == 0:
            raise UsageError(
                "usage.eval.empty_class",
                f"need loadable images in both {real_dir} and {fake_dir} (found {int((y == 0).sum())} "
                f"real, {int((y == 1).sum())} synthetic, {len(failures)} failed)",
            )
        curves = {"clean": logits}
        for name, transform in (ROBUSTNESS if robustness else {}).items():
            curves[name] = score_files(detector, paths, transform, advance=task(name, len(paths)))
        attacked: dict[tuple[str, int], _F64] = {}
        if attacks:
            advance = task("attacks", len(paths) * len(attacks) * len(epsilons))
            attacked = _attack_logits(detector, paths, y, list(attacks), list(epsilons), advance)
    report = EvalReport(
        model=dict(detector.model_info),
        threshold=cfg.threshold,
        uncertain_band=cfg.uncertain_band,
        real_dir=str(real_dir),
        fake_dir=str(fake_dir),
        overall=Metrics.compute(cfg, y, logits),
        sources=_source_rows(cfg, y, sources, logits),
        robustness={name: Metrics.compute(cfg, y, z) for name, z in curves.items() if name != "clean"},
        attacks=[
            AttackRow(a, e, M.auc(y, z), M.accuracy_at(y, _probabilities(cfg, z), cfg.threshold))
            for (a, e), z in attacked.items()
        ],
        failures=failures,
        seconds=time.perf_counter() - started,
    )
    if out_dir is not None:
        _write(report, out_dir, y, curves, _probabilities(cfg, logits))
    return report


def _write(report: EvalReport, out_dir: Path, y: NDArray[np.int64], curves: dict[str, _F64], probs: _F64) -> None:
    from authenticity.detection.plots import plot_reliability, plot_roc  # matplotlib only when writing

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (out_dir / "report.md").write_text(report.to_markdown())
    plot_roc({name: (y[np.isfinite(z)], z[np.isfinite(z)]) for name, z in curves.items()}, out_dir / "roc.png")
    plot_reliability(y, probs, out_dir / "reliability.png")
