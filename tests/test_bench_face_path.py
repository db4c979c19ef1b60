"""bench/face_path.py: the same stills scored as images and as video frames (frame + faces)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from authenticity.detection.preprocess import image_tiles
from authenticity.detection.scoring import Detector
from authenticity.detection.video import FrameSample, detect_faces

from .conftest import SHARED

_PATH = Path(__file__).resolve().parent.parent / "bench" / "face_path.py"
_spec = importlib.util.spec_from_file_location("bench_face_path", _PATH)
assert _spec is not None and _spec.loader is not None
face_path = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(face_path)

FACE = SHARED / "data" / "photos" / "real_faces" / "face_03.png"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load()


def _noise(folder: Path, n: int, seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n):
        path = folder / f"{k}.png"
        assert cv2.imwrite(str(path), rng.integers(0, 256, (96, 80, 3), dtype=np.uint8))
        paths.append(path)
    return paths


@pytest.mark.skipif(not FACE.is_file(), reason=f"no face photo at {FACE} (../shared absent)")
def test_a_still_with_a_face_scores_as_its_most_suspicious_part_on_the_frame_path(detector: Detector) -> None:
    image, frame, faces = face_path.both_logits(detector, FACE)
    bgr = cv2.imread(str(FACE))
    crops = detect_faces(bgr)
    assert faces == len(crops) == 1
    face = detector.aggregate(detector.tile_logits(image_tiles(crops[0], detector.cfg)[0]).tolist())
    whole = detector.aggregate(detector.tile_logits(image_tiles(bgr, detector.cfg)[0]).tolist())
    assert image == pytest.approx(whole)
    assert frame == pytest.approx(max(whole, face))
    assert detector.face_logits(FrameSample(0, 0.0, bgr, crops)) == pytest.approx([face])
    assert frame == pytest.approx(detector.frame_logit(FrameSample(0, 0.0, bgr, crops)))  # the bench is the video path
    sample = FrameSample(0, 0.0, bgr, crops)
    assert detector.frame_logit(sample, whole=whole + 100.0) == whole + 100.0  # a given whole-frame logit is used
    assert detector.frame_logit(sample, whole=-1e6) == pytest.approx(face)  # ... and the face still counts


def test_without_faces_both_paths_agree_and_the_report_counts_each_class(tmp_path: Path, detector: Detector) -> None:
    real = _noise(tmp_path / "real", 3, 0)
    fake = _noise(tmp_path / "fake", 2, 1)
    report = face_path.measure(detector, real, fake)
    for name, n in (("real", 3), ("fake", 2)):
        row = report[name]
        assert (row["n"], row["with_faces"]) == (n, 0)
        assert row["flagged_image_path"] == row["flagged_frame_path"]
        assert row["with_faces_flagged_image_path"] is None and row["with_faces_flagged_frame_path"] is None
    assert report["auc_image_path"] == report["auc_frame_path"]
    assert "auc_image_path" not in face_path.measure(detector, real, [])


def test_a_folder_without_images_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    assert face_path.main(["--real", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'empty'}: no images\n"
    _noise(tmp_path / "real", 1, 0)
    assert face_path.main(["--real", str(tmp_path / "real"), "--fake", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing'}: no images\n"


def test_missing_weights_are_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _noise(tmp_path / "real", 1, 0)
    missing = tmp_path / "nope.safetensors"
    assert face_path.main(["--real", str(tmp_path / "real"), "--weights", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: detector.weights.not_found: {missing}: detector weights not found\n"


def test_image_logit_is_the_logit_that_score_array_calibrates(tmp_path: Path, detector: Detector) -> None:
    bgr = cv2.imread(str(_noise(tmp_path, 1, 3)[0]))
    tiles, _ = image_tiles(bgr, detector.cfg)
    z = detector.image_logit(bgr)
    assert z == pytest.approx(float(np.mean(detector.tile_logits(tiles))))  # mean_logit over the tiles
    assert detector.calibrate(z) == pytest.approx(detector.score_array(bgr).score)
