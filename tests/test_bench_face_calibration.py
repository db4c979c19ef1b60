"""bench/face_calibration.py: a calibration of its own for the video path's face crops, four frame rules."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from authenticity.detection.preprocess import image_tiles
from authenticity.detection.scoring import Detector
from authenticity.detection.video import FrameSample, detect_faces
from bench import face_calibration

from .conftest import SHARED

Scored = face_calibration.Scored

FACE = SHARED / "data" / "photos" / "real_faces" / "face_03.png"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load()


def _crops(n: int, seed: int) -> list[Scored]:
    """Face crops and blends whose face logits follow a known calibration: P(blend) = sigmoid((z + 1) / 4)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 6.0, n)
    blend = rng.random(n) < 1 / (1 + np.exp(-(z + 1.0) / 4.0))
    return [Scored("fake/blend" if b else "real/face", 0.0, (float(v), float(v) - 5.0))
            for v, b in zip(z, blend, strict=True)]  # fmt: skip


def test_the_face_calibration_is_fitted_on_the_most_suspicious_face_of_crops_and_blends_only() -> None:
    files = _crops(20000, 0)
    files += [Scored("real/photo", 0.0, (50.0,))] * 50  # whole photos do not enter the fit
    temperature, bias, n = face_calibration.fit_face_calibration(files)
    assert n == 20000
    assert (round(temperature, 1), round(bias, 1)) == (4.0, 1.0)


def test_a_split_without_blends_or_without_faces_cannot_be_fitted() -> None:
    reals = [Scored("real/face", 0.0, (1.0,)), Scored("real/face", 0.0, (2.0,))]
    message = "the validation split needs face crops and blends with a face found in them"
    with pytest.raises(ValueError, match=f"^{message}$"):
        face_calibration.fit_face_calibration(reals)
    with pytest.raises(ValueError, match=f"^{message}$"):  # a blend whose face was not found does not count
        face_calibration.fit_face_calibration([*reals, Scored("fake/blend", 0.0, ())])


def test_each_rule_combines_the_frame_and_its_most_suspicious_face() -> None:
    def image_cal(z: float) -> float:
        return (z + 1.0) / 2.0

    def face_cal(z: float) -> float:
        return (z - 1.0) / 2.0

    framed = Scored("real/photo", 3.0, (-1.0, 9.0))  # whole 2.0; face 5.0 (image cal) or 4.0 (face cal)
    expected = {"image": 2.0, "max": 5.0, "max_face_cal": 4.0, "add_face_llr": 6.0}
    assert {r: face_calibration.rule_logit(r, image_cal, face_cal, framed) for r in face_calibration.RULES} == expected
    framed = Scored("real/photo", 3.0, (-1.0, 1.0))  # a face that looks real: 1.0 (image cal), 0.0 (face cal)
    expected = {"image": 2.0, "max": 2.0, "max_face_cal": 2.0, "add_face_llr": 2.0}
    assert {r: face_calibration.rule_logit(r, image_cal, face_cal, framed) for r in face_calibration.RULES} == expected
    faceless = Scored("real/photo", 3.0, ())
    assert {face_calibration.rule_logit(r, image_cal, face_cal, faceless) for r in face_calibration.RULES} == {2.0}


