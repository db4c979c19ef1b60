"""bench/soup_sweep.py: soups and ensembles of several seeds, measured like the LOFO runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from authenticity.detection import metrics
from authenticity.detection.config import DetectorCfg
from authenticity.detection.model import build_model, load_detector, save_detector
from authenticity.detection.train.finetune import load_items
from bench import lofo, soup_sweep
from bench.soup import soup

from .conftest import write_photo

CFG = DetectorCfg(depth=2)


def _lofo_out(tmp_path: Path, seeds: int = 3) -> tuple[Path, Path]:
    """A workdir whose test split holds real photos and faces and two fake families, and a
    LOFO folder with each seed's all-family weights, scored on that split by lofo._measure."""
    work, out = tmp_path / "work", tmp_path / "lofo"
    for cls, source, n, base in (("real", "photos", 4, 0), ("real", "face", 3, 10), ("fake", "gan", 3, 20),
                                 ("fake", "blend", 3, 30)):  # fmt: skip
        for k in range(n):
            write_photo(work / "dataset" / "test" / cls / source / f"{k}.png", seed=base + k, size=(40, 48))
    test = load_items(work / "dataset", "test")
    for seed in range(seeds):
        torch.manual_seed(seed)
        model = build_model(CFG)
        with torch.no_grad():
            model.head.weight.normal_()  # seeds that disagree, so a soup, an ensemble and a seed differ
        save_detector(model, CFG, out / "weights" / f"s{seed}.safetensors")
        model, cfg = load_detector(out / "weights" / f"s{seed}.safetensors")  # the stored (fp16) weights
        (out / "runs" / f"s{seed}__none").mkdir(parents=True)
        lofo._measure(model, cfg, test, (), "cpu", out / "runs" / f"s{seed}__none" / "scores.npz")
    return work, out


def test_ensembles_average_logits_and_soups_are_scored_anew(tmp_path: Path) -> None:
    work, out = _lofo_out(tmp_path)
    assert soup_sweep.main(["--lofo", str(out), "--workdir", str(work), "--seeds", "s0,s1,s2", "--sizes", "2,3"]) == 0
    runs = [np.load(out / "runs" / f"s{k}__none" / "scores.npz") for k in range(3)]
    y = runs[0]["label"]
    for k in (2, 3):
        ens = json.loads((out / "sweep" / f"ensemble{k}__none.json").read_text())
        mean = np.mean([r["clean"] for r in runs[:k]], axis=0)
        assert ens["of"] == [f"s{i}" for i in range(k)]
        assert ens["clean"]["auc_all"] == pytest.approx(metrics.auc(y, mean))
        real_face = (y == 0) & (runs[0]["source"] == "face")
        cut = np.quantile(mean[y == 1], 0.1)
        assert ens["flagged_reals_at_90tpr"]["face"] == pytest.approx(np.mean(mean[real_face] >= cut))
    # the soup is the weight average, measured again on the test split (its logits are its own)
    model, cfg = soup([out / "weights" / f"s{k}.safetensors" for k in range(2)])
    test = load_items(work / "dataset", "test")
    lofo._measure(model, cfg, test, (), "cpu", tmp_path / "again.npz")
    again = np.load(tmp_path / "again.npz")
    stored = np.load(out / "sweep" / "soup2__none.npz")
    assert np.allclose(stored["clean"], again["clean"], atol=1e-3)
    assert not np.allclose(stored["clean"], np.mean([r["clean"] for r in runs[:2]], axis=0), atol=1e-3)
    soup2 = json.loads((out / "sweep" / "soup2__none.json").read_text())
    assert soup2["clean"]["auc_all"] == pytest.approx(metrics.auc(y, stored["clean"]))
    table = (out / "sweep" / "sweep__none.md").read_text()
    assert "### all families (in distribution)" in table
    for row in ("| s0 |", "| mean of 3 seeds |", "| ensemble of 2 |", "| soup of 3 |"):
        assert row in table


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--sizes", "4"], "error: --sizes '4': each size must be 2..3 (the number of --seeds)"),
        (["--sizes", "1"], "error: --sizes '1': each size must be 2..3 (the number of --seeds)"),
        (["--sizes", "two"], "error: --sizes 'two': give whole numbers, e.g. 2,4"),
        (["--held-out", "none,dcgna"], "error: unknown family dcgna: use none or "),
        (["--held-out", "sd"], "error: missing (run bench/lofo.py --keep-weights first): "),
        (["--pairs", "--sizes", "2"], "error: --pairs takes no --sizes: every pair is an ensemble of two"),
        (["--pairs", "--seeds", "s0"], "error: --pairs needs two or more different runs in --seeds, not 's0'"),
        (["--pairs", "--seeds", "s0,s0"], "error: --pairs needs two or more different runs in --seeds, not 's0,s0'"),
        (["--pairs", "--held-out", "sd"], "error: missing (run bench/lofo.py first): "),
    ],
)
def test_bad_requests_are_one_line_errors_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    work, out = _lofo_out(tmp_path)
    assert soup_sweep.main(["--lofo", str(out), "--workdir", str(work), "--seeds", "s0,s1,s2", *args]) == 2
    err = capsys.readouterr().err  # (a second --seeds wins over the first)
    assert err.startswith(error) and err.count("\n") == 1
    assert not (out / "sweep").exists()


