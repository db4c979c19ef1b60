"""Run a TensorFlow.js *layers* model (a Keras functional graph) in torch, for training data only.

Some pretrained generators are published only as TF.js files (``model.json`` with the Keras
topology, ``*.bin`` shards with the weights, possibly uint8-quantised). This module reads such a
folder and evaluates the graph with torch on the CPU, so no TensorFlow or Node runtime is needed.
Only the layer kinds the generators used here contain are supported; any other kind is refused on
load with ``UsageError("train.tfjs_layer")`` rather than evaluated wrongly.

>>> net = load_layers_model(Path("esrgan-legacy/models/gans"))
>>> sr = net(torch.rand(1, 3, 32, 32))  # NCHW in [0, 1] -> NCHW, 4x the side
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from authenticity.errors import UsageError

_DTYPES = {"float32": np.float32, "uint8": np.uint8, "uint16": np.uint16}


@dataclass(frozen=True)
class _Node:
    name: str
    kind: str
    config: dict[str, Any]
    inputs: tuple[str, ...]


def _read_weights(folder: Path, manifest: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Dequantise every weight of ``manifest`` (shards concatenated in order, as TF.js lays them out)."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        blob = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            q = spec.get("quantization")
            dtype = np.dtype(_DTYPES[q["dtype"] if q else spec["dtype"]])
            count = int(np.prod(spec["shape"])) if spec["shape"] else 1
            if offset + count * dtype.itemsize > len(blob):
                raise UsageError("train.tfjs_weights", f"{folder}: weight shards end inside {spec['name']!r}")
            raw = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
            offset += count * dtype.itemsize
            values = raw.astype(np.float32)
            if q:
                values = np.float32(q["min"]) + np.float32(q["scale"]) * values
            out[spec["name"]] = values.reshape(spec["shape"])
        if offset != len(blob):
            raise UsageError("train.tfjs_weights", f"{folder}: weight shards hold {len(blob)} bytes, manifest {offset}")
    return out


def _depth_to_space(x: torch.Tensor, r: int) -> torch.Tensor:
    """TensorFlow's ``depth_to_space`` (channel index (i*r + j)*C + c) on an NCHW tensor."""
    b, ch, h, w = x.shape
    c = ch // (r * r)
    return x.view(b, r, r, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(b, c, h * r, w * r)


class LayersModel(nn.Module):
    """A Keras functional graph of Conv2D / ReLU / Add / Concatenate / scaling / pixel-shuffle layers."""

    def __init__(self, nodes: list[_Node], inputs: str, output: str, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.nodes, self.input_name, self.output_name = nodes, inputs, output
        self.convs = nn.ModuleDict()
        for node in nodes:
            if node.kind != "Conv2D":
                continue
            names = {f"{node.name}/kernel", *([f"{node.name}/bias"] if node.config["use_bias"] else [])}
            if missing := names - weights.keys():
                raise UsageError("train.tfjs_weights", f"no weight {sorted(missing)[0]!r} in the weight manifest")
            kernel = torch.from_numpy(weights[f"{node.name}/kernel"].copy()).permute(3, 2, 0, 1)
            side = int(kernel.shape[2])
            conv = nn.Conv2d(kernel.shape[1], kernel.shape[0], side, padding=side // 2, bias=node.config["use_bias"])
            conv.weight.data.copy_(kernel)
            if conv.bias is not None:
                conv.bias.data.copy_(torch.from_numpy(weights[f"{node.name}/bias"].copy()))
            self.convs[node.name] = conv
        self.requires_grad_(False)

    def _run_node(self, node: _Node, args: list[torch.Tensor]) -> torch.Tensor:
        cfg = node.config
        if node.kind == "Conv2D":
            return _ACTIVATIONS[cfg["activation"]](self.convs[node.name](args[0]))
        if node.kind == "Activation":
            return _ACTIVATIONS[cfg["activation"]](args[0])
        if node.kind == "Add":
            return torch.stack(args).sum(0)
        if node.kind == "Concatenate":
            return torch.cat(args, dim=1)
        if node.kind == "MultiplyBeta":
            return args[0] * float(cfg["beta"])
        return _depth_to_space(args[0], int(cfg["scale"]))  # PixelShuffle<r>x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x}
        for node in self.nodes:
            values[node.name] = self._run_node(node, [values[i] for i in node.inputs])
        return values[self.output_name]


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"linear": lambda t: t, "relu": F.relu}


def _plain_conv(cfg: dict[str, Any]) -> bool:
    """A stride-1, 'same'-padded, odd square kernel, channels-last, with a supported activation."""
    ks, st = tuple(cfg["kernel_size"]), tuple(cfg["strides"])
    layout = cfg.get("data_format", "channels_last") == "channels_last" and cfg.get("groups", 1) == 1
    return (layout and cfg["padding"] == "same" and st == (1, 1) and ks[0] == ks[1] and ks[0] % 2 == 1
            and tuple(cfg.get("dilation_rate", (1, 1))) == (1, 1) and cfg["activation"] in _ACTIVATIONS)  # fmt: skip


_SUPPORTED: dict[str, Callable[[dict[str, Any]], bool]] = {
    "Conv2D": _plain_conv,
    "Activation": lambda cfg: cfg["activation"] in _ACTIVATIONS,
    "Add": lambda cfg: True,
    "MultiplyBeta": lambda cfg: "beta" in cfg,
    "Concatenate": lambda cfg: cfg["axis"] in (3, -1),
    "PixelShuffle": lambda cfg: int(cfg["scale"]) > 1,
}


def _check(node: _Node) -> None:
    kind = "PixelShuffle" if node.kind.startswith("PixelShuffle") and "scale" in node.config else node.kind
    if kind not in _SUPPORTED or not _SUPPORTED[kind](node.config):
        raise UsageError("train.tfjs_layer", f"unsupported TF.js layer {node.name!r} ({node.kind})")


def load_layers_model(folder: Path) -> LayersModel:
    """Load ``folder/model.json`` and its weight shards as a torch module (eval mode, no gradients)."""
    spec = json.loads((folder / "model.json").read_text())
    if spec.get("format") != "layers-model":
        raise UsageError("train.tfjs_format", f"{folder}: not a TF.js layers model ({spec.get('format')!r})")
    graph = spec["modelTopology"]["model_config"]["config"]
    (inp,), (out,) = graph["input_layers"], graph["output_layers"]
    nodes, known = [], {inp[0]}
    for layer in graph["layers"]:
        if layer["class_name"] == "InputLayer":
            continue
        (inbound,) = layer["inbound_nodes"]
        node = _Node(layer["name"], layer["class_name"], layer["config"], tuple(i[0] for i in inbound))
        _check(node)
        if unknown := [i for i in node.inputs if i not in known]:  # evaluated in file order: inputs come first
            raise UsageError("train.tfjs_graph", f"layer {node.name!r} reads {unknown[0]!r} before it is computed")
        nodes.append(node)
        known.add(node.name)
    return LayersModel(nodes, inp[0], out[0], _read_weights(folder, spec["weightsManifest"])).eval()
