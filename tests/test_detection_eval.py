"""Evaluation of the detector: metric known answers, evaluate() on a tiny trained model, ONNX parity.

The tiny model is timm's ``test_efficientnet`` (0.1 M parameters) on 32-pixel tiles, trained
for a few Adam steps to tell smooth images (real) from images carrying a one-pixel
checkerboard (synthetic): real enough to separate the classes, small enough for seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from authenticity.detection import metrics as M
from authenticity.detection.config import DetectorCfg
from authenticity.detection.evaluate import ROBUSTNESS, EvalReport, evaluate, load_labelled_folder, score_files
from authenticity.detection.model import build_model, save_detector
from authenticity.detection.onnx_runtime import OnnxDetector, export_onnx
from authenticity.detection.plots import plot_tile_heatmap, plot_timeline
from authenticity.detection.preprocess import normalize
from authenticity.detection.scoring import DetectionResult, Detector, FrameScore
from authenticity.errors import UsageError
from authenticity.media import load_image_bgr

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _real(rng: np.random.Generator, h: int, w: int) -> NDArray[np.uint8]:
    small = rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3)).astype(np.uint8)
    return np.asarray(cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 1.5), np.uint8)


def _fake(rng: np.random.Generator, h: int, w: int, amplitude: int = 12) -> NDArray[np.uint8]:
    yy, xx = np.mgrid[:h, :w]
    pattern = (((yy + xx) % 2) * 2 - 1)[..., None] * amplitude
    noisy = _real(rng, h, w).astype(np.int16) + pattern + rng.normal(0, 2, (h, w, 3))
    return np.asarray(np.clip(noisy, 0, 255), dtype=np.uint8)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = DetectorCfg(arch="test_efficientnet", tile_size=32, max_tiles=4)
    torch.manual_seed(0)
    model = build_model(cfg)
    model.eval()  # train with BatchNorm frozen: no train/eval gap after a handful of steps
    rng = np.random.default_rng(0)
    images = [_real(rng, 32, 32) for _ in range(16)] + [_fake(rng, 32, 32) for _ in range(16)]
    x = torch.from_numpy(normalize(np.stack(images), cfg))
    y = torch.tensor([0.0] * 16 + [1.0] * 16)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(10):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_detector(model, cfg, path)
    return path


@pytest.fixture(scope="module")
def detector(weights: Path) -> Detector:
    return Detector.load(weights, batch_size=64)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(1)
    layout = {"real": [("", 3), ("phone", 3)], "fake": [("gan", 3), ("diffusion", 3)]}
    for kind, sources in layout.items():
        for source, count in sources:
            folder = root / kind / source
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                # one real image per source is smaller than a tile (scored upscaled); fakes stay native,
                # as upscaling turns the one-pixel checkerboard into a moiré the tiny model never saw
                h, w = (20, 24) if i == 0 and kind == "real" else (40, 56)
                image = _real(rng, h, w) if kind == "real" else _fake(rng, h, w)
                cv2.imwrite(str(folder / f"{i}.png"), image)
    (root / "fake" / "gan" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "fake" / "notes.txt").write_text("not an image, not counted")
    return root


# -- metrics: known answers -------------------------------------------------------------------
def test_auc_is_one_for_perfect_ranking_zero_for_reversed_half_for_ties() -> None:
    y = [0, 0, 1, 1]
    assert M.auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert M.auc(y, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert M.auc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert M.auc(y, [0.1, 0.4, 0.35, 0.8]) == 0.75


def test_average_precision_and_tpr_at_fpr_known_answers() -> None:
    assert M.average_precision([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert M.average_precision([0, 1, 0, 1], [0.1, 0.9, 0.8, 0.3]) == pytest.approx(5 / 6)
    y = [0] * 100 + [1] * 4
    s = [*range(100), 99.5, 99.5, 98.5, 10]
    assert M.tpr_at_fpr(y, s, 0.0) == 0.5
    assert M.tpr_at_fpr(y, s, 0.01) == 0.75
    assert M.tpr_at_fpr(y, s, 1.0) == 1.0


def test_ranking_metrics_refuse_one_class() -> None:
    with pytest.raises(UsageError) as info:
        M.auc([1, 1], [0.2, 0.3])
    assert info.value.code == "detection.metrics.one_class"


def test_accuracy_and_ece_known_answers() -> None:
    assert M.accuracy_at([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.4], 0.5) == 0.5
    # each bin's mean probability equals its observed fraction synthetic → ECE 0
    y = [0, 0, 0, 1, 0, 1, 1, 1]
    p = [0.25] * 4 + [0.75] * 4
    assert M.expected_calibration_error(y, p, bins=4) == 0.0
    assert M.expected_calibration_error([0, 0], [0.9, 0.9], bins=10) == pytest.approx(0.9)
    bins = M.reliability_bins(y, p, bins=4)
    assert [b.count for b in bins] == [0, 4, 0, 4]


def test_fit_temperature_recovers_temperature_and_bias() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 3.0, 20_000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-(z - 0.5) / 2.5))).astype(int)
    temperature, bias = M.fit_temperature(z, y)
    assert temperature == pytest.approx(2.5, rel=0.05)
    assert bias == pytest.approx(-0.5, abs=0.1)


def test_balanced_fit_temperature_does_not_move_with_the_share_of_fakes() -> None:
    rng = np.random.default_rng(1)
    z_real, z_fake = rng.normal(-1.0, 2.0, 3_000), rng.normal(1.0, 2.0, 3_000)
    z = np.concatenate([z_real, z_fake])
    y = np.array([0] * 3_000 + [1] * 3_000)
    more = np.concatenate([z_real, z_fake, z_fake, z_fake])  # three times the fakes, nothing else new
    y_more = np.array([0] * 3_000 + [1] * 9_000)
    even = M.fit_temperature(z, y, balanced=True)
    assert M.fit_temperature(more, y_more, balanced=True) == pytest.approx(even, abs=1e-6)
    # unweighted, the same evidence reads as more synthetic: the bias takes up about log(3)·T
    plain_t, plain_b = M.fit_temperature(more, y_more)
    assert plain_t == pytest.approx(even[0], rel=1e-3)
    assert plain_b - even[1] == pytest.approx(np.log(3.0) * plain_t, rel=1e-2)
    # on even classes the weights are all 1: the same fit either way
    assert M.fit_temperature(z, y) == pytest.approx(even, abs=1e-9)


def test_fit_temperature_stays_positive_on_separable_and_inverted_data() -> None:
    t_sep, _ = M.fit_temperature([-2.0, -1.0, 1.0, 2.0], [0, 0, 1, 1])
    t_inv, _ = M.fit_temperature([-2.0, -1.0, 1.0, 2.0], [1, 1, 0, 0])
    assert t_sep == pytest.approx(0.05)
    assert t_inv == pytest.approx(100.0)


# -- evaluate() on a tiny model ---------------------------------------------------------------
def test_load_labelled_folder_names_sources_by_first_subfolder(folders: Path) -> None:
    files = load_labelled_folder(folders)
    sources = {(label, source) for _, label, source in files}
    assert sources == {(0, "default"), (0, "phone"), (1, "gan"), (1, "diffusion")}
    assert not any(p.suffix == ".txt" for p, _, _ in files)


def test_load_labelled_folder_follows_linked_source_folders_once(folders: Path, tmp_path: Path) -> None:
    # An evaluation set made of links to source folders elsewhere, with a link loop inside.
    root = tmp_path / "linked"
    (root / "real").mkdir(parents=True)
    (root / "fake").mkdir()
    (root / "real" / "phone").symlink_to(folders / "real" / "phone", target_is_directory=True)
    (root / "fake" / "gan").symlink_to(folders / "fake" / "gan", target_is_directory=True)
    (root / "fake" / "gan_again").symlink_to(folders / "fake" / "gan", target_is_directory=True)
    (root / "fake" / "loop").symlink_to(root / "fake", target_is_directory=True)
    (root / "fake" / "diffusion").mkdir()
    (root / "fake" / "diffusion" / "0.png").symlink_to(folders / "fake" / "diffusion" / "0.png")
    files = load_labelled_folder(root)
    counted = sorted((label, source, path.name) for path, label, source in files)
    assert counted == [
        (0, "phone", "0.png"), (0, "phone", "1.png"), (0, "phone", "2.png"),
        (1, "diffusion", "0.png"),
        (1, "gan", "0.png"), (1, "gan", "1.png"), (1, "gan", "2.png"), (1, "gan", "broken.jpg"),
    ]  # fmt: skip


def test_the_upload_conditions_cap_the_long_side_and_re_encode_both_classes_alike() -> None:
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (600, 1000, 3), dtype=np.uint8)
    small = rng.integers(0, 256, (100, 80, 3), dtype=np.uint8)
    assert ROBUSTNESS["long512_jpeg90"](big).shape == (307, 512, 3)
    assert ROBUSTNESS["long256_jpeg90"](big).shape == (154, 256, 3)
    assert ROBUSTNESS["long128_jpeg90"](big).shape == (77, 128, 3)
    out = ROBUSTNESS["long256_jpeg90"](small)  # never enlarged, only re-encoded
    assert out.shape == small.shape and out.dtype == np.uint8
    assert np.array_equal(out, ROBUSTNESS["jpeg_q90"](small)) and not np.array_equal(out, small)


def test_the_enlarging_conditions_bring_small_images_up_bicubically() -> None:
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (600, 1000, 3), dtype=np.uint8)
    small = rng.integers(0, 256, (100, 80, 3), dtype=np.uint8)
    doubled = ROBUSTNESS["upscale_2x"](small)
    assert doubled.shape == (200, 160, 3) and doubled.dtype == np.uint8
    assert np.array_equal(doubled, cv2.resize(small, (160, 200), interpolation=cv2.INTER_CUBIC))
    assert ROBUSTNESS["fit512_jpeg90"](big).shape == (307, 512, 3)  # shrunk as long512_jpeg90 does
    assert np.array_equal(ROBUSTNESS["fit512_jpeg90"](big), ROBUSTNESS["long512_jpeg90"](big))
    fitted = ROBUSTNESS["fit512_jpeg90"](small)  # enlarged to the working size, then re-encoded
    assert fitted.shape == (512, 410, 3)
    enlarged = cv2.resize(small, (410, 512), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(fitted, ROBUSTNESS["jpeg_q90"](enlarged))


def test_evaluate_reports_sources_robustness_attacks_and_writes_files(
    detector: Detector, folders: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    report = evaluate(
        detector,
        folders / "real",
        folders / "fake",
        robustness=True,
        attacks=["fgsm", "pgd"],
        out_dir=out,
        progress=False,
        epsilons=(4,),
    )
    assert (report.overall.n_real, report.overall.n_fake) == (6, 6)
    assert report.overall.auc >= 0.9  # the tiny model does separate the classes
    assert [f.code for f in report.failures] == ["media.decode.failed"]
    rows = {(r.kind, r.source): r for r in report.sources}
    assert set(rows) == {("real", "default"), ("real", "phone"), ("fake", "gan"), ("fake", "diffusion")}
    assert rows[("fake", "gan")].auc is not None and rows[("real", "phone")].auc is None
    assert set(report.robustness) == set(ROBUSTNESS)
    for kind, share in (("real", report.overall.real_flagged), ("fake", report.overall.fake_flagged)):
        counted = sum(r.flagged * r.n for r in report.sources if r.kind == kind)  # per-class shares add up per source
        assert share == pytest.approx(counted / sum(r.n for r in report.sources if r.kind == kind))
    assert report.overall.fake_flagged > report.overall.real_flagged
    assert all(0.0 <= m.real_flagged <= 1.0 and 0.0 <= m.fake_flagged <= 1.0 for m in report.robustness.values())
    attacks = {a.attack: a for a in report.attacks}
    assert set(attacks) == {"fgsm", "pgd"} and {a.epsilon for a in report.attacks} == {4}
    assert attacks["pgd"].accuracy < report.overall.accuracy  # an undefended model falls to 4/255
    assert attacks["pgd"].auc < report.overall.auc
    for name in ("roc.png", "reliability.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 100
    data = json.loads((out / "report.json").read_text())
    assert data["n_failed"] == 1 and data["overall"]["n_fake"] == 6
    markdown = (out / "report.md").read_text()
    assert "| real flagged | fake flagged |" in markdown
    assert "## Per source" in markdown and "| fake | gan |" in markdown and "## White-box attacks" in markdown


def test_attack_at_zero_epsilon_reproduces_clean_scores(detector: Detector, folders: Path) -> None:
    # the differentiable tile path (float tiles cut in torch) must agree with the scoring path
    report = evaluate(detector, folders / "real", folders / "fake", attacks=["fgsm"], progress=False, epsilons=(0,))
    assert report.attacks[0].auc == pytest.approx(report.overall.auc)
    assert report.attacks[0].accuracy == pytest.approx(report.overall.accuracy)


def test_evaluate_rejects_unknown_attack_and_empty_class(detector: Detector, folders: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        evaluate(detector, folders / "real", folders / "fake", attacks=["cw"], progress=False)
    assert info.value.code == "usage.eval.attack"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError) as info:
        evaluate(detector, folders / "real", tmp_path / "empty", progress=False)
    assert info.value.code == "usage.eval.empty_class"


def test_score_files_matches_detector_and_marks_failures_nan(detector: Detector, folders: Path) -> None:
    paths = [folders / "real" / "1.png", folders / "fake" / "gan" / "broken.jpg"]
    logits = score_files(detector, paths)
    result = detector.score_path(paths[0])
    assert result.score == pytest.approx(detector.calibrate(float(logits[0])), abs=1e-6)
    assert np.isnan(logits[1])


def test_report_round_trips_through_json(detector: Detector, folders: Path) -> None:
    report = evaluate(detector, folders / "real", folders / "fake", progress=False)
    assert isinstance(report, EvalReport)
    assert json.loads(json.dumps(report.to_dict()))["overall"]["auc"] == pytest.approx(report.overall.auc, abs=1e-6)


# -- plots -------------------------------------------------------------------------------------
def test_heatmap_and_timeline_write_pngs(detector: Detector, folders: Path, tmp_path: Path) -> None:
    bgr = load_image_bgr(folders / "real" / "0.png")  # 20×24: scored upscaled to 32×38
    result = detector.score_array(bgr, "0.png")
    plot_tile_heatmap(bgr, result, tmp_path / "heat.png")
    frames = tuple(FrameScore(i, i * 0.5, s, i % 2) for i, s in enumerate([0.1, 0.4, 0.8, 0.6]))
    video = DetectionResult("clip.mp4", 0.5, None, {}, "video", frames=frames)
    plot_timeline(video, tmp_path / "timeline.png", cfg=detector.cfg)
    for name in ("heat.png", "timeline.png"):
        assert cv2.imread(str(tmp_path / name)) is not None
    with pytest.raises(UsageError):
        plot_timeline(result, tmp_path / "nope.png")


# -- ONNX --------------------------------------------------------------------------------------
def test_onnx_export_and_detector_match_torch(weights: Path, detector: Detector, folders: Path, tmp_path: Path) -> None:
    onnx_path = export_onnx(weights, tmp_path / "tiny.onnx")
    assert onnx_path.with_suffix(".json").is_file()
    onnx = OnnxDetector.load(onnx_path, threads=1, batch_size=16)
    tiles = np.random.default_rng(0).normal(size=(5, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(onnx.tile_logits(tiles), detector.tile_logits(tiles), atol=1e-3)
    paths = [p for p, _, _ in load_labelled_folder(folders)]
    ours = [r.score for r in onnx.score_paths(paths)]
    theirs = [r.score for r in detector.score_paths(paths)]
    assert [s is None for s in ours] == [s is None for s in theirs]
    np.testing.assert_allclose([s for s in ours if s is not None], [s for s in theirs if s is not None], atol=1e-3)
    with pytest.raises(UsageError) as info:
        evaluate(onnx, folders / "real", folders / "fake", attacks=["fgsm"], progress=False)
    assert info.value.code == "detection.onnx.no_torch_model"
