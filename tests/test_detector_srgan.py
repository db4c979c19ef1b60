"""The ``esrgan`` family: a TF.js layers-model interpreter, the pinned npm generator, and the dataset writer.

The interpreter is checked against references written independently of torch's convolution
(explicit numpy loops and TensorFlow's documented ``depth_to_space`` order). The generator
downloads from the npm registry, which this project's machines and CI reach.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from authenticity.detection.train._srgan import (
    SR_URL,
    fetch_sr_generator,
    load_sr_generator,
    super_resolve,
)
from authenticity.detection.train._tfjs import LayersModel, load_layers_model
from authenticity.errors import ConfigError, UsageError
from bench import sr_family

from .conftest import NEEDS_SHARED_PHOTOS, write_photo

RNG = np.random.default_rng(7)


def _picture(path: Path, height: int, width: int, seed: int) -> np.ndarray:
    """A picture written as PNG and decoded by OpenCV: gradient, seeded discs, noise."""
    write_photo(path, seed=seed, size=(height, width))
    return np.asarray(cv2.imread(str(path), cv2.IMREAD_COLOR), np.uint8)


def _conv_ref(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """'same' 3x3 convolution, HWC in, Keras kernel [kh, kw, in, out], by explicit sums."""
    h, w, _ = x.shape
    kh, kw, _, cout = kernel.shape
    padded = np.pad(x, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = np.zeros((h, w, cout), np.float64)
    for i in range(kh):
        for j in range(kw):
            out += padded[i : i + h, j : j + w, :] @ kernel[i, j]
    return out + bias


def _depth_to_space_ref(x: np.ndarray, r: int) -> np.ndarray:
    """TensorFlow's documented order: out[y*r+i, x*r+j, c] = in[y, x, (i*r + j)*C + c]."""
    h, w, ch = x.shape
    c = ch // (r * r)
    out = np.zeros((h * r, w * r, c), x.dtype)
    for y in range(h):
        for xx in range(w):
            for i in range(r):
                for j in range(r):
                    out[y * r + i, xx * r + j] = x[y, xx, (i * r + j) * c : (i * r + j + 1) * c]
    return out


