"""Detector training data: leak-free splits, the training-free fake families, the GAN stage, the dataset layout.

All on tiny inputs (a few seconds in all); real photos come from ``../shared`` when present.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from authenticity.detection.config import DetectorCfg
from authenticity.detection.model import DetectorNet
from authenticity.detection.train._autoenc import load_autoencoder, reconstruct
from authenticity.detection.train.dataset import DATASET_RECIPE, build_dataset
from authenticity.detection.train.gan import GanResult, sample_generator, train_gan
from authenticity.detection.train.sources import Split, assign_split, find_shared, scene_key, split_sources
from authenticity.detection.train.synth import is_grey, self_blend_face, self_blend_region, upsample_resynthesis
from authenticity.errors import ConfigError, UsageError
from authenticity.media import load_image_bgr

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FACES = SHARED / "data" / "photos" / "real_faces"
CFG = DetectorCfg(arch="efficientnet_lite0", tile_size=64)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth, photo-like colour image (blurred noise plus a gradient): no face in it."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(128, 60, (h, w, 3)).astype(np.float32), (0, 0), 3)
    ramp = np.linspace(-40, 40, w, dtype=np.float32)[None, :, None]
    return np.asarray(np.clip(noise + ramp, 0, 255), np.uint8)


def _period2(image: np.ndarray) -> float:
    """Nyquist (period-2) component of the gradient magnitude, relative to its mean, summed over x and y.

    A natural photo's pixel differences don't care whether they sit at even or odd
    positions; an upsampler's output does (checkerboard, interpolation phases).
    """
    gray = image.astype(np.float32).mean(2)
    score = 0.0
    for diffs in (np.abs(np.diff(gray, axis=1)), np.abs(np.diff(gray, axis=0)).T):
        score += abs(diffs[:, 0::2].mean() - diffs[:, 1::2].mean()) / (diffs.mean() + 1e-6)
    return score


def test_find_shared_names_missing_data(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        find_shared(tmp_path)
    assert err.value.code == "detector.data.missing"


def test_split_is_deterministic_disjoint_and_near_70_15_15() -> None:
    files = {"LIVE1": [Path(f"img{i:04d}.png") for i in range(3000)]}
    first, again = split_sources(files, seed=7), split_sources(files, seed=7)
    assert first == again
    sets = [set(first[s].get("LIVE1", [])) for s in Split]
    assert sum(map(len, sets)) == 3000 and len(set().union(*sets)) == 3000  # each file in exactly one split
    fractions = [len(s) / 3000 for s in sets]
    assert fractions == pytest.approx([0.70, 0.15, 0.15], abs=0.03)
    other_seed = split_sources(files, seed=8)
    assert other_seed != first


def test_one_scene_in_several_subsets_gets_one_split() -> None:
    keys = {scene_key("Set14", Path("lenna.png")), scene_key("set12", Path("08.png"))}
    assert keys == {"scene/lena"}
    assert scene_key("real_faces", Path("face_01.png")) == "real_faces/face_01.png"
    assert assign_split("scene/lena", 3) == assign_split("scene/lena", 3)


def test_upsample_resynthesis_keeps_shape_and_imprints_period_two_spectrum() -> None:
    photo = _photo(70, 90, seed=1)
    outs = [upsample_resynthesis(photo, np.random.default_rng(s)) for s in range(3)]
    for out in outs:
        assert out.shape == photo.shape and out.dtype == np.uint8
        assert not np.array_equal(out, photo)
        assert cv2.PSNR(photo, out) > 20  # still the same picture
    assert min(_period2(out) for out in outs) > 3 * _period2(photo)


def test_self_blend_face_is_none_without_a_face() -> None:
    assert self_blend_face(_photo(96, 96, seed=2), np.random.default_rng(0)) is None


@pytest.mark.skipif(not (FACES / "face_03.png").is_file(), reason=f"no face photo at {FACES} (../shared absent)")
def test_self_blend_face_changes_the_face_region_only() -> None:
    face = load_image_bgr(FACES / "face_03.png")
    out = self_blend_face(face, np.random.default_rng(0))
    assert out is not None and out.shape == face.shape
    diff = np.abs(out.astype(np.int16) - face).sum(2)
    assert diff.max() > 0
    corners = [diff[:10, :10], diff[:10, -10:], diff[-10:, :10], diff[-10:, -10:]]
    assert all(c.max() == 0 for c in corners)  # the blend stays on the face


@pytest.mark.skipif(not (FACES / "face_03.png").is_file(), reason=f"no face photo at {FACES} (../shared absent)")
def test_a_self_blend_of_a_grey_face_stays_grey() -> None:
    # Recipe 1 tinted every grey face it blended: "colour on a grey face" then meant fake.
    grey = cv2.cvtColor(cv2.cvtColor(load_image_bgr(FACES / "face_03.png"), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    tinted = 0
    for seed in range(6):
        out = self_blend_face(grey, np.random.default_rng(seed))
        assert out is not None and is_grey(out) and not np.array_equal(out, grey)
        colour = self_blend_face(load_image_bgr(FACES / "face_03.png"), np.random.default_rng(seed))
        tinted += colour is not None and not is_grey(colour)
    assert tinted == 6  # a colour face keeps its colour jitter


def test_a_region_self_blend_changes_pixels_keeps_grey_grey_and_is_seeded() -> None:
    photo = _photo(96, 128, seed=3)
    out = self_blend_region(photo, np.random.default_rng(0))
    assert out.shape == photo.shape and out.dtype == np.uint8 and not np.array_equal(out, photo)
    assert np.array_equal(out, self_blend_region(photo, np.random.default_rng(0)))
    grey = cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert all(is_grey(self_blend_region(grey, np.random.default_rng(s))) for s in range(5))


def _tiny_reals(folder: Path, n: int = 8) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"real_{i}.png"
        cv2.imwrite(str(path), _photo(80 + 8 * i, 96, seed=10 + i))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path, GanResult]:
    root = tmp_path_factory.mktemp("gan")
    reals = _tiny_reals(root / "reals")
    result = train_gan(CFG, reals, root / "gan", steps=2, batch=4, seed=0, checkpoint_every=1, resume=True,
                       progress=False)  # fmt: skip
    return reals, root / "gan", result


def test_train_gan_writes_generator_stages_and_a_detector_shaped_discriminator(
    gan_run: tuple[list[Path], Path, GanResult],
) -> None:
    _, out, result = gan_run
    assert result.resumed_from == 0 and result.steps == 2
    assert [p.name for p in result.generator_checkpoints] == [
        "generator_step000001.safetensors",
        "generator_step000002.safetensors",
    ]
    from safetensors.torch import load_file

    DetectorNet(CFG.arch).load_state_dict(load_file(str(result.discriminator)), strict=True)
    images = sample_generator(result.generator_checkpoints[-1], 3, seed=0)
    assert [i.shape for i in images] == [(64, 64, 3)] * 3 and images[0].dtype == np.uint8
    assert all(np.array_equal(a, b) for a, b in zip(images, sample_generator(result.generator_checkpoints[-1], 3, 0),
                                                    strict=True))  # fmt: skip
    assert (out / "state.safetensors").is_file() and json.loads((out / "gan_log.json").read_text())["steps"] == 2


def test_train_gan_resumes_from_its_state(gan_run: tuple[list[Path], Path, GanResult]) -> None:
    reals, out, _ = gan_run
    again = train_gan(CFG, reals, out, steps=3, batch=4, seed=0, checkpoint_every=1, resume=True, progress=False)
    assert again.resumed_from == 2
    assert again.history[-1]["step"] == 3
    assert (out / "generator_step000003.safetensors").is_file()


def test_interrupted_and_resumed_gan_run_matches_an_uninterrupted_one(
    tmp_path: Path, gan_run: tuple[list[Path], Path, GanResult]
) -> None:
    reals = gan_run[0]

    def run(folder: str, resume: bool, stop_after: int | None = None) -> GanResult:
        return train_gan(CFG, reals, tmp_path / folder, steps=3, batch=4, seed=1, checkpoint_every=10,
                         resume=resume, stop_after=stop_after, progress=False)  # fmt: skip

    assert run("a", resume=True, stop_after=2).steps == 2
    resumed, straight = run("a", resume=True), run("b", resume=False)
    assert (resumed.resumed_from, resumed.steps, straight.steps) == (2, 3, 3)
    from safetensors.torch import load_file

    for name in ("generator_step000003.safetensors", "discriminator.safetensors"):
        a, b = load_file(str(tmp_path / "a" / name)), load_file(str(tmp_path / "b" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def _tiny_shared(root: Path) -> Path:
    for i in range(3):
        folder = root / "data" / "photos" / ("LIVE1" if i < 2 else "set5")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"p{i}.png"), _photo(300, 400 + 40 * i, seed=20 + i))
    if FACES.is_dir():  # a real face so the blend family has work; skipped silently otherwise
        (root / "data" / "photos" / "real_faces").mkdir()
        cv2.imwrite(str(root / "data" / "photos" / "real_faces" / "face_03.png"), load_image_bgr(FACES / "face_03.png"))
    for kind in ("real", "fake"):
        folder = root / "data" / "cifake" / kind
        folder.mkdir(parents=True)
        for i in range(6):
            cv2.imwrite(str(folder / f"{i:04d}.jpg"), _photo(32, 32, seed=40 + i))
    return root


def test_build_dataset_writes_the_layout_and_summary(
    tmp_path: Path, gan_run: tuple[list[Path], Path, GanResult]
) -> None:
    shared = _tiny_shared(tmp_path / "shared")
    out = tmp_path / "dataset"
    summary = build_dataset(shared, out, cfg=CFG, per_family=4, seed=0, gan_dir=gan_run[1], progress=False,
                            cyclegan_cap=2, cyclegan_size=64, opencv_dir=tmp_path / "no-opencv-doc", autoenc_steps=2,
                            autoenc_adversarial=0.5)  # fmt: skip
    written = json.loads((out / "summary.json").read_text())
    assert written["counts"] == summary.counts and written["recipe"] == DATASET_RECIPE
    fake_sources = {src for by_cls in summary.counts.values() for src in by_cls.get("fake", {})}
    expected = {"gan", "sd", "dcgan", "cyclegan", "upsample", "autoenc"} | ({"blend"} if FACES.is_dir() else set())
    assert fake_sources == expected
    assert (out / "autoencoder.safetensors").is_file()
    meta = json.loads((out / "autoencoder.json").read_text())
    assert (meta["recipe"], meta["steps"], meta["adversarial"], meta["seed"]) == (2, 2, 0.5, 0)
    assert any(note.startswith("autoenc: latent autoencoder, 2 steps, critic weight 0.5 on ") for note in summary.notes)
    assert (
        f"no opencv-doc samples in {tmp_path / 'no-opencv-doc'}: the shipped model was trained with them "
        "(apt-get install opencv-doc)" in summary.notes
    )
    for split, by_cls in summary.counts.items():
        for cls, by_src in by_cls.items():
            for source, n in by_src.items():
                assert len(list((out / split / cls / source).glob("*.png"))) == n
    assert 0.7 < summary.total(cls="real") / summary.total(cls="fake") < 1.5  # roughly balanced classes
    assert summary.counts.get("train", {}).get("fake", {}).get("cyclegan", 0) <= 2
    with pytest.raises(UsageError):
        build_dataset(shared, out, cfg=CFG, per_family=4, seed=0, gan_dir=None, progress=False, opencv_dir=None)


def test_build_dataset_without_autoenc_holds_the_same_files_less_that_family(
    tmp_path: Path, gan_run: tuple[list[Path], Path, GanResult]
) -> None:
    shared = _tiny_shared(tmp_path / "shared")

    def build(name: str, autoenc_steps: int) -> dict[str, bytes]:
        build_dataset(shared, tmp_path / name, cfg=CFG, per_family=3, seed=0, gan_dir=gan_run[1], progress=False,
                      cyclegan_cap=1, cyclegan_size=64, opencv_dir=None, autoenc_steps=autoenc_steps)  # fmt: skip
        return {str(p.relative_to(tmp_path / name)): p.read_bytes() for p in (tmp_path / name).rglob("*.png")}

    with_ae, without = build("with", 2), build("without", 0)
    autoenc = {k for k in with_ae if "/fake/autoenc/" in k}
    twins = {k for k in with_ae if k.startswith("twins/")}
    assert len(autoenc) == 3
    # every fake has its source crop as a twin, same split and name, outside the split folders
    assert sorted(k.replace("/fake/", "/real/") for k in autoenc) == sorted(k.removeprefix("twins/") for k in twins)
    assert {k: v for k, v in with_ae.items() if k not in autoenc | twins} == without
    assert not (tmp_path / "without" / "autoencoder.safetensors").exists()
    model = load_autoencoder(tmp_path / "with" / "autoencoder.safetensors")
    for key in autoenc:  # the saved autoencoder re-draws each twin into exactly its fake
        twin = load_image_bgr(tmp_path / "with" / "twins" / key.replace("/fake/", "/real/"))
        assert np.array_equal(reconstruct(model, twin), load_image_bgr(tmp_path / "with" / key))


def test_overwriting_a_dataset_replaces_the_autoenc_family_its_twins_and_its_autoencoder(
    tmp_path: Path, gan_run: tuple[list[Path], Path, GanResult]
) -> None:
    shared, out = _tiny_shared(tmp_path / "shared"), tmp_path / "d"

    def build(autoenc_steps: int) -> list[str]:
        build_dataset(shared, out, cfg=CFG, per_family=2, seed=0, gan_dir=gan_run[1], progress=False, cyclegan_cap=1,
                      cyclegan_size=64, opencv_dir=None, overwrite=True, autoenc_steps=autoenc_steps)  # fmt: skip
        return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and "autoenc" in str(p))

    first = build(2)
    assert len(first) == 2 + 2 + 2  # fakes, twins, autoencoder weights + meta
    assert build(2) == first  # the same build again: no "two items got the same name" from stale twins
    assert build(0) == []  # without the family: no stale fakes, twins or autoencoder left behind


def test_a_gan_dir_without_checkpoints_is_refused_before_an_old_dataset_is_touched(tmp_path: Path) -> None:
    shared = _tiny_shared(tmp_path / "shared")
    old = tmp_path / "d" / "train" / "real" / "photo" / "kept.png"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"an earlier dataset")
    (tmp_path / "gan").mkdir()
    with pytest.raises(ConfigError) as err:
        build_dataset(shared, tmp_path / "d", cfg=CFG, per_family=1, seed=0, gan_dir=tmp_path / "gan", progress=False,
                      opencv_dir=None, overwrite=True)  # fmt: skip
    assert err.value.code == "detector.gan.missing"
    assert old.read_bytes() == b"an earlier dataset"


@pytest.mark.parametrize(("option", "message"), [
    ({"autoenc_steps": -1}, "autoenc_steps must be >= 0"),
    ({"autoenc_steps": 2, "autoenc_adversarial": -0.5}, "autoenc_adversarial must be >= 0"),
    ({"autoenc_steps": 2, "autoenc_adversarial": float("nan")}, "autoenc_adversarial must be >= 0"),
])  # fmt: skip
def test_build_dataset_refuses_bad_autoenc_settings_and_keeps_the_old_dataset(
    tmp_path: Path, option: dict[str, float], message: str
) -> None:
    shared = _tiny_shared(tmp_path / "shared")
    old = tmp_path / "d" / "train" / "real" / "photo" / "kept.png"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"an earlier dataset")
    with pytest.raises(UsageError) as err:
        build_dataset(shared, tmp_path / "d", cfg=CFG, per_family=1, seed=0, gan_dir=None, progress=False,
                      opencv_dir=None, overwrite=True, **option)  # type: ignore[arg-type]  # fmt: skip
    assert (err.value.code, err.value.message) == ("usage.invalid", message)
    assert [p.relative_to(tmp_path / "d") for p in (tmp_path / "d").rglob("*") if p.is_file()] == [
        Path("train/real/photo/kept.png")
    ]
    assert old.read_bytes() == b"an earlier dataset"


def test_build_dataset_refuses_an_empty_gan_dir(tmp_path: Path) -> None:
    shared = _tiny_shared(tmp_path / "shared")
    with pytest.raises(ConfigError) as err:
        build_dataset(shared, tmp_path / "d", cfg=CFG, per_family=1, seed=0, gan_dir=tmp_path, progress=False)
    assert err.value.code == "detector.gan.missing"


@pytest.mark.parametrize(("built_with", "asked", "resume", "reused"), [
    (None, (0, 0.0), True, True), ({"recipe": 2, "steps": 600, "adversarial": 0.0}, (600, 0.0), True, True),
    ({"recipe": 2, "steps": 600, "adversarial": 0.5}, (600, 0.5), True, True),
    ({"steps": 600}, (600, 0.0), True, False),  # the first recipe's autoencoder (it dropped colour): rebuild
    ({"recipe": 1, "steps": 600, "adversarial": 0.0}, (600, 0.0), True, False),
    (None, (600, 0.0), True, False),  # the family is asked for and missing: rebuild, never train silently without it
    ({"recipe": 2, "steps": 600}, (0, 0.0), True, False),  # there, not asked for: rebuild, the test split must match
    ({"recipe": 2, "steps": 600, "adversarial": 0.0}, (1200, 0.0), True, False),  # another autoencoder: rebuild
    ({"recipe": 2, "steps": 600, "adversarial": 0.0}, (600, 0.5), True, False),
    ({}, (600, 0.0), True, False),  # the family is there but its autoencoder.json is gone: rebuild
    (None, (0, 0.0), False, False),  # --no-resume always rebuilds
])  # fmt: skip
def test_an_existing_dataset_is_resumed_only_with_the_autoenc_family_the_run_asks_for(
    tmp_path: Path, built_with: dict[str, float] | None, asked: tuple[int, float], resume: bool, reused: bool
) -> None:
    from authenticity.detection.train.pipeline import PipelineParams, dataset_reusable

    fakes = {"gan": 3, **({"autoenc": 2} if built_with is not None else {})}
    summary = tmp_path / "summary.json"
    counts = {"train": {"real": {"photo": 4}, "fake": fakes}}
    summary.write_text(json.dumps({"recipe": DATASET_RECIPE, "counts": counts}))
    if built_with:
        (tmp_path / "autoencoder.json").write_text(json.dumps({**built_with, "seed": 0}))
    params = PipelineParams(workdir=tmp_path, out=tmp_path / "d.safetensors", autoenc_steps=asked[0],
                            autoenc_adversarial=asked[1], resume=resume)  # fmt: skip
    assert dataset_reusable(summary, params) is reused
    assert dataset_reusable(tmp_path / "missing.json", params) is False
    for other in ({}, {"recipe": 1}, {"recipe": DATASET_RECIPE + 1}):  # built by other dataset code: rebuild
        summary.write_text(json.dumps({**other, "counts": counts}))
        assert dataset_reusable(summary, params) is False


def test_the_autoencoder_is_never_fitted_to_val_or_test_photos(tmp_path: Path) -> None:
    from rich.progress import Progress

    from authenticity.detection.train._writer import Photo, PngWriter
    from authenticity.detection.train.dataset import write_autoenc

    held_out = [Photo("LIVE1", Path(f"p{i}.png"), split, _photo(64, 64, seed=i))
                for i, split in enumerate((Split.VAL, Split.TEST))]  # fmt: skip
    with Progress(disable=True) as bar:
        note = write_autoenc(PngWriter(tmp_path), held_out, tmp_path, steps=2, per_family=2, crop_side=32, seed=0,
                             bar=bar)  # fmt: skip
    assert note == "autoenc: no train-split photos, family left out"
    assert list(tmp_path.iterdir()) == []


def test_extra_real_photos_are_a_photo_source_split_by_subject(tmp_path: Path) -> None:
    shared = _tiny_shared(tmp_path / "shared")
    extra = tmp_path / "extra"
    extra.mkdir()
    names = ("obama.jpg", "obama2.jpg", "obama3.jpg", "takeo.png", "astronaut.png")
    for i, name in enumerate(names):
        assert cv2.imwrite(str(extra / name), _photo(200, 260, seed=60 + i))
    (extra / "notes.txt").write_text("not an image")
    out = tmp_path / "d"
    summary = build_dataset(shared, out, cfg=CFG, per_family=2, seed=0, gan_dir=None, progress=False,
                            cyclegan_cap=1, cyclegan_size=64, opencv_dir=None, extra_real=extra)  # fmt: skip
    assert summary.extra_real == ("astronaut.png", "obama.jpg", "obama2.jpg", "obama3.jpg", "takeo.png")
    assert json.loads((out / "summary.json").read_text())["extra_real"] == list(summary.extra_real)
    where = {p.stem: p.parts[-4] for p in out.glob("*/real/photo/extra__*.png")}  # whole photo -> its split
    assert sorted(where) == sorted(f"extra__{Path(n).stem}" for n in names)
    # one subject, one split: nothing of a test photo of a person trains on another photo of them
    assert where["extra__obama"] == where["extra__obama2"] == where["extra__obama3"]
    assert where["extra__obama"] == assign_split(scene_key("extra", Path("obama.jpg")), 0)
    assert scene_key("extra", Path("takeo.png")) == "extra/takeo"
    without = build_dataset(shared, tmp_path / "d0", cfg=CFG, per_family=2, seed=0, gan_dir=None, progress=False,
                            cyclegan_cap=1, cyclegan_size=64, opencv_dir=None)  # fmt: skip
    assert without.extra_real == () and not list((tmp_path / "d0").glob("*/real/*/extra__*"))


@pytest.mark.parametrize(("built", "asked", "reused"), [
    ([], None, True),
    (["a.jpg"], None, False),  # built with extra photos, asked without: rebuild
    ([], ["a.jpg"], False),
    (["a.jpg"], ["a.jpg"], True),
    (["a.jpg"], ["a.jpg", "b.jpg"], False),  # another photo added to the folder
])  # fmt: skip
def test_an_existing_dataset_is_resumed_only_with_the_extra_photos_the_run_asks_for(
    tmp_path: Path, built: list[str], asked: list[str] | None, reused: bool
) -> None:
    from authenticity.detection.train.pipeline import PipelineParams, dataset_reusable

    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"recipe": DATASET_RECIPE, "counts": {}, "extra_real": built}))
    folder = None
    if asked is not None:
        folder = tmp_path / "extra"
        folder.mkdir()
        for name in asked:
            assert cv2.imwrite(str(folder / name), _photo(16, 16, seed=1))
    params = PipelineParams(workdir=tmp_path, out=tmp_path / "d.safetensors", extra_real=folder)
    assert dataset_reusable(summary, params) is reused
