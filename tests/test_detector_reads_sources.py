"""pipeline.reads_real_sources: which `detector train` runs read the real photos (and so
need Debian's samples to be the shipped recipe), and gan.gan_finished behind it."""

from __future__ import annotations

import json
from pathlib import Path

from authenticity.detection.train.dataset import DATASET_RECIPE
from authenticity.detection.train.gan import DISCRIMINATOR_FILE, STATE_FILE, gan_finished
from authenticity.detection.train.pipeline import PipelineParams, reads_real_sources


def _finished_gan(gan: Path, steps: int, seed: int, done: int | None = None) -> None:
    gan.mkdir(parents=True)
    (gan / DISCRIMINATOR_FILE).write_bytes(b"weights")
    (gan / STATE_FILE).write_bytes(b"state")
    log = {"steps": steps, "done": steps if done is None else done, "seed": seed}
    (gan / "gan_log.json").write_text(json.dumps(log))


def _built_dataset(dataset: Path) -> None:
    dataset.mkdir(parents=True)
    (dataset / "summary.json").write_text(json.dumps({"recipe": DATASET_RECIPE, "counts": {}}))


def test_a_gan_stage_is_finished_only_at_its_own_steps_and_seed(tmp_path: Path) -> None:
    _finished_gan(tmp_path / "gan", steps=1200, seed=0)
    assert gan_finished(tmp_path / "gan", 1200, 0)
    assert not gan_finished(tmp_path / "gan", 1500, 0)  # more steps: it goes on, reading reals
    assert not gan_finished(tmp_path / "gan", 1200, 1)
    assert not gan_finished(tmp_path / "nowhere", 1200, 0)
    _finished_gan(tmp_path / "budgeted", steps=1200, seed=0, done=600)  # stopped half way (stop_after)
    assert not gan_finished(tmp_path / "budgeted", 1200, 0)
    (tmp_path / "gan" / DISCRIMINATOR_FILE).unlink()
    assert not gan_finished(tmp_path / "gan", 1200, 0)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "gan_log.json").write_text("{not json")
    assert not gan_finished(tmp_path / "broken", 1200, 0)


def test_only_a_run_that_resumes_both_the_gan_stage_and_the_dataset_reads_no_real_photos(tmp_path: Path) -> None:
    work = tmp_path / "work"
    params = PipelineParams(workdir=work, out=tmp_path / "d.safetensors", gan_steps=1200, seed=0)
    assert reads_real_sources(params)  # nothing built yet
    _finished_gan(work / "gan", steps=1200, seed=0)
    assert reads_real_sources(params)  # the dataset is still to be built
    _built_dataset(work / "dataset")
    assert not reads_real_sources(params)
    assert reads_real_sources(PipelineParams(workdir=work, out=params.out, gan_steps=1500, seed=0))
    assert reads_real_sources(PipelineParams(workdir=work, out=params.out, gan_steps=1200, seed=0, resume=False))
    # a dataset of another recipe is rebuilt, whatever the GAN stage
    (work / "dataset" / "summary.json").write_text(json.dumps({"recipe": DATASET_RECIPE - 1, "counts": {}}))
    assert reads_real_sources(params)
