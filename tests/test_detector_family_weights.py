"""TrainParams.family_weights: one fake family drawn more (or less) often than the others."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from authenticity.cli.app import app
from authenticity.detection.config import DetectorCfg
from authenticity.detection.model import build_model
from authenticity.detection.preprocess import fine_detail
from authenticity.detection.train.finetune import Item, TrainParams, _Sampler, finetune, load_items
from tests.conftest import train_params


def _items(root: Path, fakes: dict[str, list[float]], reals: list[float]) -> list[Item]:
    """Mid-grey 64-px images with Gaussian noise of each sigma (fine detail grows with it)."""
    rng = np.random.default_rng(0)
    for cls, groups in (("fake", fakes), ("real", {"r": reals})):
        for source, sigmas in groups.items():
            (root / "train" / cls / source).mkdir(parents=True, exist_ok=True)
            for k, sigma in enumerate(sigmas):
                image = np.clip(128 + rng.normal(0, sigma, (64, 64, 3)), 0, 255).astype(np.uint8)
                cv2.imwrite(str(root / "train" / cls / source / f"{k:03d}.png"), image)
    return load_items(root, "train")


def _family_shares(sampler: _Sampler, draws: int = 6000) -> dict[str, float]:
    counts = Counter(sampler._fake().source for _ in range(draws))
    return {family: n / draws for family, n in sorted(counts.items())}


def test_a_weight_sets_its_familys_share_of_the_fake_draws(tmp_path: Path) -> None:
    # a holds 2 files, b 6, c 1: by family, not by file
    items = _items(tmp_path, {"a": [1, 2], "b": [1] * 6, "c": [3]}, [1, 5])
    shares = _family_shares(_Sampler(items, random.Random(0), family_weights={"a": 3.0}))
    assert shares == pytest.approx({"a": 0.6, "b": 0.2, "c": 0.2}, abs=0.03)
    shares = _family_shares(_Sampler(items, random.Random(0), family_weights={"c": 0.25}))
    assert shares == pytest.approx({"a": 4 / 9, "b": 4 / 9, "c": 1 / 9}, abs=0.03)
    assert _family_shares(_Sampler(items, random.Random(0))) == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3},
                                                                              abs=0.03)  # fmt: skip


@pytest.mark.parametrize("weights", [{}, {"a": 1.0}, {"a": 1.0, "b": 1.0}, {"zzz": 5.0}])
def test_weights_of_one_or_of_absent_families_leave_the_draws_unchanged(
    tmp_path: Path, weights: dict[str, float]
) -> None:
    """Known answer: the batch and the random stream of the unweighted sampler, bit for bit."""
    items = _items(tmp_path, {"a": [1, 2, 3], "b": [2, 3]}, [1, 5, 9, 20])
    plain, weighted = _Sampler(items, random.Random(3)), _Sampler(items, random.Random(3), family_weights=weights)
    x0, y0 = plain.batch(12, 32, np.random.default_rng(5))
    x1, y1 = weighted.batch(12, 32, np.random.default_rng(5))
    assert np.array_equal(x0, x1) and np.array_equal(y0, y1)
    assert plain.rng.getstate() == weighted.rng.getstate()


def test_a_weighted_sampler_draws_another_batch(tmp_path: Path) -> None:
    items = _items(tmp_path, {"a": [1, 2, 3], "b": [20, 30]}, [1, 5, 9, 20])
    x0, _ = _Sampler(items, random.Random(3)).batch(12, 32, np.random.default_rng(5))
    x1, _ = _Sampler(items, random.Random(3), family_weights={"b": 4.0}).batch(12, 32, np.random.default_rng(5))
    assert not np.array_equal(x0, x1)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_weight_that_is_not_positive_and_finite_is_refused(tmp_path: Path, bad: float) -> None:
    items = _items(tmp_path, {"a": [1], "b": [2]}, [3])
    message = r"^family weights must be positive and finite: \{'a': 2.0, 'b': " + repr(bad) + r"\}$"
    with pytest.raises(ValueError, match=message):
        _Sampler(items, random.Random(0), family_weights={"a": 2.0, "b": bad})


def test_the_detail_cuts_follow_the_weighted_draws(tmp_path: Path) -> None:
    # a: 2 smooth files; b: 8 detailed ones. Uniform, a is half the draws and the median fake draw
    # is a's sharper file. With b weighted 3, a is a quarter (1/8 a file), b three quarters
    # (3/32 a file): the cumulative weights run 1/8, 1/4, 11/32, 14/32, 17/32, so the median
    # fake draw is b's third file (sigma 12).
    items = _items(tmp_path, {"a": [1.0, 2.0], "b": [10.0 + k for k in range(8)]}, [1.5, 5.0, 30.0])
    uniform = _Sampler(items, random.Random(0), detail_bins=2, tile_size=64)
    weighted = _Sampler(items, random.Random(0), detail_bins=2, tile_size=64, family_weights={"b": 3.0})
    a_sharper = next(i for i in items if i.source == "a" and i.path.name == "001.png")
    b_third = next(i for i in items if i.source == "b" and i.path.name == "002.png")
    assert uniform.detail_cuts == [fine_detail(uniform._image(a_sharper.path), 64)]
    assert weighted.detail_cuts == [fine_detail(weighted._image(b_third.path), 64)]
    assert [sorted(i.path.name for i in b) for b in uniform.real_bins] == [["000.png"], ["001.png", "002.png"]]
    assert [sorted(i.path.name for i in b) for b in weighted.real_bins] == [["000.png", "001.png"], ["002.png"]]


def test_finetune_records_the_weights_and_resumes_only_under_the_same_ones(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    items = _items(tmp_path, {"a": [1, 2, 3, 4], "b": [2, 3]}, [1, 5, 9, 20, 30, 40])
    cfg = DetectorCfg(arch="test_efficientnet", tile_size=32, max_tiles=4)
    run = tmp_path / "run"
    run.mkdir()
    weighted = TrainParams(steps=2, batch=4, adv_fraction=0.0, checkpoint_every=1, family_weights=(("a", 2.0),))
    finetune(build_model(cfg), cfg, items, weighted, run)
    state = torch.load(run / "finetune.pt", map_location="cpu", weights_only=False)
    assert state["params"]["family_weights"] == (("a", 2.0),) and state["step"] == 2
    steps: list[int] = []
    finetune(build_model(cfg), cfg, items, weighted, run, on_step=lambda k, _: steps.append(k))
    assert steps == []  # the same recipe resumes at its last step
    plain = TrainParams(steps=2, batch=4, adv_fraction=0.0, checkpoint_every=1)
    finetune(build_model(cfg), cfg, items, plain, run, on_step=lambda k, _: steps.append(k))
    assert steps == [1, 2]  # other weights are another recipe: it starts afresh
    state = torch.load(run / "finetune.pt", map_location="cpu", weights_only=False)
    assert state["params"]["family_weights"] == ()


def test_the_cli_passes_family_weights_to_the_fine_tuning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    args = ["--family-weight", "esrgan=0.5", "--family-weight", "blend=1.2"]
    assert train_params(monkeypatch, tmp_path, args).finetune.family_weights == (("blend", 1.2), ("esrgan", 0.5))
    assert train_params(monkeypatch, tmp_path, ["--quick", *args]).finetune.family_weights == (
        ("blend", 1.2), ("esrgan", 0.5))  # fmt: skip
    assert train_params(monkeypatch, tmp_path, []).finetune.family_weights == (("blend", 2.0),)  # the shipped recipe


@pytest.mark.parametrize(("args", "weights"), [
    ([], (("blend", 2.0),)),
    (["--family-weight", "sd=0.5"], (("blend", 2.0), ("sd", 0.5))),  # added to the shipped weights
    (["--family-weight", "blend=3"], (("blend", 3.0),)),  # replaces the shipped weight
    (["--family-weight", "blend=1"], ()),  # weight 1 is no weight: every family drawn alike
    (["--quick"], ()),
    (["--quick", "--family-weight", "blend=1"], ()),  # weight 1 is no weight with --quick too
])  # fmt: skip
def test_the_shipped_recipe_weights_blends_twice_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], weights: tuple[tuple[str, float], ...]
) -> None:
    from authenticity.detection.config import SHIPPED_FAMILY_WEIGHTS

    assert SHIPPED_FAMILY_WEIGHTS == (("blend", 2.0),)
    assert train_params(monkeypatch, tmp_path, args).finetune.family_weights == weights


_ALLOWED = ("use FAMILY=W with W above 0 and FAMILY one of "
            "gan, sd, dcgan, cyclegan, upsample, blend, autoenc, esrgan, reviewed")  # fmt: skip


@pytest.mark.parametrize(("given", "message"), [
    (["blnd=2"], f"--family-weight 'blnd=2': {_ALLOWED}"),
    (["blend"], f"--family-weight 'blend': {_ALLOWED}"),
    (["blend=0"], f"--family-weight 'blend=0': {_ALLOWED}"),
    (["blend=-1"], f"--family-weight 'blend=-1': {_ALLOWED}"),
    (["blend=nan"], f"--family-weight 'blend=nan': {_ALLOWED}"),
    (["blend=inf"], f"--family-weight 'blend=inf': {_ALLOWED}"),
    (["blend=lots"], f"--family-weight 'blend=lots': {_ALLOWED}"),
    (["blend=2", "gan=1", "blend=3"], "--family-weight 'blend=3': blend is weighted twice"),
])  # fmt: skip
def test_a_bad_family_weight_is_refused_before_any_work(tmp_path: Path, given: list[str], message: str) -> None:
    args = ["--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "d.safetensors")]
    for value in given:
        args += ["--family-weight", value]
    result = CliRunner().invoke(app, ["detector", "train", "--quick", *args])
    assert result.exit_code == 2
    assert result.stderr == f"error: usage.train.family_weight: {message}\n"
    assert not (tmp_path / "w").exists() and not (tmp_path / "d.safetensors").exists()


def test_family_weights_parse_as_the_cli_and_the_bench_take_them() -> None:
    from authenticity.detection.train.finetune import parse_family_weights

    assert parse_family_weights(["sd=0.5", "blend=2"], ["blend", "sd"]) == (("blend", 2.0), ("sd", 0.5))
    assert parse_family_weights([], ["blend"]) == ()
    with pytest.raises(ValueError, match=r"^'gan=2': use FAMILY=W with W above 0 and FAMILY one of blend, sd$"):
        parse_family_weights(["gan=2"], ["blend", "sd"])
    with pytest.raises(ValueError, match=r"^'sd=1': sd is weighted twice$"):
        parse_family_weights(["sd=3", "sd=1"], ["blend", "sd"])
