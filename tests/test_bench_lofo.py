"""bench/lofo.py: variant parsing and the report it writes from per-run results."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import NEEDS_SHARED_PHOTOS

_PATH = Path(__file__).resolve().parent.parent / "bench" / "lofo.py"
_spec = importlib.util.spec_from_file_location("bench_lofo", _PATH)
assert _spec is not None and _spec.loader is not None
lofo = importlib.util.module_from_spec(_spec)
sys.modules["bench_lofo"] = lofo
_spec.loader.exec_module(lofo)


def test_a_variant_spec_sets_only_the_fields_it_names() -> None:
    v = lofo.Variant.parse("local:depth=4,steps=300,adv=0,small=0.5,init=imagenet,lofo=0")
    assert (v.name, v.depth, v.steps, v.adv_fraction, v.small_rescale, v.init, v.lofo) == (
        "local", 4, 300, 0.0, 0.5, "imagenet", False
    )  # fmt: skip
    assert lofo.Variant.parse("base") == lofo.Variant("base")
    assert lofo.Variant.parse("npr:input=npr").input_transform == "npr"
    assert lofo.Variant.parse("p:pair=1").pair_blends and not lofo.Variant.parse("p:pair=0").pair_blends
    assert lofo.Variant.parse("s1:seed=1").seed == 1 and lofo.Variant.parse("s").seed is None
    assert lofo.Variant.parse("b:detail=8").detail_bins == 8 and lofo.Variant("b").detail_bins == 0
    assert lofo.Variant.parse("w:weight=sd=0.5+blend=1.2").family_weights == (("blend", 1.2), ("sd", 0.5))
    assert lofo.Variant("w").family_weights == ()
    assert lofo.Variant.parse("e:enlarge=0.25").enlarge == 0.25 and lofo.Variant("e").enlarge == 0.0
    assert lofo.Variant.parse("u:undo=1").undo_enlargement and not lofo.Variant.parse("u:undo=0").undo_enlargement
    assert not lofo.Variant("u").undo_enlargement


def test_an_unknown_variant_key_stops_the_run_with_its_name() -> None:
    with pytest.raises(SystemExit, match="unknown variant key 'depht'"):
        lofo.Variant.parse("x:depht=4")
    with pytest.raises(SystemExit, match="unknown input transform 'fft': use rgb, npr"):
        lofo.Variant.parse("x:input=fft")
    with pytest.raises(SystemExit, match="bad value 'many' for variant key 'detail' in 'x:detail=many'"):
        lofo.Variant.parse("x:detail=many")
    for weight in ("blend", "blnd=2", "blend=0", "blend=-1", "blend=nan", "blend=inf", "blend=lots", "blend=1+blend=2"):
        message = f"bad value '{weight}' for variant key 'weight' in 'x:weight={weight}'"
        with pytest.raises(SystemExit, match="^" + re.escape(message) + "$"):
            lofo.Variant.parse(f"x:weight={weight}")


def test_a_workdir_without_a_dataset_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "gan").mkdir()
    assert lofo.main(["--workdir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "dataset/summary.json missing" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _run(out: Path, variant: str, held_out: str, auc: float, attacks: dict[str, float] | None = None,
         blend_vs_face: float | None = None) -> None:  # fmt: skip
    per_family = {f: (auc if f == held_out else 0.99) for f in lofo.FAMILIES}
    jpeg = {f: a - 0.1 for f, a in per_family.items()}
    clean: dict[str, object] = {"auc_all": 0.9, "auc_seen": 0.95, "per_family": per_family}
    jpeg75: dict[str, object] = {"auc_all": 0.85, "auc_seen": 0.93, "per_family": jpeg}
    if blend_vs_face is not None:
        clean["blend_vs_face"], jpeg75["blend_vs_face"] = blend_vs_face, blend_vs_face - 0.05
    result: dict[str, object] = {"clean": clean, "jpeg_q75": jpeg75}
    if attacks:
        result["attacks"] = attacks
    (out / f"{variant}__{held_out}.json").write_text(json.dumps(result))


def test_the_report_puts_each_held_out_familys_own_auc_in_its_row(tmp_path: Path) -> None:
    for i, family in enumerate(lofo.FAMILIES):
        _run(tmp_path, "base", family, 0.5 + i / 100)
    _run(tmp_path, "base", lofo.ALL, 0.0, {"clean": 0.96, "pgd_1": 0.02})
    _run(tmp_path, "pair", lofo.ALL, 0.0, blend_vs_face=0.8)
    text = lofo.report(tmp_path, [lofo.Variant("base"), lofo.Variant("adv", lofo=False),
                                  lofo.Variant("pair", pair_blends=True, lofo=False)])  # fmt: skip
    for i, family in enumerate(lofo.FAMILIES):
        assert f"| {family} | {0.5 + i / 100:.3f} | {0.4 + i / 100:.3f} |" in text
    assert "| base | 0.950 | 0.900 | 0.850 | — | — |" in text  # no blend-vs-face figure in these runs
    assert "| adv | — | — | — |" in text
    assert "| pair | — | 0.900 | 0.850 | 0.800 | 0.750 |" in text
    assert "| base | 0.960 | 0.020 |" in text
    assert (tmp_path / "lofo.md").read_text() == text


def test_the_report_adds_the_extra_conditions_runs_were_measured_in(tmp_path: Path) -> None:
    family = lofo.FAMILIES[0]
    for variant, auc in (("u", 0.7), ("w", 0.6)):
        _run(tmp_path, variant, family, auc)
        _run(tmp_path, variant, lofo.ALL, 0.0)
        for name in (f"{variant}__{family}", f"{variant}__{lofo.ALL}"):
            run = json.loads((tmp_path / f"{name}.json").read_text())
            run["upscale_2x"] = {**run["clean"], "auc_all": 0.8,
                                 "per_family": {f: a - 0.2 for f, a in run["clean"]["per_family"].items()}}  # fmt: skip
            (tmp_path / f"{name}.json").write_text(json.dumps(run))
    text = lofo.report(tmp_path, [lofo.Variant("u"), lofo.Variant("w")])
    assert "| held-out family | u clean | u jpeg75 | u upscale_2x | w clean | w jpeg75 | w upscale_2x |" in text
    assert f"| {family} | 0.700 | 0.600 | 0.500 | 0.600 | 0.500 | 0.400 |" in text
    assert f"| {lofo.FAMILIES[1]} | — | — | — | — | — | — |" in text
    assert "| all-family model jpeg75 | all-family model upscale_2x | blends vs" in text
    assert "| u | 0.950 | 0.900 | 0.850 | 0.800 | — | — |" in text


def test_an_unknown_condition_is_refused_before_any_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "gan").mkdir(parents=True)
    (work / "dataset").mkdir()
    (work / "dataset" / "summary.json").write_text("{}")
    assert lofo.main(["--workdir", str(work), "--out", str(out), "--conditions", "upscale_2x,jpeg_q7"]) == 2
    assert capsys.readouterr().err.startswith("error: --conditions 'jpeg_q7': use some of jpeg_q90, jpeg_q75,")
    assert not out.exists()


def test_skip_done_reruns_nothing_whose_result_is_in_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "gan").mkdir(parents=True)
    (work / "dataset").mkdir()
    (work / "dataset" / "summary.json").write_text("{}")  # no images: any run that did start would fail
    out.mkdir()
    for i, family in enumerate(lofo.FAMILIES):
        _run(out, "base", family, 0.5 + i / 100)
    _run(out, "base", lofo.ALL, 0.0)
    assert lofo.main(["--workdir", str(work), "--out", str(out), "--variant", "base", "--skip-done"]) == 0
    assert "0 fine-tuning runs" in capsys.readouterr().out
    assert f"| {lofo.FAMILIES[0]} | 0.500 | 0.400 |" in (out / "lofo.md").read_text()


def test_an_averaged_variant_also_reports_its_final_weights(tmp_path: Path) -> None:
    v = lofo.Variant.parse("e:ema=0.998")
    assert v.ema == 0.998 and [a.name for a in v.arms()] == ["e", "e-final"] and v.arms()[1].ema == 0.0
    assert lofo.Variant("base").arms() == [lofo.Variant("base")]
    _run(tmp_path, "e", lofo.FAMILIES[0], 0.7)
    _run(tmp_path, "e-final", lofo.FAMILIES[0], 0.6)
    text = lofo.report(tmp_path, v.arms())
    assert f"| {lofo.FAMILIES[0]} | 0.700 | 0.600 | 0.600 | 0.500 |" in text


def test_unseen_points_take_each_runs_own_held_out_family(tmp_path: Path) -> None:
    first, second = lofo.FAMILIES[0], lofo.FAMILIES[1]
    _run(tmp_path, "s0", first, 0.6)
    _run(tmp_path, "s1", first, 0.7)
    _run(tmp_path, "x", first, 0.9)  # a variant without LOFO runs: its files are not points
    _run(tmp_path, "s0", second, 0.8)
    broken = json.loads((tmp_path / f"s0__{second}.json").read_text())
    del broken["jpeg_q75"]["per_family"][second]  # a run that did not measure its family after JPEG
    (tmp_path / f"s0__{second}.json").write_text(json.dumps(broken))
    points = lofo.unseen_points(tmp_path, [lofo.Variant("s0"), lofo.Variant("s1"), lofo.Variant("x", lofo=False)])
    assert set(points) == {first}
    assert [(name, round(c, 3), round(j, 3)) for name, c, j in points[first]] == [("s0", 0.6, 0.5), ("s1", 0.7, 0.6)]


def test_report_only_draws_the_plot_from_out_without_a_workdir(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    for i, family in enumerate(lofo.FAMILIES):
        _run(tmp_path, "base", family, 0.5 + i / 100)
    png = tmp_path / "plots" / "unseen.png"
    assert lofo.main(["--out", str(tmp_path), "--report-only", "--variant", "base", "--plot", str(png)]) == 0
    assert f"| {lofo.FAMILIES[0]} | 0.500 | 0.400 |" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import cv2

    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] > image.shape[0] > 200


def test_report_only_refuses_a_missing_results_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lofo.main(["--out", str(tmp_path / "nowhere"), "--report-only"]) == 2
    assert f"error: {tmp_path / 'nowhere'}: no results folder to report on" in capsys.readouterr().err


def test_a_plot_of_no_results_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"no leave-one-family-out results to plot for {tmp_path / 'e.png'}")
    ):
        lofo.plot_unseen({}, tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()


def test_report_only_refuses_variants_with_no_results_and_leaves_out_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(tmp_path, "d0", lofo.FAMILIES[0], 0.6)
    (tmp_path / "lofo.md").write_text("earlier tables\n")
    assert lofo.main(["--out", str(tmp_path), "--report-only", "--variant", "base"]) == 2
    assert f"error: {tmp_path}: no results of variant base (pass the --variant names" in capsys.readouterr().err
    assert (tmp_path / "lofo.md").read_text() == "earlier tables\n"


def test_report_only_with_a_plot_but_only_all_family_runs_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(tmp_path, "base", lofo.ALL, 0.0)
    png = tmp_path / "u.png"
    assert lofo.main(["--out", str(tmp_path), "--report-only", "--variant", "base", "--plot", str(png)]) == 2
    assert f"error: no leave-one-family-out results to plot for {png}" in capsys.readouterr().err
    assert not png.exists()


def test_training_without_a_workdir_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lofo.main(["--out", str(tmp_path / "out")]) == 2
    assert "error: --workdir is needed to train (or pass --report-only)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _test_split(workdir: Path, sizes: dict[str, int]) -> None:
    (workdir / "gan").mkdir(parents=True)
    (workdir / "dataset").mkdir()
    (workdir / "dataset" / "summary.json").write_text("{}")
    for source, n in sizes.items():
        folder = workdir / "dataset" / "test" / source
        folder.mkdir(parents=True)
        for i in range(n):
            (folder / f"{i:02d}.png").write_bytes(f"{source}{i}".encode())


def test_attack_subset_links_ten_files_per_test_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _test_split(tmp_path / "w", {"real/photo": 25, "real/face": 4, "fake/gan": 12})
    args = ["--workdir", str(tmp_path / "w"), "--attack-subset", "--seed", "3"]
    assert lofo.main([*args, "--out", str(tmp_path / "a")]) == 0
    assert f"24 test files in {tmp_path / 'a'}" in capsys.readouterr().out
    drawn = {p.relative_to(tmp_path / "a").as_posix(): p for p in (tmp_path / "a").glob("*/*/*.png")}
    assert sum(k.startswith("real/photo/") for k in drawn) == 10
    assert sum(k.startswith("real/face/") for k in drawn) == 4
    assert sum(k.startswith("fake/gan/") for k in drawn) == 10
    assert all(p.is_symlink() and p.resolve() == (tmp_path / "w" / "dataset" / "test" / k).resolve()
               for k, p in drawn.items())  # fmt: skip
    assert lofo.main([*args, "--out", str(tmp_path / "b")]) == 0  # the same seed draws the same files
    assert sorted(drawn) == sorted(p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b").glob("*/*/*.png"))
    assert not (tmp_path / "w" / "runs").exists() and not list((tmp_path / "w").glob("*.json"))


def test_attack_subset_refuses_a_folder_already_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _test_split(tmp_path / "w", {"real/photo": 3, "fake/gan": 3})
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "keep.txt").write_text("mine")
    assert lofo.main(["--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "a"), "--attack-subset"]) == 2
    assert f"error: {tmp_path / 'a'}: already there (the subset goes into a new or empty folder)" in (
        capsys.readouterr().err
    )
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["keep.txt"]
    assert (tmp_path / "a" / "keep.txt").read_text() == "mine"


@pytest.mark.slow
@NEEDS_SHARED_PHOTOS
@pytest.mark.usefixtures("one_omp_thread")
def test_an_undo_variant_trains_and_scores_shrunk_back_in_every_condition_asked(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from authenticity.cli.app import app
    from authenticity.detection.evaluate import ROBUSTNESS, score_files
    from authenticity.detection.model import load_detector
    from authenticity.detection.scoring import Detector

    work, out = tmp_path / "work", tmp_path / "lofo"
    built = CliRunner().invoke(app, ["detector", "train", "--quick", "--workdir", str(work),
                                     "--out", str(tmp_path / "quick.safetensors")])  # fmt: skip
    assert built.exit_code == 0, built.output
    conditions = ("clean", "jpeg_q75", "upscale_2x")
    result = lofo.run_one(work, lofo.Variant.parse("u:steps=2,adv=0,undo=1"), lofo.ALL, out, False, 0,
                          conditions=conditions)  # fmt: skip
    assert result["variant"]["undo_enlargement"] is True
    assert [c for c in conditions if set(result[c]["per_family"])] == list(conditions)
    assert 0.0 <= result["upscale_2x"]["auc_all"] <= 1.0
    scores = np.load(out / "runs" / f"u__{lofo.ALL}" / "scores.npz")
    assert scores["upscale_2x"].shape == scores["clean"].shape == (result["n_test"],)
    weights = out / "weights" / "u.safetensors"
    assert load_detector(weights)[1].undo_enlargement
    # the doubled files were scored shrunk back: the saved model scores them alike with the option, not without
    doubled = [Path(p) for p in scores["path"]]
    on = score_files(Detector.load(weights), doubled, ROBUSTNESS["upscale_2x"])
    off = score_files(Detector.load(weights, undo_enlargement=False), doubled, ROBUSTNESS["upscale_2x"])
    assert np.allclose(on, scores["upscale_2x"], atol=0.05)
    assert not np.allclose(off, scores["upscale_2x"], atol=0.05)


def _scores(out: Path, variant: str) -> Path:
    """An all-family run's logits: 8 fakes at 1..8, reals of two sources around them."""
    folder = out / "runs" / f"{variant}__{lofo.ALL}"
    folder.mkdir(parents=True)
    label = np.array([1] * 8 + [0] * 6)
    source = np.array(["gan"] * 8 + ["face"] * 4 + ["photo"] * 2)
    clean = np.array([1, 2, 3, 4, 5, 6, 7, 8, 0.5, 3.5, 7.5, 9.0, 0.0, 2.0])
    np.savez_compressed(folder / "scores.npz", path=np.array([f"{i}.png" for i in range(14)]), label=label,
                        source=source, clean=clean, jpeg_q75=clean - 10.0 * (label == 0))  # fmt: skip
    return folder / "scores.npz"


