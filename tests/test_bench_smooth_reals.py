"""bench/smooth_reals.py: smoothed copies of real crops, added as reals to a built workdir."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

_PATH = Path(__file__).resolve().parent.parent / "bench" / "smooth_reals.py"
_spec = importlib.util.spec_from_file_location("bench_smooth_reals", _PATH)
assert _spec is not None and _spec.loader is not None
smooth_reals = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(smooth_reals)


def _detail(bgr: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32), cv2.CV_32F)).mean())


def _noisy(shape: tuple[int, int], seed: int = 0, sigma: float = 10.0) -> np.ndarray:
    """Grain of a noisy sensor (sigma 10: what a phone's denoiser is for)."""
    rng = np.random.default_rng(seed)
    return np.clip(128 + rng.normal(0, sigma, (*shape, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind", smooth_reals.KINDS)
def test_every_kind_keeps_the_shape_and_removes_fine_detail(kind: str) -> None:
    image = _noisy((90, 70))
    out = smooth_reals.smooth(image, kind, np.random.default_rng(0))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert _detail(out) < 0.5 * _detail(image)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown smoothing 'sharpen': use blur, zoom, denoise"):
        smooth_reals.smooth(_noisy((8, 8)), "sharpen", np.random.default_rng(0))


def _dataset(root: Path) -> Path:
    for split, n in (("train", 3), ("test", 2)):
        for source in ("photo", "face"):
            folder = root / split / "real" / source
            folder.mkdir(parents=True)
            for k in range(n):
                assert cv2.imwrite(str(folder / f"set5__{source}{k}.png"), _noisy((300, 280), k))
    return root


def test_copies_go_to_the_chosen_splits_only_cropped_to_the_side_and_once(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "dataset")
    assert smooth_reals.add_smoothed(dataset, count=8, side=256) == {"train": 8}
    written = sorted((dataset / "train" / "real" / "smoothed").glob("*.png"))
    assert len(written) == 8 and not (dataset / "test" / "real" / "smoothed").exists()
    assert {cv2.imread(str(p)).shape for p in written} == {(256, 256, 3)}
    assert {p.stem.split("__")[1][:-1].rstrip("0123456789") for p in written} <= {"photo", "face"}
    assert json.loads((dataset / "smoothed.json").read_text())["counts"] == {"train": 8}
    with pytest.raises(SystemExit, match=r"already has real/smoothed images$"):
        smooth_reals.add_smoothed(dataset, count=1)
    assert len(list((dataset / "train" / "real" / "smoothed").glob("*.png"))) == 8  # nothing added by the refusal


def test_a_dataset_without_real_photos_or_faces_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no real photos or faces in split\(s\) train$"):
        smooth_reals.add_smoothed(tmp_path, count=1)
    assert not (tmp_path / "smoothed.json").exists()
