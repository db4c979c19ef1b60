"""Ensembles of fine-tunings: one network whose logit is the mean of its members', saved,
loaded, exported and calibrated like a single one (`detector combine`, `detector train --members`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from authenticity.cli.app import app
from authenticity.detection import metrics
from authenticity.detection.config import DetectorCfg, load_cfg
from authenticity.detection.evaluate import score_files
from authenticity.detection.model import DetectorEnsemble, DetectorNet, build_model, load_detector, save_detector
from authenticity.detection.preprocess import normalize
from authenticity.detection.scoring import Detector
from authenticity.detection.train.finetune import load_items
from authenticity.errors import ConfigError

from .conftest import NEEDS_SHARED_PHOTOS, train_params, write_photo

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
TINY = DetectorCfg(name="tiny", arch="test_efficientnet", tile_size=32, max_tiles=4)


def _net(seed: int, cfg: DetectorCfg = TINY) -> DetectorNet:
    torch.manual_seed(seed)
    net = build_model(cfg).eval()
    with torch.no_grad():
        net.head.weight.normal_()  # members that disagree
    return net


def _member(path: Path, seed: int, cfg: DetectorCfg = TINY) -> Path:
    save_detector(_net(seed, cfg), cfg.model_copy(update={"training": {"seed": seed, **cfg.training}}), path)
    return path


def _tiles(n: int = 5) -> torch.Tensor:
    return torch.from_numpy(normalize(np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), TINY))


def test_an_ensemble_scores_the_mean_of_its_members_logits_and_round_trips(tmp_path: Path) -> None:
    nets = [_net(seed) for seed in range(3)]
    ensemble = DetectorEnsemble(nets).eval()
    x = _tiles()
    with torch.inference_mode():
        each = torch.stack([n(x) for n in nets])
        assert torch.allclose(ensemble(x), each.mean(0), atol=1e-6)
        assert not torch.allclose(each[0], each[1], atol=1e-3)
    saved = save_detector(ensemble, TINY.model_copy(update={"members": 3}), tmp_path / "e.safetensors")
    model, cfg = load_detector(tmp_path / "e.safetensors")
    assert isinstance(model, DetectorEnsemble) and cfg.members == 3 and cfg.weights_sha256 == saved.weights_sha256
    with torch.inference_mode():  # stored as fp16, like every detector
        assert torch.allclose(model(x), each.mean(0), atol=2e-2)
        assert torch.allclose(model(x), torch.stack([m(x) for m in model.members]).mean(0), atol=1e-6)


def test_a_cfg_and_a_network_that_disagree_on_members_are_refused(tmp_path: Path) -> None:
    weights = tmp_path / "one.safetensors"
    with pytest.raises(ConfigError, match=r"^the cfg says 2 member\(s\), the network holds 1$") as caught:
        save_detector(_net(0), TINY.model_copy(update={"members": 2}), weights)
    assert caught.value.code == "detector.members.invalid" and not weights.exists()
    save_detector(_net(0), TINY, weights)
    cfg_path = weights.with_suffix(".json")
    data = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**data, "members": 2}))
    with pytest.raises(ConfigError, match=r"weights do not fit test_efficientnet$") as caught:
        load_detector(weights)
    assert caught.value.code == "detector.weights.invalid"
    cfg_path.write_text(json.dumps({**data, "members": 0}))
    with pytest.raises(ConfigError, match=r"members: Input should be greater than or equal to 1$"):
        load_cfg(cfg_path)
    with pytest.raises(ConfigError, match=r"^an ensemble needs at least two members, not 1$"):
        DetectorEnsemble([_net(0)])


def test_an_ensemble_exports_to_onnx_with_the_same_logits(tmp_path: Path) -> None:
    from authenticity.detection.onnx_runtime import OnnxDetector, export_onnx

    save_detector(
        DetectorEnsemble([_net(0), _net(1)]), TINY.model_copy(update={"members": 2}), tmp_path / "e.safetensors"
    )
    onnx_path = export_onnx(tmp_path / "e.safetensors", tmp_path / "onnx" / "e.onnx")
    tiles = _tiles().numpy()
    ours = OnnxDetector.load(onnx_path).tile_logits(tiles)
    with torch.inference_mode():
        theirs = Detector.load(tmp_path / "e.safetensors").tile_logits(tiles)
    assert ours == pytest.approx(theirs, abs=1e-4)


def _workdir(root: Path) -> Path:
    """A training workdir's dataset: val and test splits of real photos and two fake sources."""
    for split, offset in (("val", 0), ("test", 100)):
        for cls, source, base in (("real", "photo", 0), ("fake", "gan", 30), ("fake", "sd", 60)):
            for k in range(4):
                write_photo(root / "dataset" / split / cls / source / f"{k}.png", seed=offset + base + k, size=(40, 48))
    (root / "dataset" / "summary.json").write_text(json.dumps({"counts": {"test": 12}}))
    return root