def test_matched_flags_counts_each_real_source_over_the_line_that_flags_that_share_of_fakes(tmp_path: Path) -> None:
    flags = lofo.matched_flags(_scores(tmp_path, "w"), 0.5)  # the line: the fakes' median, 4.5
    assert flags["clean"] == {"reals": 2 / 6, "face": 2 / 4, "photo": 0.0}
    assert flags["jpeg_q75"] == {"reals": 0.0, "face": 0.0, "photo": 0.0}


def test_the_report_tables_reals_flagged_at_matched_fakes_where_logits_were_kept(tmp_path: Path) -> None:
    _run(tmp_path, "w", lofo.ALL, 0.0)
    _run(tmp_path, "ue", lofo.ALL, 0.0)
    _scores(tmp_path, "w")  # "ue" kept no logits: no rows of its own
    text = lofo.report(tmp_path, [lofo.Variant("w"), lofo.Variant("ue")])
    assert f"where it flags {lofo.MATCHED_TPR:.0%} of the fakes" in text
    assert "| variant | condition | reals | face | photo |" in text
    # 85 % of the fakes: the line at the 15th percentile of 1..8 (2.05); face 3.5, 7.5, 9.0 over it
    assert "| w | clean | 50.0% | 75.0% | 0.0% |" in text
    assert "| w | jpeg_q75 | 0.0% | 0.0% | 0.0% |" in text
    assert "| ue |" not in text.split("where it flags")[1]
    assert "where it flags" not in lofo.report(tmp_path / "runs", [lofo.Variant("w")])
