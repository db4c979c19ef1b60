"""TrainParams.detail_bins: reals drawn to match the fake draws' fine-detail distribution."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from authenticity.detection.config import DetectorCfg
from authenticity.detection.model import build_model
from authenticity.detection.preprocess import fine_detail
from authenticity.detection.train.finetune import Item, TrainParams, _Sampler, finetune, load_items


def _image(rng: np.random.Generator, sigma: float) -> np.ndarray:
    """A mid-grey 64-px image with Gaussian noise of ``sigma``: fine detail grows with it."""
    return np.clip(128 + rng.normal(0, sigma, (64, 64, 3)), 0, 255).astype(np.uint8)


def _items(root: Path, fakes: dict[str, list[float]], reals: dict[str, list[float]]) -> list[Item]:
    rng = np.random.default_rng(0)
    for cls, groups in (("fake", fakes), ("real", reals)):
        for source, sigmas in groups.items():
            (root / "train" / cls / source).mkdir(parents=True, exist_ok=True)
            for k, sigma in enumerate(sigmas):
                cv2.imwrite(str(root / "train" / cls / source / f"{k:03d}.png"), _image(rng, sigma))
    return load_items(root, "train")


def test_fine_detail_grows_with_noise_and_is_measured_as_scored() -> None:
    rng = np.random.default_rng(1)
    quiet, loud = _image(rng, 2), _image(rng, 20)
    assert fine_detail(loud, 64) > 5 * fine_detail(quiet, 64) > 0
    assert fine_detail(np.full((40, 40, 3), 9, np.uint8), 128) == 0.0
    # a small image is upscaled to a tile first, which smooths it
    assert fine_detail(loud, 256) < fine_detail(loud, 64)


def test_reals_are_drawn_where_the_fakes_detail_lies(tmp_path: Path) -> None:
    # fakes all smooth (two families); reals mostly detailed, a few as smooth as the fakes
    fakes = {"a": [1, 1.5, 2, 2.5, 3] * 4, "b": [1.2, 1.8, 2.4, 3.0] * 5}
    reals = {"sharp": [30.0] * 45, "soft": [1.1, 1.6, 2.2, 2.7, 3.1]}
    items = _items(tmp_path, fakes, reals)
    uniform = _Sampler(items, random.Random(0))
    matched = _Sampler(items, random.Random(0), detail_bins=4, tile_size=64)

    assert uniform.real_bins == [uniform.real]
    assert len(matched.real_bins) == 4
    sharp = {i.path for i in matched.real if i.path.parent.name == "sharp"}
    # every sharp real lies above the fakes' last cut: all in the last bin, none below it
    assert {i.path for i in matched.real_bins[-1]} >= sharp
    assert not any(i.path in sharp for b in matched.real_bins[:-1] for i in b)
    # bins are in order of detail
    bins = matched.real_bins
    distinct = [b for k, b in enumerate(bins) if k == 0 or b is not bins[k - 1]]  # a borrowed bin repeats
    details = [[fine_detail(matched._image(i.path), 64) for i in b] for b in distinct]
    assert len(distinct) >= 3 and all(max(a) <= min(b) for a, b in itertools.pairwise(details))

    def soft_share(sampler: _Sampler) -> float:
        drawn = Counter(sampler._real().path.parent.name for _ in range(4000))
        return drawn["soft"] / 4000

    assert soft_share(uniform) == pytest.approx(5 / 50, abs=0.03)
    assert soft_share(matched) > 0.6  # at least three of the four bins hold only soft reals


def test_an_empty_bin_borrows_the_nearest_bin_that_holds_reals(tmp_path: Path) -> None:
    fakes = {"a": [0.0] * 6 + [40.0] * 6}  # flat fakes and loud fakes: nothing in between
    reals = {"mid": [8.0] * 5, "loud": [80.0] * 3}
    items = _items(tmp_path, fakes, reals)
    sampler = _Sampler(items, random.Random(0), detail_bins=4, tile_size=64)
    mid = sorted(i.path for i in sampler.real if i.path.parent.name == "mid")
    loud = sorted(i.path for i in sampler.real if i.path.parent.name == "loud")
    # cuts at the flat, flat and loud fakes: the mid reals land in bin 2, the loud ones in bin 3,
    # and the empty bins 0 and 1 borrow bin 2, the nearest
    assert [sorted(i.path for i in b) for b in sampler.real_bins] == [mid, mid, mid, loud]


def test_without_bins_the_draws_are_the_uniform_samplers_own(tmp_path: Path) -> None:
    """Known answer: the batch rebuilt from an independent replay of the uniform draws
    (real slot: a real; fake slot: a family, then one of its files)."""
    from authenticity.detection.train.augment import augmented_tile

    items = _items(tmp_path, {"a": [1, 2, 3], "b": [2, 3]}, {"r": [1, 5, 9, 20]})
    real = [i for i in items if i.label == 0]
    families = {f: [i for i in items if i.source == f] for f in ("a", "b")}
    for bins in (0, 1):
        sampler = _Sampler(items, random.Random(3), detail_bins=bins, tile_size=64)
        x, y = sampler.batch(12, 32, np.random.default_rng(5))
        replay, np_rng = random.Random(3), np.random.default_rng(5)
        drawn = [replay.choice(real) if k % 2 == 0 else replay.choice(families[replay.choice(["a", "b"])])
                 for k in range(12)]  # fmt: skip
        expected = np.stack([augmented_tile(cv2.imread(str(i.path)), 32, np_rng) for i in drawn])
        assert np.array_equal(x, expected) and y.tolist() == [float(i.label) for i in drawn]
        assert sampler.rng.getstate() == replay.getstate()


def test_the_cuts_weigh_each_fake_family_equally_however_many_files_it_has(tmp_path: Path) -> None:
    # family a: 2 smooth files; family b: 8 detailed ones. Drawn by family, a is half the fake
    # draws, so the median fake draw is a's sharper file (counted by file it would be one of b's).
    fakes = {"a": [1.0, 2.0], "b": [10.0 + k for k in range(8)]}
    items = _items(tmp_path, fakes, {"r": [1.5, 5.0, 30.0]})
    sampler = _Sampler(items, random.Random(0), detail_bins=2, tile_size=64)
    a_sharper = next(i for i in items if i.source == "a" and i.path.name == "001.png")
    assert sampler.detail_cuts == [fine_detail(sampler._image(a_sharper.path), 64)]
    assert [sorted(i.path.name for i in b) for b in sampler.real_bins] == [["000.png"], ["001.png", "002.png"]]


def test_more_bins_than_fakes_still_places_every_real_once(tmp_path: Path) -> None:
    items = _items(tmp_path, {"a": [1.0, 4.0, 9.0]}, {"r": [0.5, 2.0, 6.0, 12.0, 40.0]})
    sampler = _Sampler(items, random.Random(0), detail_bins=10, tile_size=64)
    assert len(sampler.detail_cuts) == 9 and sampler.detail_cuts == sorted(sampler.detail_cuts)
    distinct = {id(b): b for b in sampler.real_bins}.values()
    assert sorted(i.path.name for b in distinct for i in b) == [f"{k:03d}.png" for k in range(5)]


def test_detail_bins_need_the_tile_size_they_are_measured_at(tmp_path: Path) -> None:
    items = _items(tmp_path, {"a": [1.0]}, {"r": [2.0]})
    with pytest.raises(
        ValueError, match=r"detail_bins needs the tile size the detail is measured at \(cfg.tile_size\)"
    ):
        _Sampler(items, random.Random(0), detail_bins=2)


def _tiny_run(tmp_path: Path) -> tuple[list[Item], DetectorCfg, Path]:
    """Items, a tiny network's cfg and an empty run folder for a two-step fine-tune."""
    torch.set_num_threads(1)
    items = _items(tmp_path, {"a": [1, 2, 3, 4], "b": [2, 3]}, {"r": [1, 5, 9, 20, 30, 40]})
    run = tmp_path / "run"
    run.mkdir()
    return items, DetectorCfg(arch="test_efficientnet", tile_size=32, max_tiles=4), run


