"""bench/conditions_by_source.py: each robustness condition, broken down by real source and fake family."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from authenticity.detection.evaluate import score_files
from authenticity.detection.scoring import Detector

_PATH = Path(__file__).resolve().parent.parent / "bench" / "conditions_by_source.py"
_spec = importlib.util.spec_from_file_location("bench_conditions_by_source", _PATH)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _folder(root: Path, fakes: bool = True) -> Path:
    rng = np.random.default_rng(0)
    layout = [("real", "photo", 3, (200, 260)), ("real", "face", 2, (96, 96))]
    if fakes:
        layout += [("fake", "blend", 2, (256, 256)), ("fake", "gan", 1, (64, 64))]
    for cls, source, n, shape in layout:
        (root / cls / source).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
            assert cv2.imwrite(str(root / cls / source / f"{k}.png"), image)
    return root


def test_each_condition_is_scored_per_source_and_the_logits_are_kept(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "split")
    detector = Detector.load()
    result, arrays = bench.measure(detector, folder, ["clean", "upscale_2x"])
    assert result["counts"] == {"real": {"face": 2, "photo": 3}, "fake": {"blend": 2, "gan": 1}}
    assert [row["condition"] for row in result["rows"]] == ["clean", "upscale_2x"]
    clean = result["rows"][0]
    assert set(clean["family_auc"]) == {"blend", "gan"} and set(clean["real_flagged_by_source"]) == {"face", "photo"}
    assert clean["real_flagged_by_source"]["photo"] in {0.0, 1 / 3, 2 / 3, 1.0}
    # the clean logits are those of a plain scoring of the same files, in the listed order
    expected = score_files(detector, [Path(p) for p in arrays["path"]])
    np.testing.assert_allclose(arrays["clean"], expected, rtol=1e-6)
    assert not np.allclose(arrays["clean"], arrays["upscale_2x"])  # the transform was applied
    flagged = [detector.calibrate(z) >= detector.cfg.threshold for z in arrays["clean"]]
    assert clean["real_flagged"] == pytest.approx(np.mean(np.array(flagged)[arrays["y"] == 0]))
    table = bench.to_markdown(result)
    assert table.splitlines()[0] == "| condition | AUC | fakes flagged | reals flagged | face (2) | photo (3) |"
    assert len(table.splitlines()) == 4


def test_the_cli_writes_json_and_logits_and_refuses_what_it_cannot_measure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path / "split")
    out = tmp_path / "r" / "result.json"
    assert bench.main(["--folder", str(folder), "--conditions", "clean,jpeg_q75", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text()) and len(printed["rows"]) == 2
    assert set(np.load(out.with_suffix(".npz")).files) == {"y", "source", "path", "clean", "jpeg_q75"}
    with pytest.raises(SystemExit, match=r"^unknown condition 'upscale_3x'$"):
        bench.main(["--folder", str(folder), "--conditions", "clean,upscale_3x"])
    reals_only = _folder(tmp_path / "reals_only", fakes=False)
    assert bench.main(["--folder", str(reals_only), "--conditions", "clean"]) == 2
    assert capsys.readouterr().err == f"error: usage.eval.folder: {reals_only / 'fake'}: not a folder of images\n"
    (reals_only / "fake" / "gan").mkdir(parents=True)  # a folder, but no image in it
    with pytest.raises(SystemExit, match=r"need real/<source>/ and fake/<family>/ images$"):
        bench.main(["--folder", str(reals_only), "--conditions", "clean"])
    missing = tmp_path / "nope.safetensors"
    assert bench.main(["--folder", str(folder), "--weights", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: detector.weights.not_found: {missing}: detector weights not found\n"


def test_undo_enlargement_scores_doubled_files_close_to_the_files_themselves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path / "split")
    runs = {}
    for flag in ([], ["--undo-enlargement"]):
        out = tmp_path / f"r{len(flag)}" / "result.json"
        assert bench.main(["--folder", str(folder), "--conditions", "clean,upscale_2x", "--out", str(out), *flag]) == 0
        capsys.readouterr()
        runs[bool(flag)] = (json.loads(out.read_text()), np.load(out.with_suffix(".npz")))
    assert runs[False][0]["undo_enlargement"] is False and runs[True][0]["undo_enlargement"] is True
    # noise images are not enlarged: clean logits are the same; doubled ones are scored shrunk back
    np.testing.assert_allclose(runs[True][1]["clean"], runs[False][1]["clean"], rtol=1e-6)
    gap = {k: np.abs(arrays["upscale_2x"] - arrays["clean"]).mean() for k, (_, arrays) in runs.items()}
    assert gap[True] < 0.75 * gap[False], gap  # without the option both runs would be identical
