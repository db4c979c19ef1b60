"""bench/workdir_parts.py: a workdir in size-capped parts of lossless WebP, and back, pixels unchanged."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

_PATH = Path(__file__).resolve().parent.parent / "bench" / "workdir_parts.py"
_spec = importlib.util.spec_from_file_location("bench_workdir_parts", _PATH)
assert _spec is not None and _spec.loader is not None
parts_tool = importlib.util.module_from_spec(_spec)
sys.modules["bench_workdir_parts"] = parts_tool  # worker processes find the job functions by name
_spec.loader.exec_module(parts_tool)
PackError = parts_tool.PackError
CAP = 3_500  # bytes: the fixture's workdir then needs three parts


def _workdir(root: Path) -> dict[str, np.ndarray]:
    """A finished-looking workdir: a discriminator, a summary, and images of several kinds."""
    rng = np.random.default_rng(0)
    images = {
        "dataset/train/real/photo/a.png": rng.integers(0, 256, (30, 30, 3), dtype=np.uint8),
        "dataset/train/fake/gan/b.png": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
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


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_packed_workdir_unpacks_to_the_same_pixels_in_capped_parts(tmp_path: Path, jobs: int) -> None:
    images = _workdir(tmp_path / "w")
    cap = CAP
    parts = parts_tool.pack(tmp_path / "w", tmp_path / "out", cap, jobs=jobs)
    assert len(parts) >= 2 and [p.name for p in parts] == [f"part{i + 1}" for i in range(len(parts))]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in parts)  # nothing else
    for k, part in enumerate(parts, 1):
        files = [f for f in part.rglob("*") if f.is_file() and f.name != parts_tool.MANIFEST]
        assert sum(f.stat().st_size for f in files) <= cap
        manifest = json.loads((part / parts_tool.MANIFEST).read_text())
        assert manifest == {"part": k, "of": len(parts), "files": len(files)}
    n = parts_tool.unpack(parts, tmp_path / "back", jobs=jobs)
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


def test_a_pack_that_cannot_be_made_leaves_nothing_behind(tmp_path: Path) -> None:
    _workdir(tmp_path / "w")
    too_big = r"^dataset/train/fake/gan/b.webp: \d+ bytes, more than a part may hold \(500\); raise --part-mb$"
    with pytest.raises(PackError, match=too_big):
        parts_tool.pack(tmp_path / "w", tmp_path / "out", 500, jobs=1)
    assert not (tmp_path / "out").exists()
    with pytest.raises(PackError, match=r"^a part must hold something: 0 bytes asked$"):
        parts_tool.pack(tmp_path / "w", tmp_path / "out", 0, jobs=1)
    (tmp_path / "w/dataset/test/fake/sd/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / "kept").mkdir()  # an empty folder given as --out stays, empty
    with pytest.raises(PackError, match=r"broken.png: not a readable image$"):
        parts_tool.pack(tmp_path / "w", tmp_path / "kept", CAP, jobs=1)
    assert list((tmp_path / "kept").iterdir()) == []


def test_unpack_refuses_a_missing_foreign_or_incomplete_part_before_writing(tmp_path: Path) -> None:
    _workdir(tmp_path / "w")
    parts = parts_tool.pack(tmp_path / "w", tmp_path / "out", CAP, jobs=1)
    assert len(parts) >= 3
    with pytest.raises(PackError, match=rf"^parts 1, 3 given, but the pack has {len(parts)}: pass every part"):
        parts_tool.unpack([parts[0], parts[2]], tmp_path / "back", jobs=1)
    assert not (tmp_path / "back").exists()
    (tmp_path / "foreign").mkdir()
    with pytest.raises(PackError, match=r"foreign: no readable workdir_parts.json; not a part written by `pack`$"):
        parts_tool.unpack([*parts, tmp_path / "foreign"], tmp_path / "back", jobs=1)
    copy = tmp_path / "copy"
    shutil.copytree(parts[0], copy)
    next(f for f in copy.rglob("*.webp")).unlink()  # a transfer that lost a file
    with pytest.raises(PackError, match=r"copy: \d+ files, its manifest says \d+: an incomplete copy$"):
        parts_tool.unpack([copy, *parts[1:]], tmp_path / "back", jobs=1)
    assert not (tmp_path / "back").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep me")
    with pytest.raises(PackError, match=r"busy: not empty; unpack into a new folder$"):
        parts_tool.unpack(parts, tmp_path / "busy", jobs=1)
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["mine.txt"]


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
    assert capsys.readouterr().err == f"error: {tmp_path / 'o'}: not empty; pack into a new folder\n"
    assert parts_tool.main(["unpack", "--parts", str(tmp_path / "nope"), "--workdir", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope'}: not a folder of packed files\n"
    assert parts_tool.main(["unpack", "--parts", str(tmp_path / "o" / "part1"), "--workdir", str(tmp_path / "b"),
                            "--jobs", "1"]) == 0  # fmt: skip
    assert capsys.readouterr().out == f"{tmp_path / 'b'}: 4 images\n"
