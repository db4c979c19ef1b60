"""bench/upload_conditions.py: whole photos against 256-px fakes under upload-style shrinking and re-encoding."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from authenticity.detection.evaluate import ROBUSTNESS
from authenticity.detection.scoring import Detector

_PATH = Path(__file__).resolve().parent.parent / "bench" / "upload_conditions.py"
_spec = importlib.util.spec_from_file_location("bench_upload_conditions", _PATH)
assert _spec is not None and _spec.loader is not None
upload = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(upload)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write(folder: Path, n: int, seed: int, shape: tuple[int, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(n):
        assert cv2.imwrite(str(folder / f"same_name_{k}.png"), rng.integers(0, 256, (*shape, 3), dtype=np.uint8))


def _dataset(root: Path, fakes: bool = True) -> Path:
    for i, split in enumerate(("test", "val", "train")):
        _write(root / split / "real" / "photo", 2, i, (300, 420))  # same file names in every split
        _write(root / split / "real" / "face", 2, 10 + i, (96, 96))  # not a whole photo: left out
        if fakes:
            _write(root / split / "fake" / "blend", 2, 20 + i, (256, 256))
            _write(root / split / "fake" / "gan", 3, 30 + i, (64, 64))  # made small: left out
    return root


def test_whole_photos_of_the_chosen_splits_meet_the_256_px_families_under_every_condition(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "dataset")
    result = upload.measure(Detector.load(), dataset, ["test", "val"])
    assert (result["n_real"], result["n_fake"]) == (4, 4)  # two splits' photos and blends; no faces, gan or train
    assert result["undo_enlargement"] is False and len(result["weights_sha256"]) == 64
    assert [r["condition"] for r in result["rows"]] == ["clean", *ROBUSTNESS]
    for row in result["rows"]:
        assert row["real_flagged"] in {0.0, 0.25, 0.5, 0.75, 1.0} and row["fake_flagged"] in {0.0, 0.25, 0.5, 0.75, 1.0}
        assert 0.0 <= row["auc"] <= 1.0
    table = upload.to_markdown(result)
    assert table.startswith("4 real photos, 4 fakes (autoenc, blend, cyclegan, upsample); splits test, val\n")
    assert table.count("\n| ") == 1 + len(result["rows"])
    assert not any(p.is_symlink() for p in dataset.rglob("*"))  # the links live in a temporary folder only


def test_the_cli_prints_json_and_refuses_what_it_cannot_measure(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    dataset = _dataset(tmp_path / "dataset")
    assert upload.main(["--dataset", str(dataset), "--splits", "test"]) == 0
    assert json.loads(capsys.readouterr().out)["n_real"] == 2
    with pytest.raises(SystemExit, match=r"no real/photo folder in split\(s\) nope$"):
        upload.main(["--dataset", str(dataset), "--splits", "nope"])
    missing = tmp_path / "nope.safetensors"
    assert upload.main(["--dataset", str(dataset), "--weights", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: detector.weights.not_found: {missing}: detector weights not found\n"
    no_fakes = _dataset(tmp_path / "no_fakes", fakes=False)
    assert upload.main(["--dataset", str(no_fakes)]) == 2
    assert capsys.readouterr().err.startswith("error: usage.eval.empty_class: need loadable images in both ")
