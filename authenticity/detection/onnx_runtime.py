"""Run the detector on ONNX Runtime: export from safetensors, then score with the same logic.

:func:`export_onnx` writes ``model.onnx`` (dynamic batch axis, ``tile_size`` from the cfg)
and the cfg beside it as ``model.json`` with ``weights_sha256`` pointing at the ONNX file,
after checking that ONNX Runtime reproduces the PyTorch logits. :class:`OnnxDetector` is a
:class:`~authenticity.detection.scoring.Detector` whose ``tile_logits`` runs the ONNX
graph, so tiling, aggregation, calibration, labels and video handling are shared code.

>>> onnx_path = export_onnx(Path("data/detector.safetensors"), Path("build/detector.onnx"))  # doctest: +SKIP
>>> OnnxDetector.load(onnx_path).score_path(Path("photo.jpg")).label                          # doctest: +SKIP
<Label.AUTHENTIC_LOOKING: 'authentic-looking'>
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from numpy.typing import NDArray

from authenticity.detection.config import DetectorCfg, load_cfg
from authenticity.detection.model import Network, file_sha256, load_detector
from authenticity.detection.scoring import Detector, with_undo_enlargement
from authenticity.errors import ConfigError, UsageError

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "OnnxDetector", "export_onnx"]

INPUT_NAME = "tiles"
OUTPUT_NAME = "logits"
TOLERANCE = 1e-3


def _session(path: Path, threads: int | None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped exceptions (InvalidGraph, NoSuchFile, ...)
        raise ConfigError("detector.onnx.invalid", f"{path}: cannot load ONNX model ({exc})") from exc


def export_onnx(weights: Path, out: Path, opset: int = 17) -> Path:
    """Export safetensors weights (+ cfg JSON beside them) to ONNX at *out*; returns *out*.

    The exported graph is run on a random batch of 3 tiles (a batch size the trace never
    saw, to prove the batch axis is dynamic) and must match PyTorch within 1e-3, or
    ``detector.onnx.mismatch`` is raised and nothing is left at *out*.

    >>> export_onnx(Path("data/detector.safetensors"), Path("build/detector.onnx"))  # doctest: +SKIP
    PosixPath('build/detector.onnx')
    """
    model, cfg = load_detector(weights)
    size = cfg.tile_size
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 3, size, size)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript (not a dependency); the traced graph of a CNN is the same either way.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(out),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    probe = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = model(probe).numpy()
    got = _session(out, None).run([OUTPUT_NAME], {INPUT_NAME: probe.numpy()})[0]
    error = float(np.max(np.abs(np.asarray(got) - expected)))
    if not error <= TOLERANCE:
        out.unlink(missing_ok=True)
        raise ConfigError("detector.onnx.mismatch", f"{out}: ONNX logits differ from PyTorch by {error:.2e}")
    cfg.model_copy(update={"weights_sha256": file_sha256(out)}).save(out.with_suffix(".json"))
    return out


class OnnxDetector(Detector):
    """A :class:`Detector` whose tile logits come from ONNX Runtime (CPU).

    Everything else — tiling, batching across files, aggregation, calibration, labels,
    videos — is inherited. ``model`` (the PyTorch network) is only there when one was
    passed in; white-box attacks need it, scoring does not.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        cfg: DetectorCfg,
        *,
        model: Network | None = None,
        batch_size: int = 32,
        max_pixels: int = 100_000_000,
        undo_enlargement: bool | None = None,
    ) -> None:
        # Not Detector.__init__: it needs a PyTorch model, and scoring here does not.
        self._model = model.eval() if model is not None else None
        self.session = session
        self.cfg = with_undo_enlargement(cfg, undo_enlargement)
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.model_info = {
            "name": cfg.name,
            "arch": cfg.arch,
            "weights_sha256": cfg.weights_sha256,
            "runtime": "onnxruntime",
        }
        if self.cfg.undo_enlargement:
            self.model_info["undo_enlargement"] = "on"
        self._input = session.get_inputs()[0].name

    @property
    def model(self) -> Network:
        if self._model is None:
            raise UsageError(
                "detection.onnx.no_torch_model", "this OnnxDetector has no PyTorch model (needed for white-box attacks)"
            )
        return self._model

    @model.setter
    def model(self, value: Network) -> None:
        self._model = value

    @classmethod
    def load(cls, weights: Path | None = None, **kwargs: Any) -> OnnxDetector:
        """Open ``weights`` (an ``.onnx`` file with its cfg JSON beside it), checking its SHA-256.

        ``threads`` sets ONNX Runtime's intra-op threads; other keywords go to the constructor.
        """
        if weights is None:
            raise UsageError("usage.onnx.path", "OnnxDetector.load needs the path of an .onnx file")
        if not weights.is_file():
            raise ConfigError("detector.weights.not_found", f"{weights}: ONNX model not found")
        cfg = load_cfg(weights.with_suffix(".json"))
        actual = file_sha256(weights)
        if cfg.weights_sha256 and actual != cfg.weights_sha256:
            raise ConfigError(
                "detector.weights.mismatch",
                f"{weights}: sha256 {actual[:16]}… does not match the config's {cfg.weights_sha256[:16]}…",
            )
        threads = kwargs.pop("threads", None)
        return cls(_session(weights, threads), cfg, **kwargs)

    def tile_logits(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        """Raw logits for a stack of normalised tiles, in batches, on ONNX Runtime."""
        out = [
            np.asarray(
                self.session.run(None, {self._input: np.ascontiguousarray(tiles[i : i + self.batch_size])})[0],
                dtype=np.float32,
            ).reshape(-1)
            for i in range(0, len(tiles), self.batch_size)
        ]
        return np.concatenate(out) if out else np.zeros(0, np.float32)