def test_combine_calibrates_the_ensemble_on_the_val_split_and_names_its_members(tmp_path: Path) -> None:
    work = _workdir(tmp_path / "work")
    a, b = _member(tmp_path / "a.safetensors", 0), _member(tmp_path / "b.safetensors", 1)
    out = tmp_path / "ens" / "detector.safetensors"
    args = ["detector", "combine", "--weights", str(a), "--weights", str(b), "--workdir", str(work), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"saved {out} (2 members, sha256 ")
    model, cfg = load_detector(out)
    assert isinstance(model, DetectorEnsemble) and cfg.members == 2 and cfg.arch == "test_efficientnet"
    assert [m["weights"] for m in cfg.training["members"]] == ["a.safetensors", "b.safetensors"]
    assert cfg.training["members"][1] == {"weights": "b.safetensors", "sha256": load_detector(b)[1].weights_sha256,
                                          "training": {"seed": 1}}  # fmt: skip
    assert cfg.training["command"] == "authenticity detector combine" and cfg.training["dataset"] == {"test": 12}
    # the calibration is the ensemble's own: fitted on its val logits (the members' mean)
    val = load_items(work / "dataset", "val")
    paths = [i.path for i in val]
    y = np.array([i.label for i in val])
    members = [score_files(Detector.load(p), paths) for p in (a, b)]
    z = np.asarray(score_files(Detector(model, cfg), paths), np.float64)
    assert z == pytest.approx(np.mean(members, axis=0), abs=1e-4)
    temperature, bias = metrics.fit_temperature(z, y, balanced=True)  # each class as a half
    assert (cfg.temperature, cfg.logit_bias) == pytest.approx((temperature, bias), abs=1e-6)
    assert cfg.metrics["val"]["auc"] == pytest.approx(metrics.auc(y, z))
    assert (cfg.metrics["test"]["n_real"], cfg.metrics["test"]["n_fake"]) == (4, 8)
    assert set(cfg.metrics["test"]["per_family"]) == {"gan", "sd"}


