"""bench/critic_autoenc_family.py: the autoenc crops re-drawn by an autoencoder trained with a critic."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from authenticity.detection.train._autoenc import load_autoencoder, reconstruct, train_autoencoder

_PATH = Path(__file__).resolve().parent.parent / "bench" / "critic_autoenc_family.py"
_spec = importlib.util.spec_from_file_location("bench_critic_autoenc_family", _PATH)
assert _spec is not None and _spec.loader is not None
critic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(critic)


def _workdir(dataset: Path) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    photos = []
    for k in range(2):
        folder = dataset / "train" / "real" / "photo"
        folder.mkdir(parents=True, exist_ok=True)
        photo = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / f"p{k}.png"), photo)
        photos.append(photo)
    for split, n in (("train", 2), ("test", 1)):
        folder = dataset / "twins" / split / "real" / "autoenc"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            assert cv2.imwrite(str(folder / f"{split}{k}__{k}.png"), rng.integers(0, 256, (36, 44, 3), dtype=np.uint8))
    return photos


def test_each_twin_is_redrawn_into_its_own_split_by_the_critic_trained_autoencoder(tmp_path: Path) -> None:
    photos = _workdir(tmp_path)
    meta = critic.add_critic_family(tmp_path, steps=4, adversarial=0.5, seed=3)
    assert meta["counts"] == {"train": 2, "val": 0, "test": 1}
    model = load_autoencoder(tmp_path / "aecritic.safetensors")
    plain = train_autoencoder(photos, steps=4, seed=3, crop=96)
    for split in ("train", "test"):
        for twin in sorted((tmp_path / "twins" / split / "real" / "autoenc").glob("*.png")):
            crop = cv2.imread(str(twin))
            fake = cv2.imread(str(tmp_path / split / "fake" / "aecritic" / twin.name))
            assert fake.shape == crop.shape
            assert np.array_equal(fake, reconstruct(model, crop))  # the saved autoencoder made it
            assert not np.array_equal(fake, reconstruct(plain, crop))  # and the critic changed it
    saved = json.loads((tmp_path / "aecritic.json").read_text())
    assert saved == meta and saved["adversarial"] == 0.5 and saved["steps"] == 4 and saved["train_photos"] == 2


def test_without_twins_with_the_family_or_without_a_critic_it_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"needs train/real/photo and the autoenc family's twins; build it with"):
        critic.add_critic_family(tmp_path, steps=1)
    _workdir(tmp_path)
    with pytest.raises(SystemExit, match=r"^error: --adversarial 0.0: the critic's weight must be > 0"):
        critic.add_critic_family(tmp_path, steps=1, adversarial=0.0)
    assert not (tmp_path / "train" / "fake").exists()
    critic.add_critic_family(tmp_path, steps=1)
    before = sorted(p.name for p in (tmp_path / "train" / "fake" / "aecritic").iterdir())
    with pytest.raises(SystemExit, match=r"already has a family named aecritic$"):
        critic.add_critic_family(tmp_path, steps=1)
    (tmp_path / "summary.json").write_text("{}")  # the workdir's own files are never overwritten
    with pytest.raises(SystemExit, match=rf"^error: {re.escape(str(tmp_path))}: summary\.json already exists; pick"):
        critic.add_critic_family(tmp_path, steps=1, name="summary")
    assert (tmp_path / "summary.json").read_text() == "{}" and not (tmp_path / "train" / "fake" / "summary").exists()
    with pytest.raises(SystemExit, match=r"^error: --name 'w/2': use letters, digits and underscores$"):
        critic.add_critic_family(tmp_path, steps=1, name="w/2")
    meta = critic.add_critic_family(tmp_path, steps=1, name="aecritic_w2")  # a second weight beside the first
    assert meta["counts"] == {"train": 2, "val": 0, "test": 1}
    assert (tmp_path / "test" / "fake" / "aecritic_w2" / "test0__0.png").is_file()
    assert sorted(p.name for p in (tmp_path / "train" / "fake" / "aecritic").iterdir()) == before


def test_an_unreadable_crop_is_a_one_line_error_before_anything_is_trained_or_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _workdir(tmp_path / "dataset")
    (tmp_path / "dataset" / "twins" / "test" / "real" / "autoenc" / "test0__0.png").write_bytes(b"not a png")
    assert critic.main(["--workdir", str(tmp_path), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: media.") and "test0__0.png" in err and err.count("\n") == 1
    assert not any((tmp_path / "dataset" / split / "fake").exists() for split in ("train", "val", "test"))
    assert not (tmp_path / "dataset" / "aecritic.json").exists()
