"""bench/detail_bias.py: how much fine detail each family has, and whether a model's logit follows it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

_PATH = Path(__file__).resolve().parent.parent / "bench" / "detail_bias.py"
_spec = importlib.util.spec_from_file_location("bench_detail_bias", _PATH)
assert _spec is not None and _spec.loader is not None
bias = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bias)


def _dataset(root: Path) -> list[Path]:
    """Test reals of rising detail (noise amplitude), smooth 'blur' fakes, sharp 'sharp' fakes."""
    rng = np.random.default_rng(0)
    flat = np.full((128, 128, 3), 120, np.float32)
    files = []
    for cls, source, amplitudes in (("real", "photo", (10, 20, 30, 40)), ("fake", "blur", (1, 2)),
                                    ("fake", "sharp", (60, 70))):  # fmt: skip
        folder = root / "test" / cls / source
        folder.mkdir(parents=True)
        for k, amp in enumerate(amplitudes):
            path = folder / f"{k}.png"
            assert cv2.imwrite(str(path), np.clip(flat + rng.normal(0, amp, flat.shape), 0, 255).astype(np.uint8))
            files.append(path)
    return sorted(files, key=lambda p: ("real" not in p.parts, p.parts[-2], p.name))  # load_items' order


def test_detail_rises_with_noise_and_a_small_image_is_measured_as_scored() -> None:
    rng = np.random.default_rng(1)
    quiet, loud = (np.clip(120 + rng.normal(0, s, (64, 64, 3)), 0, 255).astype(np.uint8) for s in (2, 30))
    assert bias.fine_detail(loud, 64) > 5 * bias.fine_detail(quiet, 64)
    assert bias.fine_detail(np.full((40, 40, 3), 9, np.uint8), 128) == 0.0
    small = loud[:32, :32]  # upscaled ×4 before measuring: smoother than at its own size
    assert bias.fine_detail(small, 128) < bias.fine_detail(small, 32)


def test_spearman_is_one_for_any_rising_relation_and_minus_one_for_a_falling_one() -> None:
    a = np.array([1.0, 2.0, 3.0, 10.0])
    assert bias.spearman(a, a**3) == pytest.approx(1.0)
    assert bias.spearman(a, -np.exp(a)) == pytest.approx(-1.0)


def test_sources_and_runs_are_measured_from_the_dataset_and_the_saved_logits(tmp_path: Path) -> None:
    files = _dataset(tmp_path / "dataset")
    run = tmp_path / "lofo" / "runs" / "base__blur"
    run.mkdir(parents=True)
    label = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    logits = np.array([1.0, 2.0, 3.0, 4.0, -1.0, -2.0, 5.0, 6.0])  # rises with detail; blur fakes lowest
    np.savez(run / "scores.npz", path=np.array([str(p) for p in files]), label=label, clean=logits)
    result = bias.measure(tmp_path / "dataset", tmp_path / "lofo")
    assert result["sources"]["fake/blur"]["auc_less_detail"] == 1.0
    assert result["sources"]["fake/sharp"]["auc_less_detail"] == 0.0
    assert "auc_less_detail" not in result["sources"]["real/photo"]
    # 90 % of the 4 fakes is all 4: the threshold is the lowest fake logit (-2), every real is above it
    assert result["runs"]["base__blur"] == {"corr_reals": 1.0, "corr_photo": 1.0, "auc_held_out": 0.0,
                                            "corr_held_out": -1.0,
                                            "flagged_at_tpr": {"all": 1.0, "photo": 1.0}}  # fmt: skip
    text = bias.to_markdown(result)
    assert (
        "| fake/blur | 2 |" in text and "| base__blur | 0.000 | 1.000 | 1.000 | — | -1.000 | 100% / 100% / — |" in text
    )


def test_a_left_out_family_takes_no_part_in_any_figure(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    files = _dataset(tmp_path / "dataset")
    run = tmp_path / "lofo" / "runs" / "base__sharp"
    run.mkdir(parents=True)
    logits = np.array([1.0, 2.0, 3.0, 4.0, -1.0, -2.0, 5.0, 6.0])  # reals 1..4, blur fakes -1 -2, sharp 5 6
    np.savez(run / "scores.npz", path=np.array([str(p) for p in files]), label=np.array([0] * 4 + [1] * 4),
             clean=logits)  # fmt: skip
    every = bias.measure(tmp_path / "dataset", tmp_path / "lofo")
    assert every["runs"]["base__sharp"]["flagged_at_tpr"] == {"all": 1.0, "photo": 1.0}  # 90 % of 4 fakes: -2
    result = bias.measure(tmp_path / "dataset", tmp_path / "lofo", leave_out=("blur",))
    assert sorted(result["sources"]) == ["fake/sharp", "real/photo"]
    row = result["runs"]["base__sharp"]
    assert row["flagged_at_tpr"] == {"all": 0.0, "photo": 0.0}  # 90 % of the 2 sharp fakes: 5, above every real
    assert row["auc_held_out"] == 1.0 and row["corr_reals"] == 1.0
    assert bias.main(["--dataset", str(tmp_path / "dataset"), "--lofo", str(tmp_path / "lofo"),
                      "--leave-out", "blur"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "fake/blur" not in out and "| base__sharp | 1.000 | 1.000 | 1.000 | — |" in out and "0% / 0% / —" in out
    with pytest.raises(SystemExit, match=r"^error: --leave-out blurr: no such fake family in .*'s test split$"):
        bias.measure(tmp_path / "dataset", tmp_path / "lofo", leave_out=("blurr",))  # a typo is not ignored
    with pytest.raises(SystemExit, match=r"^error: --leave-out names every fake family: nothing would be left"):
        bias.measure(tmp_path / "dataset", tmp_path / "lofo", leave_out=("blur", "sharp"))


def test_reals_flagged_at_90_percent_tpr_use_the_fake_that_keeps_90_percent_flagged() -> None:
    z = np.array([0.5, 1.5, 2.5, 3.5, 9.5] + [float(k) for k in range(1, 11)])  # 5 reals, then fakes 1..10
    y = np.array([0] * 5 + [1] * 10)
    source = np.array(["real/photo", "real/photo", "real/face", "real/face", "real/small"] + ["fake/x"] * 10)
    # the 9th highest of 10 fakes is 2: reals at 2.5, 3.5 and 9.5 are flagged
    assert bias.flagged_at_tpr(z, y, source) == {"all": 0.6, "photo": 0.0, "face": 1.0}
    assert bias.flagged_at_tpr(z, y, source, tpr=0.5) == {"all": 0.2, "photo": 0.0, "face": 0.0}  # threshold 6


def test_other_files_logits_and_a_missing_folder_are_refused(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    files = _dataset(tmp_path / "dataset")
    run = tmp_path / "lofo" / "runs" / "base__blur"
    run.mkdir(parents=True)
    np.savez(run / "scores.npz", path=np.array([str(p) for p in files[::-1]]), clean=np.zeros(len(files)))
    with pytest.raises(SystemExit, match=r"scores\.npz: scored other files than"):
        bias.measure(tmp_path / "dataset", tmp_path / "lofo")
    assert bias.main(["--dataset", str(tmp_path / "dataset"), "--lofo", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none'}: not a folder\n"
    with pytest.raises(SystemExit, match="no test split"):
        bias.measure(tmp_path / "empty", None)


def test_the_flagged_whole_photos_are_listed_with_their_detail_rank(tmp_path: Path) -> None:
    files = _dataset(tmp_path / "dataset")
    source = np.array([f"{p.parts[-3]}/{p.parts[-2]}" for p in files])
    d = np.array([10.0, 20.0, 30.0, 40.0, 1.0, 2.0, 60.0, 70.0])  # the photos' detail rises with their index
    probs = np.array([0.9, 0.1, 0.6, 0.2, 0.9, 0.9, 0.9, 0.9])  # photos 0 (smoothest) and 2 (third) flagged
    assert bias.flagged_photos(probs, d, source, [str(p) for p in files], 0.5) == [
        {"photo": "0", "detail_rank": 1, "of": 4}, {"photo": "2", "detail_rank": 3, "of": 4}]  # fmt: skip
    assert bias.flagged_photos(probs, d, source, [str(p) for p in files], 0.95) == []


def test_weights_score_the_test_split_and_list_what_they_flag_at_their_own_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from authenticity.detection.scoring import Detector

    _dataset(tmp_path / "dataset")
    shipped = Detector.load()
    every = Detector(shipped.model, shipped.cfg.model_copy(update={"threshold": 0.0}))  # flags every photo
    run = f"weights:{shipped.cfg.weights_sha256[:8]}"
    row = bias.measure(tmp_path / "dataset", None, every)["runs"][run]
    assert [(f["photo"], f["detail_rank"]) for f in row["flagged_photos"]] == [("0", 1), ("1", 2), ("2", 3), ("3", 4)]
    assert "auc_held_out" not in row and -1.0 <= row["corr_reals"] <= 1.0
    assert bias.main(["--dataset", str(tmp_path / "dataset"), "--weights", "data/detector.safetensors"]) == 0
    assert f"{run}: whole real photos flagged (detail rank, 1 = smoothest):" in capsys.readouterr().out
    missing = tmp_path / "nope.safetensors"
    assert bias.main(["--dataset", str(tmp_path / "dataset"), "--weights", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: detector.weights.not_found: {missing}: detector weights not found\n"
