"""Spotting enlarged images (``detection.resampling``) and scoring them shrunk back (``undo_enlargement``)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from typer.testing import CliRunner

from authenticity.api.web.figures import scored_extent, tile_heatmap_png
from authenticity.api.web.views import detector_enlargement
from authenticity.cli.app import app
from authenticity.detection.config import DetectorCfg
from authenticity.detection.preprocess import scored_size, scoring_view
from authenticity.detection.resampling import (
    MIN_SIDE,
    enlargement_factor,
    periodic_peak,
    phase_asymmetry,
    shrink_back,
)
from authenticity.detection.scoring import Detector
from authenticity.verify import Detection

from .conftest import SHARED

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CUBIC, LINEAR, LANCZOS = cv2.INTER_CUBIC, cv2.INTER_LINEAR, cv2.INTER_LANCZOS4


def natural(height: int = 300, width: int = 400, seed: int = 0) -> NDArray[np.uint8]:
    """A colour picture with a photo's 1/f amplitude spectrum (detail at every scale, up to Nyquist)."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :]
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1.0
    planes = [np.fft.irfft2((rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)) / radius,
                            s=(height, width)) for _ in range(3)]  # fmt: skip
    image = np.stack(planes, -1)
    image = (image - image.min()) / (image.max() - image.min()) * 255.0
    return np.round(image).astype(np.uint8)


def resized(bgr: NDArray[np.uint8], factor: float, interpolation: int = CUBIC) -> NDArray[np.uint8]:
    h, w = bgr.shape[:2]
    return np.asarray(cv2.resize(bgr, (round(w * factor), round(h * factor)), interpolation=interpolation), np.uint8)


def jpeg(bgr: NDArray[np.uint8], quality: int) -> NDArray[np.uint8]:
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR), np.uint8)


# -- the estimate --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_native_picture_is_not_called_enlarged(seed: int) -> None:
    assert enlargement_factor(natural(seed=seed)) == 1.0


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("blur sigma 1", lambda im: cv2.GaussianBlur(im, (0, 0), 1.0)),
        ("JPEG 75", lambda im: jpeg(im, 75)),
        ("0.7x bilinear", lambda im: resized(im, 0.7, LINEAR)),
        ("0.5x area", lambda im: resized(im, 0.5, cv2.INTER_AREA)),
        ("grey", lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)),
    ],
)
def test_blur_jpeg_shrinking_and_grey_are_not_enlargements(name: str, change) -> None:  # type: ignore[no-untyped-def]
    assert enlargement_factor(change(natural(seed=4))) == 1.0, name


@pytest.mark.parametrize(
    ("factor", "interpolation", "expected"),
    [
        (2.0, CUBIC, 2.0),
        (2.0, LINEAR, 2.0),
        (2.0, LANCZOS, 2.0),
        (1.5, LINEAR, 1.5),
        (3.0, CUBIC, 3.0),
        (4.0, CUBIC, 4.0),
    ],
)
def test_an_enlargement_is_found_with_its_factor(factor: float, interpolation: int, expected: float) -> None:
    assert enlargement_factor(resized(natural(seed=5), factor, interpolation)) == pytest.approx(expected, abs=0.02)


def test_a_2x_enlargement_survives_jpeg_90() -> None:
    assert enlargement_factor(jpeg(resized(natural(seed=6), 2.0), 90)) == pytest.approx(2.0)


def test_the_traces_it_reads() -> None:
    native, doubled, half_again = natural(seed=7), resized(natural(seed=7), 2.0), resized(natural(seed=7), 1.5, LINEAR)
    grey = [np.asarray(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), np.float32) for im in (native, doubled, half_again)]
    assert phase_asymmetry(grey[0]) > 0.95 and phase_asymmetry(grey[1]) < 0.8  # which pixel pairing re-enlarges better
    frequency, strength = periodic_peak(grey[2])  # 1.5x: curvature repeats every 3 pixels (folded to 1/3 cycle)
    assert frequency == pytest.approx(1 / 3, abs=0.01) and strength > 10


