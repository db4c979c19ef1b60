"""``authenticity detect`` and ``authenticity detector train|eval|export``.

Imports of torch and the detector happen inside the commands, so the rest of the CLI
(and ``verify``) never loads them.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path

import typer
from rich.table import Table

from authenticity.cli._common import err_console, expand_paths, out_console, progress_bar, settings
from authenticity.cli._errors import EXIT_OK, EXIT_USAGE, guarded
from authenticity.errors import UsageError

app = typer.Typer(help="The detector: train, evaluate, export.", no_args_is_help=True)


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    JSONL = "jsonl"


class Runtime(enum.StrEnum):
    TORCH = "torch"
    ONNX = "onnx"


def _load(weights: Path | None, runtime: Runtime):  # type: ignore[no-untyped-def]
    if runtime is Runtime.ONNX:
        from authenticity.detection.onnx_runtime import OnnxDetector

        return OnnxDetector.load(weights)
    from authenticity.detection.scoring import Detector

    return Detector.load(weights, max_pixels=settings().max_pixels)


@guarded
def detect(
    paths: list[Path] = typer.Argument(..., help="Images, videos or folders."),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", help="table, or jsonl: one JSON per file."),
    plot: Path | None = typer.Option(None, "--plot", help="Write heatmap / timeline PNGs into this folder."),
    weights: Path | None = typer.Option(None, "--weights", help="Detector weights (default: the shipped model)."),
    runtime: Runtime = typer.Option(Runtime.TORCH, "--runtime", help="torch, or onnx (needs an exported model)."),
    fps: float = typer.Option(1.0, "--fps", help="Video frames sampled per second."),
    max_frames: int = typer.Option(32, "--max-frames", help="At most this many frames per video."),
) -> None:
    """Score media for signs of synthesis: a calibrated probability, a label and evidence."""
    files = list(expand_paths(paths))
    if not files:
        raise UsageError("usage.no_files", "no files to score")
    if fps <= 0 or max_frames <= 0:
        raise UsageError("usage.video.sampling", "--fps and --max-frames must be positive")
    detector = _load(weights, runtime)
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
                _write_plot(result, plot, detector)
            if output is OutputFormat.JSONL:
                print(json.dumps(result.to_dict()), flush=True)
            elif result.error is not None:
                table.add_row(result.path, "-", "[red]error[/]", f"{result.error['code']}: {result.error['message']}")
            else:
                detail = f"{len(result.frames)} frames" if result.frames is not None else f"{len(result.tiles)} tiles"
                table.add_row(result.path, f"{result.score:.3f}", str(result.label), detail)
    if output is OutputFormat.TABLE:
        out_console.print(table)
        err_console.print(f"model {detector.cfg.name} ({detector.cfg.weights_sha256[:12]}…), "
                          f"{len(files) - failed} scored, {failed} failed")  # fmt: skip
    raise typer.Exit(EXIT_USAGE if failed else EXIT_OK)


def _write_plot(result, folder: Path, detector) -> None:  # type: ignore[no-untyped-def]
    from authenticity.detection import plots
    from authenticity.media import load_image_bgr

    stem = Path(result.path).name
    if result.frames is not None:
        plots.plot_timeline(result, folder / f"{stem}.timeline.png")
    else:
        bgr = load_image_bgr(Path(result.path), max_pixels=detector.max_pixels)
        plots.plot_tile_heatmap(bgr, result, folder / f"{stem}.heatmap.png")
