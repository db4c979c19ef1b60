"""bench/flagged_reals.py: which real images are flagged, grouped by their source photo."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from authenticity.detection.scoring import Detector

_PATH = Path(__file__).resolve().parent.parent / "bench" / "flagged_reals.py"
_spec = importlib.util.spec_from_file_location("bench_flagged_reals", _PATH)
assert _spec is not None and _spec.loader is not None
flagged = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(flagged)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    names_by_split = (
        ("test", ["set5__a__0", "set5__a__1", "set5__b__0"]),
        ("val", ["LIVE1__c"]),
        ("train", ["set5__d__0"]),
    )
    for split, names in names_by_split:
        folder = root / split / "real" / "face"
        folder.mkdir(parents=True)
        for name in names:
            assert cv2.imwrite(str(folder / f"{name}.png"), rng.integers(0, 256, (96, 80, 3), dtype=np.uint8))
    return root


def test_flagged_images_are_grouped_by_their_source_photo(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "dataset")
    lenient = Detector.load()
    strict = Detector(lenient.model, lenient.cfg.model_copy(update={"threshold": 0.0}))  # flags everything
    report = flagged.measure(strict, dataset, ["test", "val"], ["face"])
    face = report["face"]
    assert (face["images"], face["photos"], face["flagged"]) == (4, 3, 4)  # train's d is not in the chosen splits
    assert [(g["photo"], g["flagged"], g["of"]) for g in face["groups"]] == [
        ("set5__a", 2, 2),
        ("LIVE1__c", 1, 1),
        ("set5__b", 1, 1),
    ]
    assert all(g["size"] == [96, 80] and g["grey"] is False and 0.0 <= g["max_p"] <= 1.0 for g in face["groups"])
    never = Detector(lenient.model, lenient.cfg.model_copy(update={"threshold": 1.01}))
    assert flagged.measure(never, dataset, ["test"], ["face"])["face"] == {"images": 3, "photos": 2, "flagged": 0,
                                                                          "groups": []}  # fmt: skip


def test_the_cli_prints_json_and_refuses_what_it_cannot_measure(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    dataset = _dataset(tmp_path / "dataset")
    assert flagged.main(["--dataset", str(dataset), "--sources", "face"]) == 0
    assert json.loads(capsys.readouterr().out)["face"]["images"] == 4
    with pytest.raises(SystemExit, match=r"no real/photo images in split\(s\) test, val$"):
        flagged.main(["--dataset", str(dataset)])
    missing = tmp_path / "nope.safetensors"
    assert flagged.main(["--dataset", str(dataset), "--weights", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: detector.weights.not_found: {missing}: detector weights not found\n"
