"""Training augmentation: identical for both classes, reproducible, and the small-image rescale."""

from __future__ import annotations

import cv2
import numpy as np

from authenticity.detection.train.augment import AugmentCfg, augmented_tile


def _quiet(p_small_rescale: float) -> AugmentCfg:
    """Only the small-image rescale can fire (every other step off)."""
    cfg = AugmentCfg(p_small_rescale)
    cfg.p_resize = cfg.p_blur = cfg.p_noise = cfg.p_jpeg = cfg.p_flip = 0.0
    return cfg


def _checkerboard(side: int) -> np.ndarray:
    board = ((np.indices((side, side)).sum(0) % 2) * 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(board[..., None], 3, axis=2))


def _detail(tile: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(cv2.cvtColor(tile, cv2.COLOR_BGR2GRAY), cv2.CV_32F)).mean())


def test_tiles_keep_size_and_dtype_for_small_and_large_images() -> None:
    rng = np.random.default_rng(0)
    for shape in ((32, 32, 3), (64, 40, 3), (300, 500, 3)):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        for p in (0.0, 1.0):
            tile = augmented_tile(image, 128, np.random.default_rng(1), AugmentCfg(p))
            assert tile.shape == (128, 128, 3) and tile.dtype == np.uint8


def test_the_rescale_off_draws_nothing_extra_so_the_shipped_recipe_is_unchanged() -> None:
    image = np.random.default_rng(2).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    default = [augmented_tile(image, 128, np.random.default_rng(s)) for s in range(20)]
    off = [augmented_tile(image, 128, np.random.default_rng(s), AugmentCfg(0.0)) for s in range(20)]
    assert all(np.array_equal(a, b) for a, b in zip(default, off, strict=True))


def test_large_images_never_take_the_small_image_rescale() -> None:
    image = np.random.default_rng(3).integers(0, 256, (200, 260, 3), dtype=np.uint8)
    for s in range(10):
        assert np.array_equal(augmented_tile(image, 128, np.random.default_rng(s), AugmentCfg(1.0)),
                              augmented_tile(image, 128, np.random.default_rng(s), AugmentCfg(0.0)))  # fmt: skip


def test_the_rescale_shrinks_a_small_image_before_its_upscale() -> None:
    board = _checkerboard(64)  # period-2 detail: the first thing a shrink removes
    plain = [_detail(augmented_tile(board, 128, np.random.default_rng(s), _quiet(0.0))) for s in range(10)]
    shrunk = [_detail(augmented_tile(board, 128, np.random.default_rng(s), _quiet(1.0))) for s in range(10)]
    # scales are drawn from [0.5, 1): nearly every draw loses most of the period-2 detail
    assert sum(d < min(plain) / 2 for d in shrunk) >= 8


def test_the_rescale_never_goes_below_its_floor() -> None:
    cfg = _quiet(1.0)
    cfg.small_rescale_range = (0.01, 0.02)  # asks for < 1 px; the floor keeps 16 px
    tile = augmented_tile(_checkerboard(20), 128, np.random.default_rng(0), cfg)
    assert tile.shape == (128, 128, 3)
    assert len(np.unique(tile)) > 2  # 16 px upscaled 8×: interpolated, not a flat 1-px image


def _only_enlarge(p_enlarge: float) -> AugmentCfg:
    """Only the enlargement can fire."""
    cfg = AugmentCfg(0.0, p_enlarge)
    cfg.p_resize = cfg.p_blur = cfg.p_noise = cfg.p_jpeg = cfg.p_flip = 0.0
    return cfg


def test_the_enlargement_off_draws_nothing_extra_so_the_shipped_recipe_is_unchanged() -> None:
    image = np.random.default_rng(4).integers(0, 256, (300, 260, 3), dtype=np.uint8)
    default = [augmented_tile(image, 128, np.random.default_rng(s)) for s in range(20)]
    off = [augmented_tile(image, 128, np.random.default_rng(s), AugmentCfg(0.0, 0.0)) for s in range(20)]
    assert all(np.array_equal(a, b) for a, b in zip(default, off, strict=True))


def test_the_enlargement_interpolates_fine_detail_away_and_keeps_the_tile_native() -> None:
    board = _checkerboard(400)
    plain = [augmented_tile(board, 128, np.random.default_rng(s), _only_enlarge(0.0)) for s in range(12)]
    enlarged = [augmented_tile(board, 128, np.random.default_rng(s), _only_enlarge(1.0)) for s in range(12)]
    assert all(t.shape == (128, 128, 3) and t.dtype == np.uint8 for t in enlarged)
    assert all(_detail(t) == _detail(plain[0]) for t in plain)  # an untouched checkerboard everywhere
    # a 1.25-2x enlargement cannot keep a period-2 pattern: every tile loses detail to interpolation
    assert all(_detail(t) < 0.9 * _detail(plain[0]) for t in enlarged)
    assert len({t.tobytes() for t in enlarged}) == len(enlarged)  # scales and interpolations vary
