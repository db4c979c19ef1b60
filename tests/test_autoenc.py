"""The autoenc family's latent autoencoder: it learns, it is deterministic, it round-trips through safetensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from authenticity.detection.train._autoenc import (
    is_colour,
    load_autoencoder,
    reconstruct,
    save_autoencoder,
    train_autoencoder,
)


def _scene(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth colour gradients plus a few edges: something an autoencoder can learn in a few steps."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 200, yy / h * 180, (xx + yy) / (h + w) * 160], -1) + 30
    for _ in range(4):
        y, x = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
        img[y : y + 8, x : x + 8] = rng.integers(0, 256, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


PHOTOS = [_scene(48, 56, s) for s in range(3)]


def _error(model: torch.nn.Module, image: np.ndarray) -> float:
    return float(np.abs(reconstruct(model, image).astype(np.float32) - image.astype(np.float32)).mean())  # type: ignore[arg-type]


def test_training_lowers_the_reconstruction_error() -> None:
    untrained = train_autoencoder(PHOTOS, steps=0, seed=0, crop=32, batch=4)
    trained = train_autoencoder(PHOTOS, steps=60, seed=0, crop=32, batch=4)
    held_out = _scene(40, 44, seed=9)
    assert _error(trained, held_out) < 0.6 * _error(untrained, held_out)


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    a, b = (train_autoencoder(PHOTOS, steps=3, seed=1, crop=32, batch=2) for _ in range(2))
    c = train_autoencoder(PHOTOS, steps=3, seed=2, crop=32, batch=2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize("shape", [(33, 35, 3), (32, 32, 3), (5, 7, 3), (1, 9, 3), (2, 2, 3), (2, 6, 3)])
def test_reconstruct_keeps_shape_and_dtype(shape: tuple[int, int, int]) -> None:
    model = train_autoencoder(PHOTOS, steps=1, seed=0, crop=32, batch=2)
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = reconstruct(model, image)
    assert (out.shape, out.dtype) == (shape, np.uint8)


@pytest.mark.parametrize("shape", [(12, 20, 3), (1, 1, 3), (3, 50, 3)])
def test_photos_smaller_than_the_crop_are_stretched_to_it(shape: tuple[int, int, int]) -> None:
    photo = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    model = train_autoencoder([photo], steps=2, seed=0, crop=32, batch=2)
    assert reconstruct(model, photo).shape == shape


@pytest.mark.parametrize("crop", [0, 30, 2])
def test_a_crop_off_the_latent_grid_is_an_error(crop: int) -> None:
    with pytest.raises(ValueError, match=rf"^crop {crop}: use a multiple of 4$"):
        train_autoencoder(PHOTOS, steps=1, seed=0, crop=crop)


def test_save_and_load_give_the_same_reconstruction(tmp_path: Path) -> None:
    model = train_autoencoder(PHOTOS, steps=2, seed=0, crop=32, batch=2)
    save_autoencoder(model, tmp_path / "ae.safetensors", {"steps": 2})
    loaded = load_autoencoder(tmp_path / "ae.safetensors")
    image = _scene(40, 40, 5)
    assert np.array_equal(reconstruct(model, image), reconstruct(loaded, image))
    assert (tmp_path / "ae.json").read_text() == '{\n  "steps": 2\n}\n'


def test_no_photos_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"^train_autoencoder needs at least one photo$"):
        train_autoencoder([], steps=1, seed=0)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_critic_changes_nothing_until_it_starts() -> None:
    """The adversarial option leaves the plain recipe's init and random streams alone before ``adv_start``."""
    plain = train_autoencoder(PHOTOS, steps=4, seed=3, crop=32, batch=2)
    never = train_autoencoder(PHOTOS, steps=4, seed=3, crop=32, batch=2, adversarial=0.5, adv_start=1.0)
    dueled = train_autoencoder(PHOTOS, steps=4, seed=3, crop=32, batch=2, adversarial=0.5, adv_start=0.5)
    assert _same_weights(plain, never)
    assert not _same_weights(plain, dueled)


def test_adversarial_training_is_deterministic_and_still_learns() -> None:
    a, b = (train_autoencoder(PHOTOS, steps=60, seed=0, crop=32, batch=4, adversarial=0.5) for _ in range(2))
    assert _same_weights(a, b)
    untrained = train_autoencoder(PHOTOS, steps=0, seed=0, crop=32, batch=4)
    held_out = _scene(40, 44, seed=9)
    assert _error(a, held_out) < 0.6 * _error(untrained, held_out)


@pytest.mark.parametrize(("adversarial", "adv_start"), [(-0.1, 0.3), (float("nan"), 0.3), (0.5, 1.5), (0.5, -0.1)])
def test_bad_adversarial_settings_are_errors(adversarial: float, adv_start: float) -> None:
    message = rf"^adversarial {adversarial} must be >= 0 and adv_start {adv_start} within 0\.\.1$"
    with pytest.raises(ValueError, match=message):
        train_autoencoder(PHOTOS, steps=1, seed=0, crop=32, adversarial=adversarial, adv_start=adv_start)


def test_is_colour_tells_grey_from_colour() -> None:
    grey = np.repeat(_scene(20, 20, 1)[..., :1], 3, axis=2)
    nearly_grey = np.clip(grey.astype(np.int16) + np.random.default_rng(0).integers(0, 2, grey.shape), 0, 255)
    assert [is_colour(x) for x in (grey, nearly_grey.astype(np.uint8), _scene(20, 20, 1))] == [False, False, True]


def test_only_colour_photos_train_the_autoencoder_when_there_are_any() -> None:
    """Grey photos taught the decoder to drop colour, so they are left out (and used only when nothing else is)."""
    grey = [np.repeat(p[..., 1:2], 3, axis=2) for p in PHOTOS]
    mixed = train_autoencoder([grey[0], PHOTOS[0], grey[1], PHOTOS[1]], steps=3, seed=0, crop=32, batch=2)
    colour_only = train_autoencoder(PHOTOS[:2], steps=3, seed=0, crop=32, batch=2)
    grey_only = train_autoencoder(grey, steps=3, seed=0, crop=32, batch=2)
    assert _same_weights(mixed, colour_only)
    assert not _same_weights(grey_only, colour_only)