def test_combining_an_ensemble_with_a_network_gives_one_flat_ensemble(tmp_path: Path) -> None:
    work = _workdir(tmp_path / "work")
    a, b, c = (_member(tmp_path / f"{n}.safetensors", k) for k, n in enumerate("abc"))
    pair = tmp_path / "pair.safetensors"
    assert runner.invoke(app, ["detector", "combine", "--weights", str(a), "--weights", str(b),
                               "--workdir", str(work), "--out", str(pair)]).exit_code == 0  # fmt: skip
    three = tmp_path / "three.safetensors"
    result = runner.invoke(app, ["detector", "combine", "--weights", str(pair), "--weights", str(c),
                                 "--workdir", str(work), "--out", str(three)])  # fmt: skip
    assert result.exit_code == 0, result.output
    model, cfg = load_detector(three)
    assert cfg.members == 3 and isinstance(model, DetectorEnsemble) and len(model.members) == 3
    x = _tiles()
    with torch.inference_mode():
        singles = [load_detector(p)[0](x) for p in (a, b, c)]
        assert torch.allclose(model(x), torch.stack(singles).mean(0), atol=1e-5)


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("one", "error: detector.members.invalid: an ensemble needs at least two weight files"),
        ("mismatch", "error: detector.members.mismatch: "),
        ("no-dataset", "error: detector.data.missing: "),
        ("missing", "error: detector.weights.not_found: "),
    ],
)
def test_combine_refusals_are_one_line_errors_that_write_nothing(tmp_path: Path, case: str, error: str) -> None:
    work = _workdir(tmp_path / "work")
    a = _member(tmp_path / "a.safetensors", 0)
    b = _member(
        tmp_path / "b.safetensors", 1, TINY.model_copy(update={"tile_size": 64}) if case == "mismatch" else TINY
    )
    weights = {"one": [a], "mismatch": [a, b], "no-dataset": [a, b], "missing": [a, tmp_path / "none.safetensors"]}
    if case == "no-dataset":
        work = tmp_path / "empty"
    out = tmp_path / "out.safetensors"
    args = [x for w in weights[case] for x in ("--weights", str(w))]
    result = runner.invoke(app, ["detector", "combine", *args, "--workdir", str(work), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr.startswith(error) and result.stderr.count("\n") == 1
    if case == "mismatch":
        assert result.stderr.endswith(f"{b}: differs from {a} in tile_size\n")
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_train_refuses_no_members(tmp_path: Path) -> None:
    args = ["--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "d.safetensors"), "--members", "0"]
    result = runner.invoke(app, ["detector", "train", "--quick", *args])
    assert result.exit_code == 2
    assert result.stderr == "error: usage.train.members: --members 0: use at least 1\n"
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
@NEEDS_SHARED_PHOTOS
@pytest.mark.usefixtures("one_omp_thread")
def test_train_with_two_members_fine_tunes_two_seeds_into_one_calibrated_ensemble(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "d.safetensors"
    args = ["--quick", "--workdir", str(work), "--out", str(out), "--members", "2"]
    result = runner.invoke(app, ["detector", "train", *args])
    assert result.exit_code == 0, result.output
    model, cfg = load_detector(out)
    assert isinstance(model, DetectorEnsemble) and cfg.members == 2
    assert cfg.training["member_seeds"] == [0, 1] and cfg.training["finetune"]["seed"] == 0
    assert (work / "finetune.pt").is_file() and (work / "member1" / "finetune.pt").is_file()
    first, second = (dict(m.named_parameters())["head.weight"] for m in model.members)
    assert not torch.equal(first, second)  # two seeds, two networks
    assert "test" in cfg.metrics and cfg.temperature > 0


@pytest.mark.parametrize(("args", "members"), [
    ([], 1),  # the shipped recipe: SHIPPED_MEMBERS
    (["--members", "1"], 1),
    (["--members", "4"], 4),
    (["--quick"], 1),
    (["--quick", "--members", "2"], 2),
])  # fmt: skip
def test_the_shipped_recipe_and_a_quick_run_train_one_member_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], members: int
) -> None:
    from authenticity.detection.config import SHIPPED_MEMBERS

    assert train_params(monkeypatch, tmp_path, args).members == members and SHIPPED_MEMBERS == 1


def test_combine_keeps_families_the_members_never_saw_out_of_calibration(tmp_path: Path) -> None:
    work = _workdir(tmp_path / "work")
    held_out = TINY.model_copy(update={"training": {"finetune": {"exclude_families": ["sd"]}}})
    a, b = (_member(tmp_path / f"{n}.safetensors", k, held_out) for k, n in enumerate("ab"))
    out = tmp_path / "e.safetensors"
    result = runner.invoke(app, ["detector", "combine", "--weights", str(a), "--weights", str(b),
                                 "--workdir", str(work), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    cfg = load_detector(out)[1]
    assert set(cfg.metrics["val"]["per_family"]) == {"gan"}  # sd was never trained on: not in the fit
    assert set(cfg.metrics["test"]["per_family"]) == {"gan", "sd"}  # but measured, as train does
    assert cfg.metrics["val"]["n_fake"] == 4


@pytest.mark.parametrize(
    ("other", "what"),
    [
        ({"training": {"finetune": {"exclude_families": ["sd"]}}}, "excluded families"),
        ({"threshold": 0.7}, "threshold"),
    ],
)
def test_combine_refuses_members_that_left_out_other_families_or_decide_otherwise(
    tmp_path: Path, other: dict, what: str
) -> None:
    work = _workdir(tmp_path / "work")
    a = _member(tmp_path / "a.safetensors", 0)
    b = _member(tmp_path / "b.safetensors", 1, TINY.model_copy(update=other))
    out = tmp_path / "e.safetensors"
    result = runner.invoke(app, ["detector", "combine", "--weights", str(a), "--weights", str(b),
                                 "--workdir", str(work), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == f"error: detector.members.mismatch: {b}: differs from {a} in {what}\n"
    assert not out.exists()


def test_a_quick_run_keeps_its_seed_and_exclusions_for_every_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = train_params(monkeypatch, tmp_path, ["--quick", "--seed", "5", "--members", "2", "--exclude-family", "sd"])
    assert (params.seed, params.finetune.seed, params.finetune.exclude_families) == (5, 5, ("sd",))
