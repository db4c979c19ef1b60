"""Benchmark of the detection channel: images per second on 2 CPU cores, three runtimes side by side.

For a 256² and a 1024² image (4 and 16 tiles of 128 px with the default cfg) it times
``score_array`` — tiling, normalisation, the network, aggregation, calibration — with:

* **PyTorch eager**: :class:`Detector` on the shipped architecture (``tf_efficientnet_lite0``),
  the baseline every ratio refers to;
* **ONNX Runtime**: :class:`OnnxDetector` on the same weights, exported by ``export_onnx``;
* **ResNet-50**: CNNDetection's architecture (timm ``resnet50``, random init, one logit) in a
  :class:`Detector`, scoring the same tiles at the same input size;
* **--undo-enlargement**: the eager detector with the enlargement estimate on (the test
  images are native, so nothing is shrunk: the row is the estimate's own cost);
* **one member**: where the detector is an ensemble (``DetectorCfg.members``, the shipped
  cfg's by default), its first network alone, so the ensemble's cost is a ratio of the same run.

Cases are interleaved round by round (CONVENTIONS rule 13), so load from other processes
hits all three alike. Threads: ``torch.set_num_threads(2)`` and 2 ONNX Runtime intra-op threads.

    python bench/detector.py                       # about two minutes on 2 cores
    python bench/detector.py --quick               # smoke run
    python bench/detector.py --markdown > out.md   # markdown on stdout, tables on stderr
    python bench/detector.py --weights data/detector.safetensors   # a trained model instead
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import cv2
import numpy as np
import onnxruntime
import timm
import torch
from numpy.typing import NDArray
from rich.console import Console

from authenticity.detection.config import DetectorCfg, load_cfg
from authenticity.detection.model import (
    DetectorEnsemble,
    DetectorNet,
    build_model,
    imagenet_lite0_state_dict,
    save_detector,
)
from authenticity.detection.onnx_runtime import OnnxDetector, export_onnx
from authenticity.detection.preprocess import image_tiles
from authenticity.detection.scoring import Detector, default_weights_path

if __package__ in (None, ""):  # run as `python bench/detector.py`: the checkout root holds `bench`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import (
    Result,
    err,
    interleaved,
    machine_info,
    median_p95,
    ms,
    print_rich,
    progress,
    ratio,
    timed,
    to_markdown,
)

THREADS = 2
SIZES = (256, 1024)


def make_weights(folder: Path, members: int = 1) -> Path:
    """The shipped architecture (``members`` networks, as the shipped cfg says) with ImageNet
    backbones, each member's nudged by seeded noise so that no two are equal, and seeded
    random heads (speed does not care about the values)."""
    torch.manual_seed(0)
    cfg = DetectorCfg(arch="tf_efficientnet_lite0", members=members)
    nets = [build_model(cfg) for _ in range(members)]
    for k, net in enumerate(nets):
        net.backbone.load_state_dict(imagenet_lite0_state_dict())
        if k:  # members that share a trunk bit for bit would let ONNX Runtime compute it once: nudge each
            with torch.no_grad():
                for param in net.backbone.parameters():
                    param.add_(torch.randn_like(param) * 1e-2 * (float(param.std()) if param.numel() > 1 else 1.0))
    path = folder / "detector.safetensors"
    save_detector(nets[0] if members == 1 else DetectorEnsemble(nets), cfg, path)
    return path


def one_member(detector: Detector) -> Detector | None:
    """An ensemble's first member alone, behind the same tiling (None for a single network):
    what the ensemble costs over one network, measured in the same run."""
    if not isinstance(detector.model, DetectorEnsemble):
        return None
    member = detector.model.members[0]
    return Detector(cast(DetectorNet, member), detector.cfg.model_copy(update={"members": 1, "weights_sha256": ""}))


def resnet50_detector(cfg: DetectorCfg) -> Detector:
    """CNNDetection's ResNet-50 (random init, one logit) behind the same tiling and aggregation.

    ``DetectorNet("resnet50")`` is timm's resnet50 trunk plus a 2048→1 linear layer (dropout is
    the identity in eval mode): the same network as ``timm.create_model("resnet50", num_classes=1)``.
    """
    torch.manual_seed(0)
    return Detector(DetectorNet("resnet50"), cfg.model_copy(update={"arch": "resnet50", "weights_sha256": ""}))


def test_image(size: int, seed: int) -> NDArray[np.uint8]:
    """A photo-like square image: smooth colour field, shapes and sensor-like noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (6, 6, 3)).astype(np.float32)
    img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    for _ in range(8):
        centre = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        cv2.circle(
            img, centre, int(rng.integers(size // 20, size // 4)), [float(c) for c in rng.uniform(0, 255, 3)], -1
        )
    noisy = img + rng.normal(0.0, 5.0, size=img.shape)
    return np.asarray(np.clip(noisy, 0, 255), dtype=np.uint8)


def _timer(detector: Detector, bgr: NDArray[np.uint8], advance: Callable[[int], None] | None) -> Callable[[], float]:
    def case() -> float:
        seconds = timed(lambda: detector.score_array(bgr))[1]
        if advance is not None:  # the last case of a round moves the bar
            advance(1)
        return seconds

    return case


def bench_size(size: int, runtimes: list[tuple[str, Detector]], rounds: int, budget_s: float) -> list[list[str]]:
    bgr = test_image(size, seed=size)
    tiles = len(image_tiles(bgr, runtimes[0][1].cfg)[1])
    for _, detector in runtimes:  # warm-up: allocator, oneDNN primitives, ORT arenas
        for _ in range(2):
            detector.score_array(bgr)
    with progress(f"{size}x{size} ({tiles} tiles): {len(runtimes)} runtimes interleaved", rounds) as advance:
        cases = [_timer(detector, bgr, advance if i == len(runtimes) - 1 else None)
                 for i, (_, detector) in enumerate(runtimes)]  # fmt: skip
        samples = interleaved(cases, count=rounds, budget_s=budget_s)
    base = median_p95(samples[0])[0]
    rows = []
    for (name, _), times in zip(runtimes, samples, strict=True):
        median, p95 = median_p95(times)
        rows.append([name, f"{size}²", str(tiles), str(len(times)), ms(median), ms(p95), f"{1 / median:.2f}",
                     ratio(base / median)])  # fmt: skip
    return rows


def parity(torch_det: Detector, onnx_det: Detector) -> float:
    """Largest |P_onnx − P_torch| over the benchmark images."""
    worst = 0.0
    for size in SIZES:
        bgr = test_image(size, seed=size)
        a, b = torch_det.score_array(bgr), onnx_det.score_array(bgr)
        for ta, tb in zip(a.tiles, b.tiles, strict=True):
            worst = max(worst, abs(ta.score - tb.score))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few rounds, for a smoke run")
    parser.add_argument("--markdown", action="store_true", help="markdown on stdout (the tables go to stderr)")
    parser.add_argument("--weights", type=Path, help="a .safetensors detector (default: ImageNet-initialised Lite0)")
    parser.add_argument("--members", type=int, help="networks in the default weights (default: the shipped cfg's)")
    args = parser.parse_args(argv)
    if args.weights is not None and args.members is not None:
        print("error: --members sets the default weights' networks; --weights brings its own", file=sys.stderr)
        return 2
    members = args.members
    if members is None and args.weights is None:
        members = load_cfg(default_weights_path().with_suffix(".json")).members
    if members is not None and members < 1:
        print(f"error: --members {members}: use at least 1", file=sys.stderr)
        return 2
    started, load = time.perf_counter(), os.getloadavg()[0]
    torch.set_num_threads(THREADS)
    rounds, budget = (5, 5.0) if args.quick else (40, 45.0)
    with tempfile.TemporaryDirectory(prefix="authenticity-bench-") as tmp:
        weights = args.weights or make_weights(Path(tmp), members or 1)
        eager = Detector.load(weights)
        onnx_path = export_onnx(weights, Path(tmp) / "detector.onnx")
        onnx = OnnxDetector.load(onnx_path, threads=THREADS)
        resnet = resnet50_detector(eager.cfg)
        runtimes: list[tuple[str, Detector]] = [("PyTorch eager", eager), ("ONNX Runtime", onnx),
                                                ("ResNet-50, PyTorch eager", resnet)]  # fmt: skip
        runtimes.append(("PyTorch eager, --undo-enlargement", Detector(eager.model, eager.cfg, undo_enlargement=True)))
        single = one_member(eager)
        if single is not None:
            runtimes.append(("one member of the ensemble, PyTorch eager", single))
        rows = [row for size in SIZES for row in bench_size(size, runtimes, rounds, budget)]
        worst = parity(eager, onnx)
        onnx_mb = onnx_path.stat().st_size / 1e6
    cfg = eager.cfg
    result = Result(
        title=f"Detector ({cfg.arch}): score_array per image on {THREADS} threads, baseline PyTorch eager",
        columns=["runtime", "image", "tiles", "samples", "median ms", "p95 ms", "images/s", "speed vs base"],
        rows=rows,
        notes=[
            f"Tiles of {cfg.tile_size} px at native resolution, at most {cfg.max_tiles} per image, one batch per "
            "image; time covers tiling, normalisation, the network, aggregation and calibration (not decoding).",
            "speed vs base = baseline median / this median (above 1× is faster); samples are interleaved rounds.",
            f"ONNX model {onnx_mb:.1f} MB (opset 17, fp32); largest tile |P_onnx − P_torch| = {worst:.1e}.",
            "ResNet-50: timm resnet50 trunk with a 1-logit linear head, random init; speed only.",
            "--undo-enlargement: the same network, plus the enlargement estimate (resampling.py) on each image; "
            "the test images are not enlarged, so this is the estimate's cost alone.",
            *(
                [f"An ensemble of {cfg.members} networks (mean logit); 'one member' scores the first alone."]
                if cfg.members > 1
                else []
            ),
        ],
    )
    versions = [f"torch {torch.__version__}", f"onnxruntime {onnxruntime.__version__}", f"timm {timm.__version__}"]
    extra = [("threads", f"torch {THREADS}, onnxruntime {THREADS} intra-op"), ("libraries", ", ".join(versions))]
    info = [*machine_info(extra, load), ("wall time", f"{time.perf_counter() - started:.0f} s")]
    if args.markdown:
        print_rich([result], info, err)
        print(to_markdown([result], info, " ".join(["python bench/detector.py", *sys.argv[1:]])))
    else:
        print_rich([result], info, Console())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