def test_an_image_below_the_analysed_size_is_left_alone() -> None:
    small = resized(natural(40, 40, seed=8), 1.0)
    assert min(small.shape[:2]) < MIN_SIDE
    assert enlargement_factor(small) == 1.0
    assert enlargement_factor(np.full((200, 200, 3), 77, np.uint8)) == 1.0  # flat: no trace either way


def test_shrink_back() -> None:
    image = natural(seed=9)
    assert shrink_back(image, 1.0) is image
    assert shrink_back(image, 2.0).shape == (150, 200, 3)


@pytest.mark.skipif(not (SHARED / "data" / "photos").is_dir(), reason="../shared/data/photos absent (dev/CI machines)")
def test_real_photos_clean_and_doubled() -> None:
    """Every 10th photo of ../shared: at most one called enlarged as it is or after JPEG 75; each found doubled."""
    paths = sorted(p for p in (SHARED / "data" / "photos").rglob("*") if p.is_file())[::10]
    photos = [im for im in (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths) if im is not None]
    photos = [np.asarray(im, np.uint8) for im in photos]
    assert len(photos) > 40
    found_clean = [enlargement_factor(im) for im in photos] + [enlargement_factor(jpeg(im, 75)) for im in photos]
    assert sum(f > 1.0 for f in found_clean) <= 1  # KAIR's face_07 is itself enlarged about 1.46x
    for im, before in zip(photos, found_clean, strict=False):
        assert enlargement_factor(resized(im, 2.0)) == pytest.approx(2.0 * before, rel=0.03)


# -- scoring ---------------------------------------------------------------------------------------
def test_scoring_view_undoes_only_when_the_cfg_says_so() -> None:
    doubled = resized(natural(seed=10), 2.0)
    off = scoring_view(doubled, DetectorCfg())
    on = scoring_view(doubled, DetectorCfg(undo_enlargement=True))
    assert off.enlargement == 1.0 and off.image is doubled
    assert on.enlargement == pytest.approx(2.0) and on.image.shape == (300, 400, 3)
    assert on.image.shape[:2] == scored_size(600, 800, 128, on.enlargement)


@pytest.mark.parametrize("size", [(100, 90), (300, 400), (257, 1031)])
def test_scored_size_matches_the_view(size: tuple[int, int]) -> None:
    picture = resized(natural(*size, seed=11), 2.0)
    view = scoring_view(picture, DetectorCfg(undo_enlargement=True))
    assert view.image.shape[:2] == scored_size(*picture.shape[:2], 128, view.enlargement)


@pytest.fixture(scope="module")
def detectors() -> tuple[Detector, Detector]:
    plain = Detector.load()
    return plain, Detector(plain.model, plain.cfg, undo_enlargement=True)


def test_the_detector_scores_an_enlarged_image_as_the_image_before(detectors: tuple[Detector, Detector]) -> None:
    plain, undoing = detectors
    original = natural(seed=12)
    doubled = resized(original, 2.0)
    result = undoing.score_array(doubled)
    assert result.enlargement == pytest.approx(2.0) and result.size == (300, 400)
    assert result.score == plain.score_array(shrink_back(doubled, result.enlargement)).score
    assert result.to_dict()["enlargement"] == pytest.approx(2.0)
    assert result.model["undo_enlargement"] == "on"
    untouched = undoing.score_array(original)  # nothing found: scored as it is
    assert untouched.enlargement == 1.0 and untouched.score == plain.score_array(original).score


def test_the_shipped_cfg_leaves_enlargements_alone(detectors: tuple[Detector, Detector]) -> None:
    plain, _ = detectors
    assert plain.cfg.undo_enlargement is False
    result = plain.score_array(resized(natural(seed=13), 2.0))
    assert result.enlargement is None and "enlargement" not in result.to_dict()
    assert "undo_enlargement" not in result.model
    assert result.size == (600, 800)


