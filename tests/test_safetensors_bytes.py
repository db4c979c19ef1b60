"""Weights files whose bytes depend on their content alone: the detector's identity is their SHA-256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from authenticity.detection._safetensors import canonical_bytes, save_safetensors
from authenticity.detection.config import DetectorCfg
from authenticity.detection.model import build_model, load_detector, save_detector

META = {f"key{i}": f"value {i}" for i in range(12)} | {"quoted": 'say "hi"', "café": "naïve ü"}


def _header(blob: bytes) -> tuple[int, str]:
    size = int.from_bytes(blob[:8], "little")
    return size, blob[8 : 8 + size].decode()


def _tensors() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {"b": torch.randn(3, 5, generator=gen), "a": torch.arange(7, dtype=torch.int64), "c": torch.ones(2).half()}


def test_metadata_in_sorted_order_and_everything_else_as_the_library_writes_it() -> None:
    tensors = _tensors()
    blob = canonical_bytes(save(tensors, metadata=META))
    size, text = _header(blob)
    assert size % 8 == 0
    header = json.loads(text)
    assert list(header["__metadata__"]) == sorted(META)
    assert header["__metadata__"] == META
    assert text.startswith('{"__metadata__":{"café":"naïve ü","key0":"value 0","key1":"value 1","key10":')
    library_size, library_text = _header(save(tensors, metadata=META))
    assert size == library_size  # only the order moved
    assert json.loads(library_text) == header
    assert blob[8 + size :] == save(tensors)[8 + _header(save(tensors))[0] :]  # tensor bytes untouched


def test_a_file_without_metadata_is_left_as_the_library_wrote_it() -> None:
    blob = save(_tensors())
    assert canonical_bytes(blob) is blob


def test_equal_content_gives_equal_bytes_where_the_library_alone_varies(tmp_path: Path) -> None:
    tensors = _tensors()
    library = {hashlib.sha256(save(tensors, metadata=META)).hexdigest() for _ in range(20)}
    ours = set()
    for i in range(20):
        save_safetensors(tensors, tmp_path / f"{i}.safetensors", META)
        ours.add(hashlib.sha256((tmp_path / f"{i}.safetensors").read_bytes()).hexdigest())
    assert len(ours) == 1
    if len(library) == 1:  # a safetensors that orders metadata itself: ours must then be the same file
        assert ours == library
    with safe_open(str(tmp_path / "0.safetensors"), framework="pt") as fh:
        assert fh.metadata() == META
    loaded = load_file(str(tmp_path / "0.safetensors"))
    assert loaded.keys() == tensors.keys()
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)


def test_a_saved_detector_has_one_sha256_and_loads(tmp_path: Path) -> None:
    cfg = DetectorCfg()
    model = build_model(cfg)
    shas = {save_detector(model, cfg, tmp_path / f"d{i}.safetensors").weights_sha256 for i in range(6)}
    assert len(shas) == 1
    _, text = _header((tmp_path / "d0.safetensors").read_bytes())
    assert text.startswith('{"__metadata__":{"arch":"tf_efficientnet_lite0","name":')
    _, loaded_cfg = load_detector(tmp_path / "d3.safetensors")
    assert loaded_cfg.weights_sha256 == shas.pop()


def test_the_shipped_weights_are_already_in_canonical_form() -> None:
    shipped = Path(__file__).resolve().parents[1] / "data" / "detector.safetensors"
    if not shipped.is_file():
        pytest.skip(f"{shipped} is absent")
    blob = shipped.read_bytes()
    assert canonical_bytes(blob) == blob
