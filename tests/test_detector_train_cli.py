"""`detector train` and `detector ablate`: the training recipe end to end (tiny), and the probes."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from authenticity.cli.app import app
from authenticity.detection.config import DetectorCfg
from authenticity.detection.scoring import Detector
from authenticity.detection.train.ablation import run_ablation, to_markdown
from authenticity.detection.train.finetune import Item
from authenticity.detection.train.pipeline import cpu_model

from .conftest import NEEDS_SHARED_PHOTOS, train_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
TINY = DetectorCfg(arch="test_efficientnet", tile_size=32, max_tiles=4)


def _dataset(root: Path) -> Path:
    """The dataset layout with two fake families: smooth 'real' vs blocky / striped 'fake'."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 4)):
        for i in range(n):
            smooth = cv2.GaussianBlur(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8), (0, 0), 4)
            blocky = np.kron(smooth[::4, ::4], np.ones((4, 4, 1), np.uint8))
            striped = smooth ^ np.uint8(0x20) * (np.arange(48) % 2)[None, :, None]
            for cls, source, img in (("real", "photo", smooth), ("fake", "blocky", blocky),
                                     ("fake", "striped", striped)):  # fmt: skip
                folder = root / split / cls / source
                folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / f"{i}.png"), img)
    return root


def test_ablation_reports_every_held_out_family_and_in_distribution(tmp_path: Path) -> None:
    result = run_ablation(_dataset(tmp_path / "dataset"), tmp_path / "gan", TINY, inits=("scratch",),
                          out=tmp_path / "ablation.json", progress=False)  # fmt: skip
    rows = result["inits"]["scratch"]
    assert set(rows) == {"blocky", "striped", "all"}
    assert all(0.0 <= rows[f][c] <= 1.0 for f in rows for c in ("clean", "jpeg75"))
    assert json.loads((tmp_path / "ablation.json").read_text())["inits"]["scratch"] == rows
    table = to_markdown(result)
    assert "| all (in-distribution) |" in table and "scratch jpeg75" in table


def test_ablate_cli_without_a_training_workdir_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["detector", "ablate", "--workdir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: usage.ablate.workdir: ")


