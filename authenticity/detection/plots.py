"""PNG figures for detector evaluation and single results (matplotlib, Agg, no pyplot state).

Each writer builds its own :class:`~matplotlib.figure.Figure`, so it is safe to call from
threads and never opens a window.

>>> plot_roc({"all": ([0, 1, 1], [0.1, 0.8, 0.6])}, Path("roc.png"))       # doctest: +SKIP
>>> plot_tile_heatmap(bgr, detector.score_array(bgr), Path("tiles.png"))   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: servers and CI have no display

import cv2
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from numpy.typing import ArrayLike, NDArray

from authenticity.detection.config import DetectorCfg
from authenticity.detection.metrics import auc, expected_calibration_error, reliability_bins, roc_curve
from authenticity.detection.scoring import DetectionResult
from authenticity.errors import UsageError

__all__ = ["plot_reliability", "plot_roc", "plot_tile_heatmap", "plot_timeline"]


def _save(fig: Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=110, bbox_inches="tight")
    return out


def plot_roc(curves: Mapping[str, tuple[ArrayLike, ArrayLike]], out: Path) -> Path:
    """One ROC curve per ``name → (labels, scores)``, AUC in the legend, log-free axes.

    >>> plot_roc({"clean": (y, logits), "jpeg75": (y, jpeg_logits)}, Path("roc.png"))  # doctest: +SKIP
    """
    if not curves:
        raise UsageError("detection.plot.empty", "plot_roc needs at least one curve")
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    for name, (y, s) in curves.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, drawstyle="steps-post", label=f"{name} (AUC {auc(y, s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="false-positive rate (real called synthetic)",
        ylabel="true-positive rate (synthetic caught)",
        title="ROC",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, out)


def plot_reliability(y: ArrayLike, p: ArrayLike, out: Path, *, bins: int = 15) -> Path:
    """Reliability diagram: observed fraction synthetic vs mean predicted probability per bin.

    >>> plot_reliability([0, 1, 1], [0.2, 0.7, 0.9], Path("reliability.png"))  # doctest: +SKIP
    """
    table = reliability_bins(y, p, bins)
    fig = Figure(figsize=(5.5, 6))
    ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    full = [b for b in table if b.count]
    centres = [(b.low + b.high) / 2 for b in table]
    ax.bar(
        [(b.low + b.high) / 2 for b in full],
        [b.fraction_synthetic for b in full],
        width=1 / bins * 0.9,
        alpha=0.6,
        edgecolor="black",
        label="observed",
    )
    ax.plot([b.mean_probability for b in full], [b.fraction_synthetic for b in full], "o-", label="per bin")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    ece = expected_calibration_error(y, p, bins)
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="fraction synthetic", title=f"Reliability (ECE {ece:.3f})")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    hist.bar(centres, [b.count for b in table], width=1 / bins * 0.9, color="grey")
    hist.set(xlabel="predicted probability of synthesis", ylabel="count")
    return _save(fig, out)


def _tile_grid(result: DetectionResult, shape: tuple[int, int]) -> NDArray[np.float64]:
    """Per-pixel mean of the scores of the tiles covering it (NaN where no tile lies)."""
    total = np.zeros(shape)
    count = np.zeros(shape)
    for tile in result.tiles:
        total[tile.y : tile.y + tile.size, tile.x : tile.x + tile.size] += tile.score
        count[tile.y : tile.y + tile.size, tile.x : tile.x + tile.size] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _title(result: DetectionResult) -> str:
    label = result.label.value if result.label is not None else "?"
    score = "?" if result.score is None else f"{result.score:.3f}"
    return f"{Path(result.path).name}: P(synthetic) = {score} — {label}"


def plot_tile_heatmap(bgr: NDArray[np.uint8], result: DetectionResult, out: Path) -> Path:
    """Tile scores over the image as it was scored (upscaled to ``result.size`` when small).

    >>> result = detector.score_array(bgr)                      # doctest: +SKIP
    >>> plot_tile_heatmap(bgr, result, Path("heatmap.png"))     # doctest: +SKIP
    """
    if result.score is None or not result.tiles:
        raise UsageError("detection.plot.no_tiles", f"{result.path}: result has no tile scores to plot")
    height, width = result.size or bgr.shape[:2]
    image = bgr
    if image.shape[:2] != (height, width):
        image = np.asarray(
            cv2.resize(bgr, (width, height), interpolation=cv2.INTER_LINEAR), dtype=np.uint8
        )  # as ensure_min_side did
    fig = Figure(figsize=(7, 7 * height / max(width, 1) + 0.8))
    ax = fig.add_subplot()
    ax.imshow(image[..., ::-1])
    heat = ax.imshow(
        _tile_grid(result, (height, width)), cmap="magma", vmin=0.0, vmax=1.0, alpha=0.45, interpolation="nearest"
    )
    for tile in result.tiles:
        ax.add_patch(Rectangle((tile.x, tile.y), tile.size, tile.size, fill=False, edgecolor="white", linewidth=0.6))
        ax.text(
            tile.x + 3,
            tile.y + 3,
            f"{tile.score:.2f}",
            color="white",
            fontsize=7,
            va="top",
            bbox={"facecolor": "black", "alpha": 0.4, "pad": 1, "linewidth": 0},
        )
    fig.colorbar(heat, ax=ax, fraction=0.046, pad=0.02, label="tile P(synthetic)")
    ax.set_title(_title(result), fontsize="medium")
    ax.set_axis_off()
    return _save(fig, out)


def plot_timeline(result: DetectionResult, out: Path, *, cfg: DetectorCfg | None = None) -> Path:
    """Per-frame P(synthetic) over time, with the threshold and the uncertain band of *cfg*.

    Pass the detector's cfg (``detector.cfg``) so the lines are the ones used to decide.

    >>> plot_timeline(detector.score_video(Path("clip.mp4")), Path("timeline.png"), cfg=detector.cfg)  # doctest: +SKIP
    """
    if not result.frames:
        raise UsageError("detection.plot.no_frames", f"{result.path}: result has no frame scores to plot")
    cfg = cfg or DetectorCfg()
    times = [f.time_s for f in result.frames]
    scores = [f.score for f in result.frames]
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    low, high = cfg.uncertain_band
    ax.axhspan(low, high, color="gold", alpha=0.25, label=f"uncertain {low:.2f}–{high:.2f}")
    ax.axhline(cfg.threshold, color="crimson", linestyle="--", linewidth=1, label=f"threshold {cfg.threshold:.2f}")
    ax.plot(times, scores, "o-", color="navy", markersize=4, label="frame")
    faces = [f for f in result.frames if f.faces]
    if faces:
        ax.scatter([f.time_s for f in faces], [f.score for f in faces], s=40, facecolors="none", edgecolors="green",
                   label="face(s) found")  # fmt: skip
    ax.set(ylim=(0, 1), xlabel="time (s)", ylabel="P(synthetic)")
    ax.set_title(_title(result), fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _save(fig, out)
