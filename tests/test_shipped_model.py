"""The model shipped in data/: it loads, its checksum holds, and its cfg carries what it must."""

from __future__ import annotations

from pathlib import Path

import pytest

from authenticity.detection.config import SHIPPED_FAMILY_WEIGHTS, SHIPPED_MEMBERS, Label
from authenticity.detection.model import DetectorEnsemble, file_sha256
from authenticity.detection.scoring import Detector, default_weights_path

from .conftest import write_photo

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_shipped_weights_match_their_cfg_checksum() -> None:
    weights = default_weights_path()
    detector = Detector.load(weights)
    assert detector.cfg.weights_sha256 == file_sha256(weights)
    assert weights.stat().st_size < 20_000_000  # small enough for git


def test_shipped_cfg_records_training_and_held_out_metrics() -> None:
    cfg = Detector.load().cfg
    assert cfg.arch == "tf_efficientnet_lite0" and cfg.temperature > 0
    assert cfg.training["command"] == "authenticity detector train"
    # what `detector train` builds by default: one fine-tuning, or an ensemble of that many seeds'
    assert cfg.members == SHIPPED_MEMBERS
    assert isinstance(Detector.load().model, DetectorEnsemble) == (SHIPPED_MEMBERS > 1)
    assert cfg.training.get("member_seeds", [cfg.training["seed"]]) == list(range(SHIPPED_MEMBERS))
    test = cfg.metrics["test"]
    assert test["n_real"] > 0 and test["n_fake"] > 0 and 0.5 < test["auc"] <= 1.0
    assert set(test["per_family"]) >= {"gan", "sd", "dcgan"}


def test_shipped_model_was_trained_on_the_recipe_detector_train_runs_by_default() -> None:
    from authenticity.detection.train._srgan import SR_PACKAGE

    training = Detector.load().cfg.training
    assert training["sr_family"] == SR_PACKAGE  # --sr-family is on by default
    assert training["dataset"]["train"]["fake"]["esrgan"] > 0
    assert tuple(map(tuple, training["finetune"]["family_weights"])) == SHIPPED_FAMILY_WEIGHTS


def test_shipped_model_scores_a_photo_with_a_calibrated_probability(tmp_path: Path) -> None:
    detector = Detector.load()
    result = detector.score_path(write_photo(tmp_path / "p.jpg", seed=3, size=(300, 400)))
    assert result.error is None and result.score is not None
    assert 0.0 <= result.score <= 1.0
    assert result.label in set(Label)
    assert len(result.tiles) == 12  # 300x400 covered by 128 px tiles: 3 rows x 4 columns (overlapping)
