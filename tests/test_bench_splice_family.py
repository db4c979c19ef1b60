"""bench/splice_family.py: an experimental region self-blend family added to a built workdir."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from authenticity.detection.train.synth import is_grey

_PATH = Path(__file__).resolve().parent.parent / "bench" / "splice_family.py"
_spec = importlib.util.spec_from_file_location("bench_splice_family", _PATH)
assert _spec is not None and _spec.loader is not None
splice = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(splice)


def _photos(dataset: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 1)):
        for k in range(n):
            folder = dataset / split / "real" / "photo"
            folder.mkdir(parents=True, exist_ok=True)
            image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
            if k == 0:
                image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
            assert cv2.imwrite(str(folder / f"{split}{k}.png"), image)


def test_each_splice_keeps_its_source_photos_split_and_greys_stay_grey(tmp_path: Path) -> None:
    _photos(tmp_path)
    counts = splice.add_splice(tmp_path, per_family=8, side=64, seed=0)
    assert counts == {"train": 6, "val": 0, "test": 2}
    for split, n in counts.items():
        files = sorted((tmp_path / split / "fake" / "splice").glob("*.png"))
        assert len(files) == n
        for f in files:  # named after the photo it was cut from, which sits in the same split
            assert (tmp_path / split / "real" / "photo" / f"{f.stem.split('__')[0]}.png").is_file()
            image = cv2.imread(str(f))
            assert image.shape == (64, 64, 3)
            assert is_grey(image) == f.stem.startswith(f"{split}0__")
    assert json.loads((tmp_path / "splice.json").read_text())["counts"] == counts


def test_a_second_family_or_a_dataset_without_photos_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no real photos under <split>/real/photo"):
        splice.add_splice(tmp_path, per_family=2)
    _photos(tmp_path)
    splice.add_splice(tmp_path, per_family=2, side=64)
    before = sorted(p.name for p in (tmp_path / "train" / "fake" / "splice").iterdir())
    with pytest.raises(SystemExit, match=r"already has a splice family$"):
        splice.add_splice(tmp_path, per_family=2, side=64)
    assert sorted(p.name for p in (tmp_path / "train" / "fake" / "splice").iterdir()) == before