def test_the_verdict_keeps_the_enlargement_for_the_heatmap(
    detectors: tuple[Detector, Detector], tmp_path: Path
) -> None:
    _, undoing = detectors
    path = tmp_path / "doubled.png"
    assert cv2.imwrite(str(path), resized(natural(seed=14), 2.0))
    detection = Detection.from_result(undoing.score_path(path))
    verdict = {"evidence": {"detector": detection.to_dict()}}
    assert detector_enlargement(verdict) == pytest.approx(2.0)
    assert scored_extent(detection.to_dict()["tiles"], height=600, width=800, enlargement=2.0) == (300, 400)
    png = tile_heatmap_png(path, detection.to_dict()["tiles"], max_pixels=10**8, title="t", enlargement=2.0)
    assert png.startswith(b"\x89PNG")


@pytest.mark.parametrize("stored", ["2", True, 0.5, 1000.0, float("nan"), None])
def test_a_stored_enlargement_that_is_not_one_reads_as_none(stored: object) -> None:
    assert detector_enlargement({"evidence": {"detector": {"enlargement": stored}}}) == 1.0


def test_detect_cli_undo_enlargement(tmp_path: Path) -> None:
    path = tmp_path / "doubled.png"
    assert cv2.imwrite(str(path), resized(natural(seed=15), 2.0))
    runner = CliRunner()
    on = runner.invoke(app, ["detect", "--format", "jsonl", "--undo-enlargement", str(path)])
    off = runner.invoke(app, ["detect", "--format", "jsonl", str(path)])
    table = runner.invoke(app, ["detect", "--undo-enlargement", str(path)], env={"COLUMNS": "200"})
    assert on.exit_code == off.exit_code == table.exit_code == 0, (on.output, off.output, table.output)
    row_on, row_off = json.loads(on.stdout), json.loads(off.stdout)
    assert row_on["enlargement"] == pytest.approx(2.0) and row_on["model"]["undo_enlargement"] == "on"
    assert "enlargement" not in row_off and "undo_enlargement" not in row_off["model"]
    assert "scored shrunk 2.00x (looked enlarged)" in table.stdout.replace("\n", " ")


def test_detector_eval_records_undo_enlargement(tmp_path: Path) -> None:
    for kind, seeds in (("real", (16, 17)), ("fake", (18, 19))):
        (tmp_path / kind).mkdir()
        for seed in seeds:
            assert cv2.imwrite(str(tmp_path / kind / f"{seed}.png"), resized(natural(160, 200, seed=seed), 2.0))
    models = {}
    for flag in ([], ["--undo-enlargement"]):
        out = tmp_path / f"out{len(flag)}"
        result = CliRunner().invoke(app, ["detector", "eval", "--real", str(tmp_path / "real"), "--fake",
                                          str(tmp_path / "fake"), "--out", str(out), *flag])  # fmt: skip
        assert result.exit_code == 0, result.output
        models[bool(flag)] = json.loads((out / "report.json").read_text())["model"]
    assert models[True]["undo_enlargement"] == "on" and "undo_enlargement" not in models[False]


def test_training_draws_tiles_from_the_image_shrunk_back(tmp_path: Path) -> None:
    from authenticity.detection.train.finetune import _Sampler, load_items

    for kind, name in (("real", "photo"), ("fake", "gan")):
        (tmp_path / "train" / kind / name).mkdir(parents=True)
        assert cv2.imwrite(str(tmp_path / "train" / kind / name / "0.png"), resized(natural(150, 200, seed=21), 2.0))
    items = load_items(tmp_path, "train")
    plain, undoing = (_Sampler(items, random.Random(0), undo_enlargement=flag) for flag in (False, True))
    assert plain._image(items[0].path).shape == (300, 400, 3)
    assert undoing._image(items[0].path).shape == (150, 200, 3)


def test_detector_train_takes_undo_enlargement(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from .conftest import train_params

    assert train_params(monkeypatch, tmp_path, ["--undo-enlargement"]).finetune.undo_enlargement is True
    assert train_params(monkeypatch, tmp_path, []).finetune.undo_enlargement is False