def test_the_report_counts_labels_per_rule_and_group(detector: Detector) -> None:
    val = _crops(400, 1)
    cfg = detector.cfg
    flagged_whole = math.log(0.9 / 0.1) * cfg.temperature - cfg.logit_bias  # calibrated P = 0.9: synthetic
    clear_whole = math.log(0.1 / 0.9) * cfg.temperature - cfg.logit_bias  # P = 0.1: authentic-looking
    test = [Scored("real/face", flagged_whole, ()), Scored("real/face", clear_whole, ()),
            Scored("real/face", clear_whole, ()), Scored("fake/blend", flagged_whole, ()),
            Scored("real/photo", clear_whole, (flagged_whole,))]  # fmt: skip
    # the face calibration puts that face at logit 0 (P = 0.5, uncertain)
    out = face_calibration.report(detector, {"val": val, "test": test}, (1.0, -flagged_whole, 400))
    assert out["face_calibration"] == {"temperature": 1.0, "bias": round(-flagged_whole, 3), "n": 400}
    assert out["val"]["image"]["real face crops"]["n"] == sum(f.group == "real/face" for f in val)
    rules = out["test"]
    assert rules["image"]["real face crops"] == {"n": 3, "synthetic": round(1 / 3, 3), "uncertain": 0.0}
    assert rules["image"]["all reals"]["n"] == 4 and rules["image"]["blends"]["synthetic"] == 1.0
    # the one photo with a face is flagged by the max rule (its face at P = 0.9), not by the image path
    assert rules["image"]["real photos with a face"]["synthetic"] == 0.0
    assert rules["max"]["real photos with a face"]["synthetic"] == 1.0
    # its own calibration makes that face uncertain (max), or adds no evidence (log-likelihood ratio 0)
    assert rules["max_face_cal"]["real photos with a face"] == {"n": 1, "synthetic": 0.0, "uncertain": 1.0}
    assert rules["add_face_llr"]["real photos with a face"] == {"n": 1, "synthetic": 0.0, "uncertain": 0.0}
    assert rules["image"]["auc_blends_vs_all_reals"] == pytest.approx(7 / 8, abs=1e-3)  # above 3 of 4 reals, 1 tie
    assert rules["max"]["auc_blends_vs_all_reals"] == pytest.approx(3 / 4, abs=1e-3)  # the photo ties the blend too
    assert rules["image"]["auc_blends_vs_face_crops"] == pytest.approx(5 / 6, abs=1e-3)


@pytest.mark.skipif(not FACE.is_file(), reason=f"no face photo at {FACE} (../shared absent)")
def test_a_split_is_scored_whole_and_per_face_as_the_video_path_does(tmp_path: Path, detector: Detector) -> None:
    split = tmp_path / "val"
    for group in ("real/face", "fake/blend", "real/photo", "fake/gan"):
        (split / group).mkdir(parents=True)
    shutil.copy(FACE, split / "real" / "face" / "face_03__0.png")
    shutil.copy(FACE, split / "fake" / "blend" / "face_03__0.png")
    assert cv2.imwrite(str(split / "fake" / "gan" / "gan__0.png"), np.zeros((64, 64, 3), np.uint8))  # not scored
    scored = face_calibration.score_split(detector, split)
    bgr = cv2.imread(str(FACE))
    whole = detector.aggregate(detector.tile_logits(image_tiles(bgr, detector.cfg)[0]).tolist())
    faces = tuple(detector.face_logits(FrameSample(0, 0.0, bgr, detect_faces(bgr))))
    assert len(faces) == 1
    assert [s.group for s in scored] == ["real/face", "fake/blend"]
    assert scored[0].whole == pytest.approx(whole) and scored[0].faces == pytest.approx(faces)


def test_a_missing_split_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "val" / "real").mkdir(parents=True)
    assert face_calibration.main(["--dataset", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'test' / 'real'}: missing (a `detector train` dataset)\n"


def test_a_validation_split_that_cannot_be_fitted_is_refused_before_the_test_split_is_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for split in ("val", "test"):
        (tmp_path / split / "real" / "face").mkdir(parents=True)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert cv2.imwrite(str(tmp_path / "val" / "real" / "face" / "p__0.png"), noise)  # no blend, no face found
    (tmp_path / "test" / "real" / "face" / "p__0.png").write_bytes(b"not an image")  # never read
    assert face_calibration.main(["--dataset", str(tmp_path)]) == 2
    message = "the validation split needs face crops and blends with a face found in them"
    assert capsys.readouterr().err == f"error: {tmp_path / 'val'}: {message}\n"
