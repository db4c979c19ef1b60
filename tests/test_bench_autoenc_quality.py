"""bench/autoenc_quality.py: fidelity figures of the autoenc family, fake against its twin."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

_PATH = Path(__file__).resolve().parent.parent / "bench" / "autoenc_quality.py"
_spec = importlib.util.spec_from_file_location("bench_autoenc_quality", _PATH)
assert _spec is not None and _spec.loader is not None
quality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quality)


def _pair(dataset: Path, name: str, source: np.ndarray, fake: np.ndarray) -> None:
    for folder, image in ((dataset / "twins" / "test" / "real" / "autoenc", source),
                          (dataset / "test" / "fake" / "autoenc", fake)):  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(folder / name), image)


def test_colour_and_detail_kept_are_measured_against_the_twin(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    grey_one = np.repeat(rng.integers(0, 256, (64, 64, 1), dtype=np.uint8), 3, axis=2)
    _pair(tmp_path, "c.png", colour, np.repeat(colour.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2))
    _pair(tmp_path, "g.png", grey_one, cv2.GaussianBlur(grey_one, (0, 0), 2))
    out = quality.measure(tmp_path, ["test"])
    assert out["colour"]["n"] == 1 and out["colour"]["colour_kept"] == 0.0  # the fake dropped all colour
    assert out["grey"]["n"] == 1 and out["grey"]["colour_kept"] is None
    assert 0.0 < out["grey"]["detail_kept"] < 0.5  # blur took most of the Laplacian energy
    _pair(tmp_path, "same.png", grey_one, grey_one)
    assert quality.measure(tmp_path, ["test"])["grey"]["n"] == 2


def test_a_workdir_without_an_autoencoder_is_a_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(_PATH), "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == (f"{tmp_path / 'dataset'}: no autoencoder.json; "
                           "build it with `detector train --workdir W --autoenc-steps N`\n")  # fmt: skip


def test_the_report_carries_the_autoencoder_metadata(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "autoencoder.json").write_text(json.dumps({"recipe": 2, "steps": 3}))
    source = np.full((32, 32, 3), (10, 120, 200), np.uint8)
    _pair(dataset, "a.png", source, source)
    proc = subprocess.run([sys.executable, str(_PATH), "--workdir", str(tmp_path), "--splits", "test"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["autoencoder"] == {"recipe": 2, "steps": 3}
    assert report["against_source"]["colour"]["colour_kept"] == pytest.approx(1.0)


def test_another_family_of_the_same_twins_is_measured_from_its_own_files_and_metadata(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "autoencoder.json").write_text(json.dumps({"recipe": 2, "steps": 3}))
    source = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    _pair(dataset, "a.png", source, source)  # the plain family keeps everything
    (dataset / "test" / "fake" / "aecritic").mkdir(parents=True)
    assert cv2.imwrite(str(dataset / "test" / "fake" / "aecritic" / "a.png"), cv2.GaussianBlur(source, (0, 0), 2))
    args = [sys.executable, str(_PATH), "--workdir", str(tmp_path), "--splits", "test", "--family", "aecritic"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert proc.stderr == (f"{dataset}: no aecritic.json; make the family with bench/critic_autoenc_family.py\n")
    (dataset / "aecritic.json").write_text(json.dumps({"adversarial": 0.5}))
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["autoencoder"] == {"adversarial": 0.5} and report["family"] == "aecritic"
    assert report["against_source"]["colour"]["detail_kept"] < 0.5  # the blurred copy, not the plain twin
