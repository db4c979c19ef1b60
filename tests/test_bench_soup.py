"""bench/soup.py: the uniform average of detectors fine-tuned from one initialisation."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from authenticity.cli.app import app
from authenticity.detection.config import DetectorCfg
from authenticity.detection.model import build_model, load_detector, save_detector
from authenticity.detection.scoring import Detector

from .conftest import NEEDS_SHARED_PHOTOS

_BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str, file: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, _BENCH / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


soup = _load("bench_soup", "soup.py")
lofo = _load("bench_lofo_for_soup", "lofo.py")


def _weights(path: Path, seed: int, cfg: DetectorCfg) -> Path:
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.normal_()
            else:  # batch-norm step counters: each input its own
                tensor.fill_(100 + seed)
    save_detector(model, cfg, path)
    return path


def test_the_soup_is_the_mean_of_each_float_tensor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = DetectorCfg(depth=2, temperature=1.7, logit_bias=0.3, threshold=0.6, metrics={"test": {"auc": 0.9}})
    a, b, c = (_weights(tmp_path / f"{n}.safetensors", k, cfg) for k, n in enumerate("abc"))
    assert soup.main(["--weights", str(a), str(b), str(c), "--out", str(tmp_path / "s.safetensors")]) == 0
    printed = json.loads(capsys.readouterr().out)
    model, saved = load_detector(tmp_path / "s.safetensors")  # its own hash, checked on load
    assert printed["sha256"] == saved.weights_sha256 and saved.depth == 2
    # an input's calibration and scores say nothing of the soup: reset, and the inputs named
    assert (saved.temperature, saved.logit_bias, saved.threshold, saved.metrics) == (1.0, 0.0, 0.5, {})
    assert [i["weights"] for i in saved.training["soup_of"]] == [str(a), str(b), str(c)]
    assert saved.training["soup_of"][1]["sha256"] == load_detector(b)[1].weights_sha256
    states = [load_detector(p)[0].state_dict() for p in (a, b, c)]
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            mean = torch.stack([s[key] for s in states]).mean(dim=0)
            assert torch.allclose(value, mean.half().float()), key  # stored as fp16, like every detector
        else:
            assert torch.equal(value, states[0][key]), key
    assert not torch.equal(model.state_dict()["head.weight"], states[0]["head.weight"])


def test_one_file_other_depths_and_missing_weights_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _weights(tmp_path / "a.safetensors", 0, DetectorCfg(depth=2))
    b = _weights(tmp_path / "b.safetensors", 1, DetectorCfg(depth=3))
    out = tmp_path / "s.safetensors"
    with pytest.raises(SystemExit, match=r"^error: a soup needs at least two weight files$"):
        soup.main(["--weights", str(a), "--out", str(out)])
    with pytest.raises(SystemExit, match=rf"^error: {b}: differs from {a} in depth$"):
        soup.main(["--weights", str(a), str(b), "--out", str(out)])
    assert soup.main(["--weights", str(a), str(tmp_path / "none.safetensors"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: detector.weights.not_found: ")
    assert not out.exists()


@pytest.mark.slow
@NEEDS_SHARED_PHOTOS
@pytest.mark.usefixtures("one_omp_thread")
def test_lofo_keeps_held_out_weights_on_request_and_two_seeds_soup_into_a_loadable_detector(tmp_path: Path) -> None:
    work = tmp_path / "work"
    built = CliRunner().invoke(app, ["detector", "train", "--quick", "--workdir", str(work),
                                     "--out", str(tmp_path / "quick.safetensors")])  # fmt: skip
    assert built.exit_code == 0, built.output
    out = tmp_path / "lofo"
    for seed in (0, 1):
        variant = lofo.Variant.parse(f"s{seed}:steps=2,adv=0,seed={seed}")
        lofo.run_one(work, variant, "sd", out, False, 0, keep_weights=seed == 1)
    assert sorted(p.name for p in (out / "weights").glob("*.safetensors")) == ["s1__sd.safetensors"]
    lofo.run_one(work, lofo.Variant.parse("s0:steps=2,adv=0,seed=0"), "sd", out, False, 0,
                 keep_weights=True)  # fmt: skip
    kept = [out / "weights" / f"s{seed}__sd.safetensors" for seed in (0, 1)]
    assert soup.main(["--weights", *map(str, kept), "--out", str(tmp_path / "soup.safetensors")]) == 0
    detector = Detector.load(tmp_path / "soup.safetensors")
    assert detector.cfg.weights_sha256 not in {load_detector(p)[1].weights_sha256 for p in kept}
