"""bench/blend_pairs.py: blends against their own face crops, grey and colour sources apart."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from authenticity.detection.scoring import Detector

_PATH = Path(__file__).resolve().parent.parent / "bench" / "blend_pairs.py"
_spec = importlib.util.spec_from_file_location("bench_blend_pairs", _PATH)
assert _spec is not None and _spec.loader is not None
pairs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pairs)


def _dataset(root: Path, grey: int, colour: int, tinted: int = 0) -> None:
    rng = np.random.default_rng(0)
    for k in range(grey + colour):
        face = rng.integers(0, 256, (72, 72, 3), dtype=np.uint8)
        if k < grey:
            face = cv2.cvtColor(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        blend = cv2.GaussianBlur(face, (0, 0), 1.5)
        if k < tinted:  # as dataset recipe 1 did to grey faces
            blend = cv2.add(blend, np.array([0, 0, 12, 0], np.float64))
        for cls, source, image in (("real", "face", face), ("fake", "blend", blend)):
            (root / "test" / cls / source).mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(root / "test" / cls / source / f"p{k}.png"), image)
    (root / "test" / "real" / "photo").mkdir()
    assert cv2.imwrite(str(root / "test" / "real" / "photo" / "x.png"), rng.integers(0, 256, (90, 90, 3), np.uint8))
    blends = root / "test" / "fake" / "blend"
    (blends / "orphan.png").write_bytes((blends / "p0.png").read_bytes())


def test_pairs_are_split_by_the_colour_of_their_source_face(tmp_path: Path) -> None:
    _dataset(tmp_path, grey=3, colour=2, tinted=1)
    report = pairs.measure(Detector.load(), tmp_path, "test")
    assert report["n_reals"] == 6  # five faces and one photo; the orphan blend has no face and is no pair
    assert (report["grey"]["pairs"], report["colour"]["pairs"]) == (3, 2)
    assert report["grey"]["blends_still_grey"] == 0.667 and "blends_still_grey" not in report["colour"]
    for group in ("grey", "colour"):
        row = report[group]
        assert 0.0 <= row["auc_vs_own_faces"] <= 1.0 and 0.0 <= row["auc_vs_all_reals"] <= 1.0
        assert row["blends_flagged"] in {round(i / row["pairs"], 3) for i in range(row["pairs"] + 1)}


def test_only_grey_pairs_leave_the_colour_group_out(tmp_path: Path) -> None:
    _dataset(tmp_path, grey=2, colour=0)
    assert "colour" not in pairs.measure(Detector.load(), tmp_path, "test")


def test_a_split_without_pairs_or_weights_is_a_one_line_error(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    with pytest.raises(SystemExit, match=r"no blend beside its face crop \(fake/blend, real/face\)$"):
        pairs.measure(Detector.load(), tmp_path, "test")
    missing = tmp_path / "nope.safetensors"
    assert pairs.main(["--dataset", str(tmp_path), "--weights", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: detector.weights.not_found: {missing}: detector weights not found\n"
