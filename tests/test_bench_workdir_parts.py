"""bench/workdir_parts.py: a workdir in size-capped parts of lossless WebP, and back, pixels unchanged."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

_PATH = Path(__file__).resolve().parent.parent / "bench" / "workdir_parts.py"
_spec = importlib.util.spec_from_file_location("bench_workdir_parts", _PATH)
assert _spec is not None and _spec.loader is not None
parts_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parts_tool)


def _workdir(root: Path) -> dict[str, np.ndarray]:
    """A finished-looking workdir: a discriminator, a summary, and images of several kinds."""
    rng = np.random.default_rng(0)
    images = {
        "dataset/train/real/photo/a.png": rng.integers(0, 256, (90, 70, 3), dtype=np.uint8),
        "dataset/train/fake/gan/b.png": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
        "dataset/train/real/small/grey.png": rng.integers(0, 256, (32, 32), dtype=np.uint8),
        "dataset/test/fake/sd/c.png": np.full((40, 50, 3), (10, 200, 30), np.uint8),
        "dataset/val/real/photo/v.png": rng.integers(0, 256, (20, 20, 3), dtype=np.uint8),
    }
    for rel, pixels in images.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(root / rel), pixels)
    (root / "gan").mkdir()
    (root / "gan" / "discriminator.safetensors").write_bytes(b"weights" * 100)
    (root / "gan" / "state.safetensors").write_bytes(b"optimiser state, not needed")
    (root / "dataset" / "summary.json").write_text(json.dumps({"counts": {}}))
    return images


def test_a_packed_workdir_unpacks_to_the_same_pixels_in_capped_parts(tmp_path: Path) -> None:
    images = _workdir(tmp_path / "w")
    cap = 12_000
    parts = parts_tool.pack(tmp_path / "w", tmp_path / "out", cap, jobs=1)
    assert len(parts) >= 2 and [p.name for p in parts] == [f"part{i + 1}" for i in range(len(parts))]
    for part in parts:
        files = [f for f in part.rglob("*") if f.is_file()]
        assert sum(f.stat().st_size for f in files) <= cap or len(files) == 1
    assert not (tmp_path / "out" / ".encoding").exists()
    n = parts_tool.unpack(parts, tmp_path / "back", jobs=1)
    assert n == 4  # train and test only: val is not carried by default
    for rel, pixels in images.items():
        back = cv2.imread(str(tmp_path / "back" / rel), cv2.IMREAD_UNCHANGED)
        if "/val/" in rel:
            assert back is None
        else:
            assert back is not None and np.array_equal(back, pixels), rel
    assert (tmp_path / "back/gan/discriminator.safetensors").read_bytes() == b"weights" * 100
    assert not (tmp_path / "back/gan/state.safetensors").exists()
    assert json.loads((tmp_path / "back/dataset/summary.json").read_text()) == {"counts": {}}


def test_what_cannot_be_packed_or_unpacked_is_a_one_line_error(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    (tmp_path / "empty").mkdir()
    assert parts_tool.main(["pack", "--workdir", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    expected = f"error: {tmp_path / 'empty' / 'gan' / 'discriminator.safetensors'} missing: "
    assert capsys.readouterr().err == expected + "not a finished `detector train` workdir\n"
    assert not (tmp_path / "o").exists()
    _workdir(tmp_path / "w")
    argv = ["pack", "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "o"), "--jobs", "1"]
    assert parts_tool.main(argv) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'o' / 'part1'}: ")
    assert parts_tool.main(argv) == 2  # packing twice into one folder would mix two packs
    assert capsys.readouterr().err == f"error: {tmp_path / 'o'}: already holds parts; pack into an empty folder\n"
    assert parts_tool.main(["unpack", "--parts", str(tmp_path / "nope"), "--workdir", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope'}: not a folder of packed files\n"
    (tmp_path / "bare").mkdir()
    assert parts_tool.main(["unpack", "--parts", str(tmp_path / "bare"), "--workdir", str(tmp_path / "b")]) == 2
    missing = tmp_path / "b" / "gan" / "discriminator.safetensors"
    assert capsys.readouterr().err == f"error: {missing} missing after unpacking: a part was left out\n"