def _layer(name: str, kind: str, inputs: list[str], **config: object) -> dict[str, object]:
    return {"class_name": kind, "name": name, "config": {"name": name, **config},
            "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]]}  # fmt: skip


def _conv(name: str, inp: str, filters: int, activation: str = "linear") -> dict[str, object]:
    return _layer(name, "Conv2D", [inp], filters=filters, kernel_size=[3, 3], strides=[1, 1], padding="same",
                  activation=activation, use_bias=True, data_format="channels_last", dilation_rate=[1, 1])  # fmt: skip


def _write_model(folder: Path, layers: list[dict[str, object]], weights: dict[str, np.ndarray],
                 quantise: set[str] = frozenset(), fmt: str = "layers-model") -> None:  # fmt: skip
    """A TF.js layers model as the converter writes one (uint8 quantisation for names in ``quantise``)."""
    folder.mkdir(parents=True, exist_ok=True)
    specs, blob = [], b""
    for name, value in weights.items():
        spec: dict[str, object] = {"name": name, "shape": list(value.shape), "dtype": "float32"}
        if name in quantise:
            lo, scale = float(value.min()), float(value.max() - value.min()) / 255
            q = np.round((value - lo) / scale).astype(np.uint8)
            spec["quantization"] = {"dtype": "uint8", "min": lo, "scale": scale, "original_dtype": "float32"}
            blob += q.tobytes()
        else:
            blob += value.astype(np.float32).tobytes()
        specs.append(spec)
    (folder / "weights.bin").write_bytes(blob)
    inp = {"class_name": "InputLayer", "name": "in", "config": {"name": "in"}, "inbound_nodes": []}
    topology = {
        "model_config": {
            "class_name": "Model",
            "config": {
                "layers": [inp, *layers],
                "input_layers": [["in", 0, 0]],
                "output_layers": [[layers[-1]["name"], 0, 0]],
            },
        }
    }
    manifest = [{"paths": ["weights.bin"], "weights": specs}]
    (folder / "model.json").write_text(
        json.dumps({"format": fmt, "modelTopology": topology, "weightsManifest": manifest})
    )


def _graph() -> tuple[list[dict[str, object]], dict[str, np.ndarray]]:
    """conv -> relu, concat with the input, conv, x0.2, + first conv, conv to 12, pixel shuffle 2x."""
    layers = [
        _conv("c1", "in", 4), _layer("r1", "Activation", ["c1"], activation="relu"),
        _layer("cat", "Concatenate", ["in", "r1"], axis=3), _conv("c2", "cat", 4),
        _layer("beta", "MultiplyBeta", ["c2"], beta=0.2), _layer("add", "Add", ["c1", "beta"]),
        _conv("c3", "add", 12), _layer("ps", "PixelShuffle2x", ["c3"], scale=2),
    ]  # fmt: skip
    shapes = {"c1": (3, 4), "c2": (7, 4), "c3": (4, 12)}
    weights = {}
    for name, (cin, cout) in shapes.items():
        weights[f"{name}/kernel"] = RNG.normal(0, 0.3, (3, 3, cin, cout)).astype(np.float32)
        weights[f"{name}/bias"] = RNG.normal(0, 0.1, cout).astype(np.float32)
    return layers, weights


def _reference(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    c1 = _conv_ref(x, w["c1/kernel"], w["c1/bias"])
    c2 = _conv_ref(np.concatenate([x, np.maximum(c1, 0)], axis=2), w["c2/kernel"], w["c2/bias"])
    c3 = _conv_ref(c1 + 0.2 * c2, w["c3/kernel"], w["c3/bias"])
    return _depth_to_space_ref(c3, 2)


def _run(net: LayersModel, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        y = net(torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None])
    return y[0].permute(1, 2, 0).numpy()


def test_the_interpreter_matches_an_independent_reference(tmp_path: Path) -> None:
    layers, weights = _graph()
    _write_model(tmp_path / "m", layers, weights)
    x = RNG.random((5, 6, 3))
    got = _run(load_layers_model(tmp_path / "m"), x)
    assert got.shape == (10, 12, 3)
    np.testing.assert_allclose(got, _reference(x, weights), atol=1e-4)


def test_uint8_quantised_weights_are_dequantised_as_tfjs_does(tmp_path: Path) -> None:
    layers, weights = _graph()
    _write_model(tmp_path / "m", layers, weights, quantise={"c1/kernel", "c3/kernel"})
    spec = json.loads((tmp_path / "m" / "model.json").read_text())["weightsManifest"][0]["weights"]
    blob = (tmp_path / "m" / "weights.bin").read_bytes()
    assert len(blob) == sum(int(np.prod(s["shape"])) * (1 if "quantization" in s else 4) for s in spec)
    dequantised = dict(weights)
    for s in spec:
        if q := s.get("quantization"):
            exact = weights[s["name"]]
            step = np.round((exact - q["min"]) / q["scale"])
            dequantised[s["name"]] = (q["min"] + q["scale"] * step).astype(np.float32)
            assert not np.array_equal(dequantised[s["name"]], exact)  # the test would not see a missed dequantise
    x = RNG.random((4, 4, 3))
    np.testing.assert_allclose(_run(load_layers_model(tmp_path / "m"), x), _reference(x, dequantised), atol=1e-4)


def test_a_layer_it_cannot_evaluate_is_refused_on_load(tmp_path: Path) -> None:
    layers, weights = _graph()
    layers[1] = _layer("r1", "Activation", ["c1"], activation="tanh")
    _write_model(tmp_path / "a", layers, weights)
    with pytest.raises(UsageError) as err:
        load_layers_model(tmp_path / "a")
    assert (err.value.code, err.value.message) == ("train.tfjs_layer", "unsupported TF.js layer 'r1' (Activation)")
    layers, _ = _graph()
    layers[0]["config"]["strides"] = [2, 2]  # type: ignore[index]
    _write_model(tmp_path / "b", layers, weights)
    with pytest.raises(UsageError, match=r"unsupported TF.js layer 'c1' \(Conv2D\)"):
        load_layers_model(tmp_path / "b")
    layers, _ = _graph()
    layers.append(_layer("bn", "BatchNormalization", ["ps"]))
    _write_model(tmp_path / "c", layers, weights)
    with pytest.raises(UsageError, match=r"unsupported TF.js layer 'bn' \(BatchNormalization\)"):
        load_layers_model(tmp_path / "c")


def test_a_graph_out_of_order_or_a_missing_weight_is_refused(tmp_path: Path) -> None:
    layers, weights = _graph()
    layers[0], layers[1] = layers[1], layers[0]  # the ReLU before the conv it reads
    _write_model(tmp_path / "o", layers, weights)
    with pytest.raises(UsageError) as err:
        load_layers_model(tmp_path / "o")
    assert (err.value.code, err.value.message) == ("train.tfjs_graph", "layer 'r1' reads 'c1' before it is computed")
    layers, weights = _graph()
    del weights["c2/bias"]
    _write_model(tmp_path / "w", layers, weights)
    with pytest.raises(UsageError) as err:
        load_layers_model(tmp_path / "w")
    assert (err.value.code, err.value.message) == ("train.tfjs_weights", "no weight 'c2/bias' in the weight manifest")


def test_a_graph_model_and_weights_of_the_wrong_length_are_refused(tmp_path: Path) -> None:
    layers, weights = _graph()
    _write_model(tmp_path / "g", layers, weights, fmt="graph-model")
    with pytest.raises(UsageError) as err:
        load_layers_model(tmp_path / "g")
    assert (err.value.code, err.value.message) == (
        "train.tfjs_format",
        f"{tmp_path / 'g'}: not a TF.js layers model ('graph-model')",
    )
    _write_model(tmp_path / "s", layers, weights)
    with (tmp_path / "s" / "weights.bin").open("ab") as f:
        f.write(b"\0" * 4)
    with pytest.raises(UsageError) as err:
        load_layers_model(tmp_path / "s")
    assert (err.value.code, err.value.message) == (
        "train.tfjs_weights",
        f"{tmp_path / 's'}: weight shards hold 3252 bytes, manifest 3248",
    )
    blob = (tmp_path / "s" / "weights.bin").read_bytes()
    (tmp_path / "s" / "weights.bin").write_bytes(blob[:-100])
    with pytest.raises(UsageError) as err:
        load_layers_model(tmp_path / "s")
    assert (err.value.code, err.value.message) == (
        "train.tfjs_weights",
        f"{tmp_path / 's'}: weight shards end inside 'c3/kernel'",
    )


@pytest.fixture(scope="module")
def sr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fetch_sr_generator(tmp_path_factory.mktemp("sr") / "model")


def test_the_pinned_generator_arrives_checked_and_a_second_fetch_uses_it(sr_dir: Path) -> None:
    assert sorted(p.name for p in sr_dir.iterdir()) == ["group1-shard1of1.bin", "model.json"]
    before = {p.name: p.stat().st_mtime_ns for p in sr_dir.iterdir()}
    assert fetch_sr_generator(sr_dir, url="https://127.0.0.1:9/nothing-here.tgz") == sr_dir  # no network needed
    assert {p.name: p.stat().st_mtime_ns for p in sr_dir.iterdir()} == before


def test_the_generator_re_draws_a_picture_with_invented_detail(sr_dir: Path, tmp_path: Path) -> None:
    net = load_sr_generator(sr_dir)
    assert sum(p.numel() for p in net.parameters()) > 1_000_000  # the published RRDN, not a toy
    photo = _picture(tmp_path / "p.png", 128, 96, seed=3)
    fake = super_resolve(net, photo)
    assert fake.shape == photo.shape and fake.dtype == np.uint8
    small = cv2.resize(photo, (24, 32), interpolation=cv2.INTER_AREA)
    bicubic = cv2.resize(small, (96, 128), interpolation=cv2.INTER_CUBIC)

    def detail(img: np.ndarray) -> float:
        return float(np.abs(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_32F)).mean())

    assert detail(fake) > 2 * detail(bicubic)  # a GAN invents texture that interpolation cannot
    assert cv2.PSNR(photo, fake) > 12  # and still draws the same picture
    with pytest.raises(ValueError, match="crop sides must be multiples of 4, got 97x128"):
        super_resolve(net, np.zeros((128, 97, 3), np.uint8))


def test_a_tampered_model_folder_is_refused(sr_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sr_dir, copy)
    with (copy / "group1-shard1of1.bin").open("r+b") as f:
        f.write(b"\x01")
    with pytest.raises(ConfigError) as err:
        load_sr_generator(copy)
    assert err.value.code == "detector.sr.missing"


def test_a_download_that_fails_or_differs_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        fetch_sr_generator(tmp_path / "a", url="http://127.0.0.1:9/esrgan.tgz", timeout=5)
    assert err.value.code == "detector.sr.fetch" and "download failed" in err.value.message
    other = tmp_path / "other.tgz"
    other.write_bytes(b"not the archive")
    with pytest.raises(ConfigError) as err:
        fetch_sr_generator(tmp_path / "b", url=other.as_uri())
    digest = hashlib.sha256(b"not the archive").hexdigest()[:12]
    assert err.value.message == f"@upscalerjs/esrgan-legacy@1.0.0: archive SHA-256 {digest}…, pinned fcf8aea83606…"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert SR_URL.startswith("https://registry.npmjs.org/")


def _tiny_dataset(root: Path) -> Path:
    dataset = root / "dataset"
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        folder = dataset / split / "real" / "photo"
        folder.mkdir(parents=True)
        for k in range(n):
            _picture(folder / f"BSD68__{split}{k}.png", 300 - 10 * k, 260, seed=k)
    summary = {"per_family": 4, "seed": 0, "notes": [], "totals": {"train": {"real": 3, "fake": 0}},
               "counts": {"train": {"real": {"photo": 3}}}}  # fmt: skip
    (dataset / "summary.json").write_text(json.dumps(summary))
    return dataset


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bench_adds_the_family_with_twins_then_refuses_a_second_time(
    sr_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = _tiny_dataset(tmp_path)
    assert sr_family.main(["--dataset", str(dataset), "--sr-dir", str(sr_dir)]) == 0
    fakes = sorted(dataset.glob("*/fake/esrgan/*.png"))
    assert len(fakes) == 4
    for fake in fakes:
        split = fake.parts[-4]
        twin = dataset / "twins" / split / "real" / "esrgan" / fake.name
        real, drawn = cv2.imread(str(twin)), cv2.imread(str(fake))
        assert real.shape == drawn.shape == (256, 256, 3) and not np.array_equal(real, drawn)
        assert (dataset / split / "real" / "photo" / f"{fake.name.rsplit('__', 1)[0]}.png").is_file()
    summary = json.loads((dataset / "summary.json").read_text())
    assert sum(summary["counts"][s]["fake"]["esrgan"] for s in summary["counts"] if "fake" in summary["counts"][s]) == 4
    assert summary["notes"][-1].startswith("esrgan: 4 crops re-drawn 4x by @upscalerjs/esrgan-legacy@1.0.0")
    before = _tree(dataset)
    capsys.readouterr()
    assert sr_family.main(["--dataset", str(dataset), "--sr-dir", str(sr_dir)]) == 2
    assert capsys.readouterr().err == f"error: bench.sr_family.exists: {dataset} already holds the esrgan family\n"
    assert _tree(dataset) == before
    png = tmp_path / "fig" / "examples.png"
    assert sr_family.main(["--dataset", str(dataset), "--figure", str(png)]) == 0
    rows = len(list(dataset.glob("test/fake/esrgan/*.png")))
    drawn = cv2.imread(str(png))
    assert rows >= 1 and drawn.shape[:2] == (210 * min(rows, 2), 630)
    assert _tree(dataset) == before


def test_bench_refuses_a_folder_that_is_not_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sr_family.main(["--dataset", str(tmp_path), "--sr-dir", str(tmp_path / "sr")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}: no summary.json (not a finished dataset)\n"
    assert list(tmp_path.iterdir()) == []
    dataset = _tiny_dataset(tmp_path)
    assert sr_family.main(["--dataset", str(dataset)]) == 2
    assert capsys.readouterr().err == "error: pass --sr-dir (add the family) or --figure (draw it)\n"
    assert sr_family.main(["--dataset", str(dataset), "--figure", str(tmp_path / "f.png")]) == 2
    assert (
        capsys.readouterr().err
        == f"error: bench.sr_family.missing: {dataset}: no test/fake/esrgan files (add the family first)\n"
    )
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize(("built", "asked", "reused"), [
    (False, False, True), (True, True, True),
    (False, True, False),  # asked for and missing: rebuild, never train silently without it
    (True, False, False),  # there and not asked for: rebuild, the test split must match the recipe
])  # fmt: skip
def test_an_existing_dataset_is_resumed_only_with_the_esrgan_family_the_run_asks_for(
    tmp_path: Path, built: bool, asked: bool, reused: bool
) -> None:
    from authenticity.detection.train.dataset import DATASET_RECIPE
    from authenticity.detection.train.pipeline import PipelineParams, dataset_reusable

    fakes = {"gan": 3, **({"esrgan": 2} if built else {})}
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"recipe": DATASET_RECIPE, "counts": {"test": {"fake": fakes}}}))
    params = PipelineParams(workdir=tmp_path, out=tmp_path / "d.safetensors", sr_family=asked)
    assert dataset_reusable(summary, params) is reused


