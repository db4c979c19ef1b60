"""bench/detector.py: the benchmarked network is the shipped architecture, an ensemble's cost a same-run ratio."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from authenticity.detection.model import DetectorEnsemble, DetectorNet, load_detector
from authenticity.detection.scoring import Detector
from bench import detector as bench_detector

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_default_weights_hold_as_many_imagenet_networks_as_asked(tmp_path: Path) -> None:
    model, cfg = load_detector(bench_detector.make_weights(tmp_path, members=2))
    assert cfg.members == 2 and isinstance(model, DetectorEnsemble)
    first, second = (m.state_dict() for m in model.members)
    stem = first["backbone.conv_stem.weight"], second["backbone.conv_stem.weight"]
    # both ImageNet's trunk, but not bit for bit (ONNX Runtime would compute a shared trunk once)
    assert not torch.equal(*stem) and torch.allclose(*stem, atol=0.05)
    assert not torch.equal(first["head.weight"], second["head.weight"])  # seeded random heads, drawn in turn


def test_one_member_scores_the_first_network_alone_and_a_single_network_has_none(tmp_path: Path) -> None:
    ensemble = Detector.load(bench_detector.make_weights(tmp_path / "e", members=2))
    single = bench_detector.one_member(ensemble)
    assert single is not None and single.cfg.members == 1 and isinstance(single.model, DetectorNet)
    assert single.model is ensemble.model.members[0]
    assert bench_detector.one_member(Detector.load(bench_detector.make_weights(tmp_path / "s"))) is None


def test_no_members_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_detector.main(["--members", "0", "--quick"]) == 2
    assert capsys.readouterr().err == "error: --members 0: use at least 1\n"


def test_members_with_weights_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = bench_detector.make_weights(tmp_path)
    assert bench_detector.main(["--members", "2", "--weights", str(weights), "--quick"]) == 2
    assert capsys.readouterr().err == "error: --members sets the default weights' networks; --weights brings its own\n"