def _reviewed(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for cls, reason, name in (("real", "tampered", "a.jpg"), ("fake", "likely-synthetic", "b.jpg")):
        (root / cls / reason).mkdir(parents=True)
        cv2.imwrite(str(root / cls / reason / name), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return root


def test_train_with_a_reviewed_folder_without_real_or_fake_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "reviewed" / "other").mkdir(parents=True)
    args = ["--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "d.safetensors")]
    result = runner.invoke(app, ["detector", "train", "--quick", *args, "--reviewed", str(tmp_path / "reviewed")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: detector.data.reviewed_invalid: ")
    assert not (tmp_path / "w").exists() and not (tmp_path / "d.safetensors").exists()


def test_train_without_shared_data_is_a_clear_error(tmp_path: Path) -> None:
    out = str(tmp_path / "d.safetensors")
    args = ["--shared", str(tmp_path / "none"), "--workdir", str(tmp_path / "w"), "--out", out]
    result = runner.invoke(app, ["detector", "train", "--quick", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: detector.data.missing: ")
    assert not (tmp_path / "d.safetensors").exists()


def test_train_with_a_photos_folder_holding_no_known_subset_is_a_clear_error(tmp_path: Path) -> None:
    photos = tmp_path / "shared" / "data" / "photos"
    (photos / "holiday").mkdir(parents=True)  # an unknown subset
    assert cv2.imwrite(str(photos / "holiday" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (photos / "Set5").mkdir()  # a known one, empty
    args = ["--shared", str(tmp_path / "shared"), "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "d.st")]
    result = runner.invoke(app, ["detector", "train", "--quick", *args])
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()).startswith(f"error: detector.data.missing: {photos}: no images in any "
                                                      "known subset (set5, set12, ")  # fmt: skip
    assert not (tmp_path / "w").exists() and not (tmp_path / "d.st").exists()


@pytest.mark.slow
@NEEDS_SHARED_PHOTOS
@pytest.mark.usefixtures("one_omp_thread")
def test_train_quick_runs_every_stage_and_ships_a_loadable_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "detector.safetensors"
    work = str(tmp_path / "work")
    reviewed = _reviewed(tmp_path / "reviewed")  # what `audit export-labelled` writes
    monkeypatch.setattr("authenticity.detection.train.sources.OPENCV_SAMPLES", tmp_path / "no-opencv-doc")
    result = runner.invoke(app, ["detector", "train", "--quick", "--workdir", work, "--out", str(out),
                                 "--reviewed", str(reviewed), "--autoenc-steps", "3",
                                 "--autoenc-adversarial", "0.25"])  # fmt: skip
    assert result.exit_code == 0, result.output
    # a dataset built without Debian's samples is not the shipped model's: said once, before the work
    warned = " ".join(result.stderr.split())
    assert warned == (f"warning: no opencv-doc samples in {tmp_path / 'no-opencv-doc'}: the shipped model was trained "
                      "with them (apt-get install opencv-doc)")  # fmt: skip
    written = sorted(p.relative_to(tmp_path / "work" / "dataset") for p in (tmp_path / "work" / "dataset").rglob("*")
                     if p.parent.name == "reviewed")  # fmt: skip
    assert sorted((p.parts[1], p.name) for p in written) == [
        ("fake", "reviewed__fake__likely-synthetic__b.jpg.png"), ("real", "reviewed__real__tampered__a.jpg.png")
    ]  # fmt: skip
    detector = Detector.load(out)
    cfg = detector.cfg
    assert cfg.training["command"] == "authenticity detector train" and cfg.training["init"] == "gan"
    assert (tmp_path / "work" / "gan" / "discriminator.safetensors").is_file()
    assert (tmp_path / "work" / "dataset" / "summary.json").is_file()
    assert cfg.training["autoenc_steps"] == 3 and (tmp_path / "work" / "dataset" / "autoencoder.safetensors").is_file()
    assert cfg.training["autoenc_adversarial"] == 0.25
    meta = json.loads((tmp_path / "work" / "dataset" / "autoencoder.json").read_text())
    assert (meta["steps"], meta["adversarial"]) == (3, 0.25)
    assert len(list((tmp_path / "work" / "dataset").glob("*/fake/autoenc/*.png"))) == 12  # per_family in quick mode
    assert cfg.metrics["test"]["n_real"] > 0 and cfg.metrics["test"]["n_fake"] > 0
    assert cfg.temperature > 0
    assert f"({cpu_model()})" in cfg.training["machine"]  # float results differ between CPU types
    assert cfg.training["machine"].endswith(f", CPU kernels {torch.backends.cpu.get_cpu_capability()}")
    # Resume: a second run finds every stage done and writes the same weights.
    built = (tmp_path / "work" / "dataset" / "summary.json").stat().st_mtime_ns
    same_family = ["--autoenc-steps", "3", "--autoenc-adversarial", "0.25"]
    again = runner.invoke(app, ["detector", "train", "--quick", "--workdir", str(tmp_path / "work"),
                                "--out", str(tmp_path / "again.safetensors"), *same_family])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert again.stderr == ""  # the dataset is resumed, not built: the samples no longer matter
    assert Detector.load(tmp_path / "again.safetensors").cfg.temperature == pytest.approx(cfg.temperature)
    # Another network in the same workdir: the GAN stage and dataset are reused, fine-tuning is not.
    other = runner.invoke(app, ["detector", "train", "--quick", "--workdir", str(tmp_path / "work"),
                                "--out", str(tmp_path / "npr.safetensors"), *same_family,
                                "--input", "npr", "--depth", "2",
                                "--adv-fraction", "1", "--adv-steps", "3", "--pair-blends",
                                "--enlarge", "0.5", "--undo-enlargement"])  # fmt: skip
    assert other.exit_code == 0, other.output
    assert (tmp_path / "work" / "dataset" / "summary.json").stat().st_mtime_ns == built
    npr = Detector.load(tmp_path / "npr.safetensors")
    assert (npr.cfg.input_transform, npr.cfg.depth) == ("npr", 2)
    recipe = npr.cfg.training["finetune"]
    assert (recipe["adv_fraction"], recipe["adv_steps"], recipe["pair_blends"]) == (1.0, 3, True)
    assert recipe["enlarge"] == 0.5
    assert recipe["undo_enlargement"] is True and npr.cfg.undo_enlargement is True  # trained and scored alike
    assert Detector.load(out).cfg.undo_enlargement is False
    assert Detector.load(out).cfg.training["finetune"]["pair_blends"] is False
    assert Detector.load(out).cfg.training["finetune"]["enlarge"] == 0.0
    assert npr.model.input_transform == "npr" and len(npr.model.backbone.blocks) == 2


def test_item_sources_follow_the_dataset_layout(tmp_path: Path) -> None:
    from authenticity.detection.train.finetune import load_items

    items = load_items(_dataset(tmp_path / "d"), "test", exclude=["striped"])
    assert {(i.label, i.source) for i in items} == {(0, "photo"), (1, "blocky")}
    assert all(isinstance(i, Item) for i in items)


def _blend_pairs(root: Path, n: int) -> list[Item]:
    """Face crops, 'blends' of them that are pixel copies (so only the augmentation can differ), other items."""
    rng = np.random.default_rng(2)
    for i in range(n):
        face = rng.integers(0, 255, (300, 280, 3), dtype=np.uint8)
        for cls, source, img in (("real", "face", face), ("fake", "blend", face),
                                 ("real", "photo", 255 - face), ("fake", "gan", face // 2)):  # fmt: skip
            (root / cls / source).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / cls / source / f"p{i}.png"), img)
    (root / "fake" / "blend" / "p0.png").rename(root / "fake" / "blend" / "orphan.png")  # its face is not there
    from authenticity.detection.train.finetune import load_items

    return load_items(root.parent, root.name)


def test_paired_blends_take_their_face_crop_beside_them_with_the_same_augmentation(tmp_path: Path) -> None:
    import random

    from authenticity.detection.train.finetune import _Sampler

    items = _blend_pairs(tmp_path / "train", 5)
    sampler = _Sampler(items, random.Random(0), pair_blends=True)
    assert {f.name: r.path.relative_to(tmp_path).as_posix() for f, r in sampler.pairs.items()} == {
        f"p{i}.png": f"train/real/face/p{i}.png" for i in range(1, 5)
    }
    x, y = sampler.batch(400, 64, np.random.default_rng(0))
    assert x.shape == (400, 64, 64, 3) and y.tolist() == [0.0, 1.0] * 200
    real, fake = x[0::2], x[1::2]
    same = np.array([np.array_equal(r, f) for r, f in zip(real, fake, strict=True)])
    # a paired blend is a pixel copy of its face here, so identical augmentation gives identical tiles;
    # a blend without its face, and every other family, stand beside a random real as before
    assert 60 < same.sum() < 140
    unpaired = _Sampler(items, random.Random(0))
    xu, _ = unpaired.batch(400, 64, np.random.default_rng(0))
    assert not any(np.array_equal(r, f) for r, f in zip(xu[0::2], xu[1::2], strict=True))


# -- truncated ("local") trunks: DetectorCfg.depth ---------------------------------------------
def test_a_truncated_trunk_keeps_its_first_stages_and_round_trips_through_safetensors(tmp_path: Path) -> None:
    import torch

    from authenticity.detection.model import build_model, load_detector, save_detector

    full, local = build_model(TINY), build_model(TINY.model_copy(update={"depth": 2}))
    assert len(local.backbone.blocks) == 2 < len(full.backbone.blocks)
    assert sum(p.numel() for p in local.parameters()) < sum(p.numel() for p in full.parameters())
    assert local.head.in_features == local.backbone.blocks[-1][-1].conv_pwl.out_channels
    x = torch.rand(3, 3, 32, 32)
    cfg = save_detector(local, TINY.model_copy(update={"depth": 2}), tmp_path / "local.safetensors")
    loaded, loaded_cfg = load_detector(tmp_path / "local.safetensors")
    assert loaded_cfg.depth == 2
    with torch.no_grad():
        assert torch.allclose(loaded(x), local.eval()(x).half().float(), atol=2e-2)
    assert cfg.weights_sha256


def test_a_trunk_that_cannot_be_cut_to_the_asked_depth_is_a_config_error() -> None:
    from authenticity.detection.model import DetectorNet
    from authenticity.errors import ConfigError

    with pytest.raises(ConfigError) as no_stages:
        DetectorNet("resnet18", depth=2)  # no conv_stem / blocks
    assert no_stages.value.code == "detector.arch.depth"
    with pytest.raises(ConfigError) as too_deep:
        DetectorNet(TINY.arch, depth=99)
    assert too_deep.value.code == "detector.arch.depth"


def test_a_negative_depth_in_a_cfg_file_is_refused(tmp_path: Path) -> None:
    from authenticity.detection.config import load_cfg
    from authenticity.errors import ConfigError

    data = json.loads(TINY.model_dump_json())
    data["depth"] = -1
    (tmp_path / "cfg.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        load_cfg(tmp_path / "cfg.json")
    assert err.value.code == "detector.cfg.invalid" and "depth" in err.value.message


def test_gan_init_of_a_truncated_trunk_copies_the_discriminators_first_stages(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from authenticity.detection.model import build_model
    from authenticity.detection.train.gan import DISCRIMINATOR_FILE
    from authenticity.detection.train.pipeline import initialise
    from authenticity.errors import ConfigError

    discriminator = build_model(TINY)
    (tmp_path / "gan").mkdir()
    save_file(discriminator.state_dict(), str(tmp_path / "gan" / DISCRIMINATOR_FILE))
    local = initialise(TINY.model_copy(update={"depth": 2}), "gan", tmp_path / "gan")
    own = local.state_dict()
    kept = [k for k in own if k.startswith("backbone.")]
    assert kept and all(torch.equal(own[k], discriminator.state_dict()[k]) for k in kept)
    # weights of another architecture cover none of the trunk: refused, not silently half-loaded
    other = build_model(DetectorCfg(arch="resnet18"))
    save_file(other.state_dict(), str(tmp_path / "gan" / DISCRIMINATOR_FILE))
    with pytest.raises(ConfigError) as err:
        initialise(TINY.model_copy(update={"depth": 2}), "gan", tmp_path / "gan")
    assert err.value.code == "detector.init.mismatch"


@pytest.mark.parametrize(("network", "adv_fraction"), [({"depth": 2}, 0.0), ({"input_transform": "npr"}, 0.25)],
                         ids=["truncated", "npr"])  # fmt: skip
def test_fine_tuning_a_truncated_or_npr_network_learns_the_tiny_task(
    tmp_path: Path, network: dict[str, object], adv_fraction: float
) -> None:
    from authenticity.detection.model import build_model
    from authenticity.detection.train.finetune import TrainParams, finetune, load_items

    cfg = TINY.model_copy(update=network)
    root = _dataset(tmp_path / "d")
    params = TrainParams(steps=60, batch=8, lr=3e-3, adv_fraction=adv_fraction, checkpoint_every=60, freeze_blocks=0)
    model = finetune(build_model(cfg), cfg, load_items(root, "train"), params, tmp_path)
    detector = Detector(model, cfg)
    scores = {i.path: detector.score_path(i.path).score for i in load_items(root, "test")}
    real = [s for p, s in scores.items() if "/real/" in str(p)]
    fake = [s for p, s in scores.items() if "/fake/" in str(p)]
    assert next(model.parameters()).device.type == "cpu"
    assert sum(fake) / len(fake) > sum(real) / len(real)


# -- neighbouring-pixel residual input: DetectorCfg.input_transform = "npr" -------------------
def test_npr_is_zero_on_a_nearest_upsampled_image_and_keeps_within_block_differences() -> None:
    import torch

    from authenticity.detection.model import NPR_GAIN, npr_residual

    low = torch.rand(2, 3, 8, 8)
    upsampled = low.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # every 2×2 block flat
    assert torch.count_nonzero(npr_residual(upsampled)) == 0
    x = torch.rand(1, 3, 7, 9)  # odd sides: same shape out, the last row/column compares with itself
    residual = npr_residual(x)
    assert residual.shape == x.shape
    assert torch.allclose(residual[..., 1, 1], (x[..., 1, 1] - x[..., 0, 0]) * NPR_GAIN)
    assert torch.allclose(residual[..., 0, 1], (x[..., 0, 1] - x[..., 0, 0]) * NPR_GAIN)
    assert torch.count_nonzero(residual[..., 6, 8]) == 0 and torch.count_nonzero(residual[..., ::2, ::2]) == 0


def test_an_npr_network_sees_residuals_and_round_trips_through_safetensors(tmp_path: Path) -> None:
    import torch

    from authenticity.detection.model import build_model, load_detector, save_detector

    cfg = TINY.model_copy(update={"input_transform": "npr"})
    rgb, npr = build_model(TINY).eval(), build_model(cfg).eval()
    npr.load_state_dict(rgb.state_dict())
    flat = torch.rand(2, 3, 16, 16).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    brighter = flat + 0.5  # same residual, different pixels
    with torch.no_grad():
        assert torch.allclose(npr(flat), npr(brighter))
        assert not torch.allclose(rgb(flat), rgb(brighter))
    save_detector(npr, cfg, tmp_path / "npr.safetensors")
    loaded, loaded_cfg = load_detector(tmp_path / "npr.safetensors")
    assert loaded_cfg.input_transform == "npr" and loaded.input_transform == "npr"
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), npr(x), atol=2e-2)


def test_an_unknown_input_transform_is_refused_in_a_cfg_file_and_in_the_network(tmp_path: Path) -> None:
    from authenticity.detection.config import load_cfg
    from authenticity.detection.model import DetectorNet
    from authenticity.errors import ConfigError

    data = json.loads(TINY.model_dump_json())
    data["input_transform"] = "fft"
    (tmp_path / "cfg.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        load_cfg(tmp_path / "cfg.json")
    assert err.value.code == "detector.cfg.invalid" and "input_transform" in err.value.message
    with pytest.raises(ConfigError) as net:
        DetectorNet(TINY.arch, input_transform="fft")
    assert net.value.code == "detector.input.unknown"
    assert net.value.message == "unknown input transform 'fft': use rgb or npr"


def test_a_finetune_checkpoint_resumes_only_on_the_same_network(tmp_path: Path) -> None:
    from authenticity.detection.model import build_model
    from authenticity.detection.train.finetune import TrainParams, finetune, load_items

    items = load_items(_dataset(tmp_path / "d"), "train")
    params = TrainParams(steps=3, batch=4, adv_fraction=0.0, checkpoint_every=1, freeze_blocks=0)

    def steps_run(cfg: DetectorCfg) -> list[int]:
        seen: list[int] = []
        finetune(build_model(cfg), cfg, items, params, tmp_path, on_step=lambda step, _loss: seen.append(step))
        return seen

    assert steps_run(TINY) == [1, 2, 3]
    assert steps_run(TINY) == []  # finished checkpoint, same network: nothing left to do
    npr = TINY.model_copy(update={"input_transform": "npr"})
    assert steps_run(npr) == [1, 2, 3]  # another input: the rgb checkpoint is not resumed
    assert steps_run(npr.model_copy(update={"depth": 2})) == [1, 2, 3]  # another trunk: no shape error either


@pytest.mark.parametrize(("option", "value", "code", "allowed"), [
    ("--depth", "8", "usage.train.depth", "use 0 (whole trunk) to 7"),
    ("--depth", "-1", "usage.train.depth", "use 0 (whole trunk) to 7"),
    ("--device", "tpu", "usage.train.device", "use cpu, or cuda on a machine with a GPU"),
    ("--input", "fft", "usage.train.input", "use rgb or npr"),
    ("--steps", "0", "usage.train.steps", "use at least 1"),
    ("--batch", "1", "usage.train.batch", "use at least 2"),
    ("--gan-steps", "-5", "usage.train.gan_steps", "use 0 or more"),
    ("--per-family", "0", "usage.train.per_family", "use at least 1"),
    ("--autoenc-steps", "-1", "usage.train.autoenc_steps", "use 0 or more"),
    ("--autoenc-adversarial", "-0.5", "usage.train.autoenc_adversarial", "use 0 or more"),
    ("--autoenc-adversarial", "nan", "usage.train.autoenc_adversarial", "use 0 or more"),
    ("--exclude-family", "autoecn", "usage.train.exclude_family",
     "use one of gan, sd, dcgan, cyclegan, upsample, blend, autoenc, esrgan, reviewed"),
    ("--adv-fraction", "1.5", "usage.train.adv_fraction", "use from 0 to 1"),
    ("--adv-fraction", "-0.1", "usage.train.adv_fraction", "use from 0 to 1"),
    ("--adv-fraction", "nan", "usage.train.adv_fraction", "use from 0 to 1"),
    ("--adv-steps", "0", "usage.train.adv_steps", "use at least 1"),
    ("--enlarge", "1.5", "usage.train.enlarge", "use from 0 to 1"),
    ("--enlarge", "-0.25", "usage.train.enlarge", "use from 0 to 1"),
    ("--enlarge", "nan", "usage.train.enlarge", "use from 0 to 1"),
])  # fmt: skip
def test_train_refuses_a_bad_option_value_before_any_work(
    tmp_path: Path, option: str, value: str, code: str, allowed: str
) -> None:
    args = ["--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "d.safetensors"), option, value]
    result = runner.invoke(app, ["detector", "train", "--quick", *args])
    assert result.exit_code == 2
    shown = repr(value) if option in ("--device", "--input", "--exclude-family") else value
    assert result.stderr == f"error: {code}: {option} {shown}: {allowed}\n"
    assert not (tmp_path / "w").exists() and not (tmp_path / "d.safetensors").exists()


@pytest.mark.parametrize(("args", "steps"), [
    ([], 600),  # the shipped recipe: AUTOENC_STEPS
    (["--autoenc-steps", "0"], 0),
    (["--autoenc-steps", "900"], 900),
    (["--quick"], 2),
    (["--quick", "--autoenc-steps", "0"], 0),  # a quick run can leave the family out too
])  # fmt: skip
def test_the_autoenc_family_is_in_the_default_recipe_and_zero_leaves_it_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], steps: int
) -> None:
    from authenticity.detection.config import AUTOENC_STEPS

    assert train_params(monkeypatch, tmp_path, args).autoenc_steps == steps and AUTOENC_STEPS == 600


def test_the_cli_knows_every_family_the_dataset_builds() -> None:
    from authenticity.cli.detect import TRAIN_FAMILIES
    from authenticity.detection.train import dataset

    assert set(TRAIN_FAMILIES) == {*dataset._FAMILIES, "autoenc", "esrgan", "reviewed"}


def test_train_on_cuda_without_a_gpu_is_a_usage_error(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    args = ["--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "d.safetensors"), "--device", "cuda"]
    result = runner.invoke(app, ["detector", "train", "--quick", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: usage.train.device: --device 'cuda': ")
    assert not (tmp_path / "w").exists() and not (tmp_path / "d.safetensors").exists()


def test_the_cpu_model_comes_from_cpuinfo_and_has_a_fallback(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\nprocessor\t: 1\n")
    assert cpu_model(info) == "AMD EPYC 9R14"
    info.write_text("processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nprocessor\t: 1\n")
    assert cpu_model(info) == "AMD EPYC, family 25 model 17"  # one name, several microarchitectures
    info.write_text("processor\t: 0\nmodel name\t:\n")  # an empty name is no name
    assert cpu_model(info) == (platform.processor() or "unknown CPU")
    assert cpu_model(tmp_path / "missing") == (platform.processor() or "unknown CPU")
    info.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n")  # an Arm kernel
    assert cpu_model(info) == "Arm CPU part 0xd0c"


# -- an exponential moving average of the weights: TrainParams.ema ----------------------------
def test_ema_returns_the_average_of_the_trained_weights_and_resumes_it(tmp_path: Path) -> None:
    from authenticity.detection.model import build_model
    from authenticity.detection.train.finetune import TrainParams, final_weights, finetune, load_items

    items = load_items(_dataset(tmp_path / "d"), "train")
    decay = 0.5
    params = TrainParams(steps=3, batch=4, lr=3e-2, adv_fraction=0.0, checkpoint_every=1, freeze_blocks=0, ema=decay)
    model = build_model(TINY)
    name, _ = [(n, p) for n, p in model.named_parameters() if p.requires_grad][-1]
    trained: dict[int, torch.Tensor] = {}

    def record(step: int, _loss: float) -> None:
        trained[step] = model.get_parameter(name).detach().clone()

    def interrupt_at_2(step: int, loss: float) -> None:
        record(step, loss)
        if step == 2:
            raise KeyboardInterrupt  # after step 2's update, before its checkpoint: step 1 is on disk

    with pytest.raises(KeyboardInterrupt):
        finetune(model, TINY, items, params, tmp_path, on_step=interrupt_at_2)
    model = build_model(TINY)  # a fresh process resumes from the step-1 checkpoint
    averaged = finetune(model, TINY, items, params, tmp_path, on_step=record)
    expected = trained[1]  # the first update copies, later ones move by (1 - decay)
    for step in (2, 3):
        expected = decay * expected + (1 - decay) * trained[step]
    assert averaged is not model and not averaged.training
    assert torch.allclose(averaged.get_parameter(name), expected, atol=1e-6)
    assert not torch.allclose(averaged.get_parameter(name), trained[3])
    assert torch.load(tmp_path / "finetune.pt", weights_only=False)["ema"]["n_averaged"].item() == 3
    last = final_weights(build_model(TINY), tmp_path)
    assert torch.equal(last.get_parameter(name), trained[3]) and not last.training
