"""bench/enlargement_found.py: how often the enlargement estimate fires, per source and condition."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from bench import enlargement_found as bench

from .test_resampling import natural, resized


def _folder(root: Path) -> Path:
    for kind, source, factor in (("real", "photo", 1.0), ("fake", "doubled", 2.0)):
        (root / kind / source).mkdir(parents=True)
        for seed in range(2):
            image = natural(160, 200, seed=20 + seed)
            image = resized(image, factor) if factor > 1 else image
            assert cv2.imwrite(str(root / kind / source / f"{seed}.png"), image)
    return root


def test_shares_and_factors_per_group_and_condition(tmp_path: Path) -> None:
    result = bench.measure(_folder(tmp_path / "split"), ["clean", "upscale_2x", "jpeg_q75"])
    clean, doubled, jpeg = (row["groups"] for row in result["rows"])
    assert clean["real/photo"] == {"n": 2, "found": 0.0, "median_factor": None}
    assert clean["fake/doubled"] == {"n": 2, "found": 1.0, "median_factor": pytest.approx(2.0, abs=0.01)}
    assert doubled["real/photo"]["median_factor"] == pytest.approx(2.0, abs=0.01)
    assert doubled["fake/doubled"]["median_factor"] == pytest.approx(4.0, abs=0.05)
    assert jpeg["real/photo"]["found"] == 0.0
    table = bench.to_markdown(result)
    assert table.splitlines()[0] == "| condition | fake/doubled (2) | real/photo (2) |"
    assert table.splitlines()[2] == "| clean | 100 % (2×) | 0 % |"


def test_the_cli_and_its_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path / "split")
    assert bench.main(["--folder", str(folder), "--conditions", "clean"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["condition"] == "clean"
    with pytest.raises(SystemExit, match=r"^unknown condition 'upscale_3x'$"):
        bench.main(["--folder", str(folder), "--conditions", "clean,upscale_3x"])
    with pytest.raises(SystemExit, match=r"not a folder$"):
        bench.main(["--folder", str(tmp_path / "nope")])
    (folder / "real" / "photo" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert bench.main(["--folder", str(folder), "--conditions", "clean"]) == 2
    broken = folder / "real" / "photo" / "broken.png"
    assert capsys.readouterr().err.startswith(f"error: media.decode.failed: {broken}: image does not decode")