def test_finetune_trains_with_detail_bins_and_resumes_only_under_the_same_setting(tmp_path: Path) -> None:
    items, cfg, run = _tiny_run(tmp_path)
    binned = TrainParams(steps=2, batch=4, adv_fraction=0.0, detail_bins=3, checkpoint_every=1)
    finetune(build_model(cfg), cfg, items, binned, run)
    state = torch.load(run / "finetune.pt", map_location="cpu", weights_only=False)
    assert state["params"]["detail_bins"] == 3 and state["step"] == 2
    steps: list[int] = []
    finetune(build_model(cfg), cfg, items, binned, run, on_step=lambda k, _: steps.append(k))
    assert steps == []  # the same recipe resumes at its last step: nothing left to train
    finetune(build_model(cfg), cfg, items, TrainParams(steps=2, batch=4, adv_fraction=0.0, checkpoint_every=1), run,
             on_step=lambda k, _: steps.append(k))  # fmt: skip
    assert steps == [1, 2]  # another sampler is another recipe: it starts afresh
    state = torch.load(run / "finetune.pt", map_location="cpu", weights_only=False)
    assert state["params"]["detail_bins"] == 0


def test_a_checkpoint_from_before_detail_bins_resumes_under_the_default(tmp_path: Path) -> None:
    items, cfg, run = _tiny_run(tmp_path)
    params = TrainParams(steps=2, batch=4, adv_fraction=0.0, checkpoint_every=1)
    finetune(build_model(cfg), cfg, items, params, run)
    state = torch.load(run / "finetune.pt", map_location="cpu", weights_only=False)
    for added in ("detail_bins", "ema"):  # what a checkpoint written before these options holds
        del state["params"][added]
    torch.save(state, run / "finetune.pt")
    steps: list[int] = []
    finetune(build_model(cfg), cfg, items, params, run, on_step=lambda k, _: steps.append(k))
    assert steps == []  # the old checkpoint is this very recipe: it resumes at its last step, nothing left
    finetune(build_model(cfg), cfg, items, replace(params, detail_bins=2), run, on_step=lambda k, _: steps.append(k))
    assert steps == [1, 2]  # with bins it is another recipe: afresh