@pytest.mark.parametrize(("args", "asked"), [
    ([], True),  # the shipped recipe
    (["--sr-family"], True), (["--no-sr-family"], False),
    (["--quick"], False), (["--quick", "--sr-family"], True),
])  # fmt: skip
def test_train_adds_the_family_in_the_shipped_recipe_and_where_asked(
    sr_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], asked: bool
) -> None:
    from .conftest import train_params

    shutil.copytree(sr_dir, tmp_path / "w" / "sr_model")  # the workdir train_params uses: nothing to download
    assert train_params(monkeypatch, tmp_path, args).sr_family is asked


def test_train_with_the_family_and_no_registry_stops_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from authenticity.cli.app import app
    from authenticity.detection.train import pipeline

    def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError("Network is unreachable")

    def trained(params: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr("authenticity.detection.train._srgan.urllib.request.urlopen", unreachable)
    monkeypatch.setattr(pipeline, "run_training", trained)
    work = tmp_path / "w"
    result = CliRunner().invoke(app, ["detector", "train", "--quick", "--sr-family", "--workdir", str(work),
                                      "--out", str(tmp_path / "d.safetensors")])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert " ".join(result.stderr.split()) == (
        "error: detector.sr.fetch: @upscalerjs/esrgan-legacy@1.0.0: download failed (Network is unreachable) "
        "(the npm registry must be reachable, or give a folder that already holds the model)"
    )
    assert not (work / "sr_model").exists() and not (tmp_path / "d.safetensors").exists()


def test_the_dataset_builder_and_the_bench_write_the_same_family_and_leave_the_rest_as_it_was(
    sr_dir: Path, tmp_path: Path
) -> None:
    from authenticity.detection.config import DetectorCfg
    from authenticity.detection.train.dataset import build_dataset

    from .test_detection_data import _tiny_shared

    shared = _tiny_shared(tmp_path / "shared")
    cfg = DetectorCfg(arch="efficientnet_lite0", tile_size=64)
    common = {"cfg": cfg, "per_family": 3, "seed": 0, "gan_dir": None, "progress": False,
              "cyclegan_cap": 1, "cyclegan_size": 64, "opencv_dir": None}  # fmt: skip
    build_dataset(shared, tmp_path / "plain", **common)  # type: ignore[arg-type]
    summary = build_dataset(shared, tmp_path / "with", sr_dir=sr_dir, **common)  # type: ignore[arg-type]
    assert summary.notes[-1].startswith("esrgan: 3 crops re-drawn 4x by @upscalerjs/esrgan-legacy@1.0.0 (RRDN GAN)")
    plain, built = _tree(tmp_path / "plain"), _tree(tmp_path / "with")
    ours = {k for k in built if "/esrgan/" in k}
    assert len([k for k in ours if "/fake/esrgan/" in k]) == 3 and len(ours) == 6  # and their twins
    assert {k: v for k, v in built.items() if k not in ours and k != "summary.json"} == {
        k: v for k, v in plain.items() if k != "summary.json"
    }
    # the bench adds the very same files to the dataset built without them
    assert sr_family.main(["--dataset", str(tmp_path / "plain"), "--sr-dir", str(sr_dir), "--crop-side", "128"]) == 0
    added = _tree(tmp_path / "plain")
    assert {k: v for k, v in added.items() if k in ours} == {k: built[k] for k in ours}
    counts = json.loads((tmp_path / "plain" / "summary.json").read_text())["counts"]
    assert counts == json.loads((tmp_path / "with" / "summary.json").read_text())["counts"]


def test_lofo_holds_out_the_families_the_dataset_has_and_refuses_an_unknown_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import lofo

    dataset = tmp_path / "work" / "dataset"
    for family in ("upsample", "esrgan", "gan"):
        (dataset / "train" / "fake" / family).mkdir(parents=True)
    assert lofo.dataset_families(dataset) == ["esrgan", "gan", "upsample"]
    assert "esrgan" in lofo.FAMILIES
    (tmp_path / "work" / "gan").mkdir()
    (dataset / "summary.json").write_text("{}")
    code = lofo.main(["--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "o"), "--families", "gan,srgan"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: --families 'srgan': use some of autoenc, blend, cyclegan,")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@NEEDS_SHARED_PHOTOS
@pytest.mark.usefixtures("one_omp_thread")
def test_a_quick_training_run_with_the_family_trains_on_it_and_records_it(
    sr_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from authenticity.cli.app import app
    from authenticity.detection.scoring import Detector

    work = tmp_path / "work"
    shutil.copytree(sr_dir, work / "sr_model")  # already fetched: the run must use it, not download again

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("downloaded the generator again")

    monkeypatch.setattr("authenticity.detection.train._srgan.urllib.request.urlopen", no_download)
    out = tmp_path / "d.safetensors"
    result = CliRunner().invoke(app, ["detector", "train", "--quick", "--sr-family", "--workdir", str(work),
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list((work / "dataset").glob("*/fake/esrgan/*.png"))) == 12  # per_family in quick mode
    assert len(list((work / "dataset" / "twins").glob("*/real/esrgan/*.png"))) == 12
    cfg = Detector.load(out).cfg
    assert cfg.training["sr_family"] == "@upscalerjs/esrgan-legacy@1.0.0"
    assert cfg.training["train_counts"]["fake/esrgan"] == len(list((work / "dataset").glob("train/fake/esrgan/*")))
    assert cfg.metrics["test"]["n_fake"] > 0