def test_runs_scored_on_different_files_are_not_averaged(tmp_path: Path) -> None:
    _, out = _lofo_out(tmp_path, seeds=2)
    runs = [dict(np.load(out / "runs" / f"s{k}__none" / "scores.npz")) for k in range(2)]
    runs[1]["path"] = runs[1]["path"][::-1]
    with pytest.raises(SystemExit, match=r"^error: the runs were scored on different test files"):
        soup_sweep.ensemble(runs)


def test_a_held_out_family_with_no_test_fakes_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work, out = _lofo_out(tmp_path, seeds=2)
    for k in range(2):  # runs that held out dcgan, on a test split without dcgan fakes
        (out / "weights" / f"s{k}__dcgan.safetensors").write_bytes((out / "weights" / f"s{k}.safetensors").read_bytes())
        (out / "runs" / f"s{k}__dcgan").mkdir()
        (out / "runs" / f"s{k}__dcgan" / "scores.npz").write_bytes(
            (out / "runs" / f"s{k}__none" / "scores.npz").read_bytes()
        )
    args = ["--lofo", str(out), "--workdir", str(work), "--seeds", "s0,s1", "--held-out", "none,dcgan"]
    assert soup_sweep.main(args) == 2
    assert capsys.readouterr().err == "error: the test split holds no fakes of dcgan\n"
    assert not (out / "sweep").exists()


def test_a_corrupt_weight_file_is_a_one_line_error_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work, out = _lofo_out(tmp_path, seeds=2)
    (out / "weights" / "s1.safetensors").write_bytes(b"not safetensors")
    assert soup_sweep.main(["--lofo", str(out), "--workdir", str(work), "--seeds", "s0,s1", "--sizes", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: detector.weights.mismatch: ") and err.count("\n") == 1
    assert not (out / "sweep").exists()


def test_pairs_ensemble_every_pair_of_runs_and_report_the_gain_over_the_pair_mean(tmp_path: Path) -> None:
    work, out = _lofo_out(tmp_path)
    for weights in (out / "weights").iterdir():  # pairs average logits: the weights are not needed
        weights.unlink()
    assert soup_sweep.main(["--lofo", str(out), "--workdir", str(work), "--seeds", "s0,s1,s2", "--pairs"]) == 0
    runs = [np.load(out / "runs" / f"s{k}__none" / "scores.npz") for k in range(3)]
    y = runs[0]["label"]
    written = sorted(p.name for p in (out / "sweep").iterdir())
    assert written == ["pair__s0+s1__none.json", "pair__s0+s2__none.json", "pair__s1+s2__none.json", "pairs__none.md"]
    table = (out / "sweep" / "pairs__none.md").read_text()
    assert "gain over the pair's mean, clean / JPEG 75 |" in table
    for a, b in ((0, 1), (0, 2), (1, 2)):
        pair = json.loads((out / "sweep" / f"pair__s{a}+s{b}__none.json").read_text())
        assert pair["of"] == [f"s{a}", f"s{b}"]
        for condition in ("clean", "jpeg_q75"):
            auc = metrics.auc(y, (runs[a][condition] + runs[b][condition]) / 2)
            alone = [metrics.auc(y, runs[k][condition]) for k in (a, b)]
            assert pair[condition]["auc_all"] == pytest.approx(auc)
            assert pair["gain"][condition] == pytest.approx(auc - sum(alone) / 2)
        gain = pair["gain"]
        assert f"| s{a} + s{b} | {auc_clean(pair):.3f} |" in table
        assert f"{gain['clean']:+.3f} / {gain['jpeg_q75']:+.3f} |" in table
    assert f"| s0 | {metrics.auc(y, runs[0]['clean']):.3f} |" in table


def auc_clean(result: dict[str, Any]) -> float:
    return float(result["clean"]["auc_all"])


def test_pairs_of_runs_that_held_a_family_out_are_scored_on_that_family(tmp_path: Path) -> None:
    work, out = _lofo_out(tmp_path, seeds=2)
    for k in range(2):  # runs that held out gan (scored on the same test split, which has gan fakes)
        (out / "runs" / f"s{k}__gan").mkdir()
        scores = (out / "runs" / f"s{k}__none" / "scores.npz").read_bytes()
        (out / "runs" / f"s{k}__gan" / "scores.npz").write_bytes(scores)
    args = ["--lofo", str(out), "--workdir", str(work), "--seeds", "s0,s1", "--held-out", "none,gan", "--pairs"]
    assert soup_sweep.main(args) == 0
    runs = [np.load(out / "runs" / f"s{k}__gan" / "scores.npz") for k in range(2)]
    y, source = runs[0]["label"], runs[0]["source"]
    gan = (y == 0) | (source == "gan")  # the held-out family against all reals
    pair = json.loads((out / "sweep" / "pair__s0+s1__gan.json").read_text())
    mean = (runs[0]["clean"] + runs[1]["clean"]) / 2
    assert pair["clean"]["per_family"]["gan"] == pytest.approx(metrics.auc(y[gan], mean[gan]))
    alone = [metrics.auc(y[gan], r["clean"][gan]) for r in runs]
    assert pair["gain"]["clean"] == pytest.approx(metrics.auc(y[gan], mean[gan]) - sum(alone) / 2)
    table = (out / "sweep" / "pairs__none-gan.md").read_text()
    assert "### `gan` (held out: unseen)" in table and "### all families (in distribution)" in table
    assert (out / "sweep" / "pair__s0+s1__none.json").is_file()
