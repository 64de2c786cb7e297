"""A submitted network described as data: validated by the grader, rebuilt without student code.

Assignment 2's own model (task ``pytorch_my_model``) is graded from two pieces
of plain data in the submitted weights file (a numpy ``.npz`` read with
``allow_pickle=False``): the state dict's arrays, and under the key
:data:`ARCH_KEY` a JSON description of the model as a sequence of standard
``torch.nn`` layers with their constructor arguments (the student library's
``save_weights`` writes it). The grader validates that description against an
allow-list (:func:`parse`), then rebuilds the model from it and computes its
scores (:func:`scores`) in a sandboxed worker that holds no student code, so
nothing the student wrote runs while the accuracy is measured: a lookup table
of pixels to labels cannot be expressed, and the grader chooses the images.

Format (``FORMAT``)::

    {"format": "cs231n-sequential/1",
     "layers": [{"type": "Conv2d", "args": {"in_channels": 3, ...}},
                {"type": "Residual", "layers": [...]},   # out = body(x) + x
                ...]}

This module imports only the standard library at import time (numpy and torch
inside :func:`scores`): the grader copies it into the worker's folder.
"""

from __future__ import annotations

import json
import math
from typing import Any

FORMAT = "cs231n-sequential/1"
ARCH_KEY = "__architecture__"
MAX_LAYERS = 128
MAX_DEPTH = 4
MAX_WIDTH = 4096  # channels / features of any layer
MAX_KERNEL = 15
MAX_JSON_BYTES = 64 * 1024


class ArchitectureError(ValueError):
    """The submitted description is not an allow-listed network (the student's fault)."""


# type name -> {argument: kind}; kinds: "int", "pair" (int or [int, int]), "float",
# "float?" (float or null), "bool". Every argument is required, so what is
# rebuilt is exactly what was described.
_WIDTH = ("in_channels", "out_channels", "in_features", "out_features", "num_features")
LAYERS: dict[str, dict[str, str]] = {
    "Conv2d": {"in_channels": "int", "out_channels": "int", "kernel_size": "pair",
               "stride": "pair", "padding": "pair", "dilation": "pair", "groups": "int",
               "bias": "bool"},
    "Linear": {"in_features": "int", "out_features": "int", "bias": "bool"},
    "BatchNorm1d": {"num_features": "int", "eps": "float", "momentum": "float?",
                    "affine": "bool", "track_running_stats": "bool"},
    "BatchNorm2d": {"num_features": "int", "eps": "float", "momentum": "float?",
                    "affine": "bool", "track_running_stats": "bool"},
    "ReLU": {}, "GELU": {}, "SiLU": {}, "Tanh": {}, "Sigmoid": {}, "Identity": {},
    "LeakyReLU": {"negative_slope": "float"},
    "ELU": {"alpha": "float"},
    "MaxPool2d": {"kernel_size": "pair", "stride": "pair", "padding": "pair"},
    "AvgPool2d": {"kernel_size": "pair", "stride": "pair", "padding": "pair"},
    "AdaptiveAvgPool2d": {"output_size": "pair"},
    "AdaptiveMaxPool2d": {"output_size": "pair"},
    "Flatten": {"start_dim": "int", "end_dim": "int"},
    "Dropout": {"p": "float"},
    "Dropout2d": {"p": "float"},
}
CONTAINERS = ("Sequential", "Residual")


def _check_value(kind: str, value: Any, where: str) -> Any:
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if kind == "bool":
        if not isinstance(value, bool):
            raise ArchitectureError(f"{where} must be true or false")
        return value
    if kind == "int":
        if not is_int(value) or abs(value) > MAX_WIDTH:
            raise ArchitectureError(f"{where} must be a whole number of at most {MAX_WIDTH}")
        return value
    if kind == "pair":
        pair = value if isinstance(value, list) else [value, value]
        if len(pair) != 2 or not all(is_int(v) and 0 <= v <= MAX_KERNEL * 8 for v in pair):
            raise ArchitectureError(f"{where} must be a whole number or a pair of them")
        return tuple(pair)
    if kind == "float?" and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ArchitectureError(f"{where} must be a finite number")
    return float(value)


def _parse_layers(layers: Any, where: str, depth: int, count: list[int]) -> list[dict[str, Any]]:
    if depth > MAX_DEPTH:
        raise ArchitectureError(f"{where}: containers nested more than {MAX_DEPTH} deep")
    if not isinstance(layers, list):
        raise ArchitectureError(f"{where}: 'layers' must be a list")
    out = []
    for i, layer in enumerate(layers):
        here = f"{where}[{i}]"
        count[0] += 1
        if count[0] > MAX_LAYERS:
            raise ArchitectureError(f"more than {MAX_LAYERS} layers")
        if not isinstance(layer, dict) or not isinstance(layer.get("type"), str):
            raise ArchitectureError(f"{here} must be an object with a 'type'")
        kind = layer["type"]
        if kind in CONTAINERS:
            if set(layer) != {"type", "layers"}:
                raise ArchitectureError(f"{here} ({kind}) takes only 'layers'")
            body = _parse_layers(layer["layers"], f"{here}.layers", depth + 1, count)
            out.append({"type": kind, "layers": body})
            continue
        if kind not in LAYERS:
            raise ArchitectureError(
                f"{here}: layer type {kind[:40]!r} is not allowed (allowed: "
                f"{', '.join(sorted([*LAYERS, *CONTAINERS]))})")
        args = layer.get("args", {})
        if set(layer) - {"type", "args"} or not isinstance(args, dict):
            raise ArchitectureError(f"{here} ({kind}) must hold only 'type' and 'args'")
        schema = LAYERS[kind]
        if set(args) != set(schema):
            missing = sorted(set(schema) - set(args))
            extra = sorted(str(k)[:40] for k in set(args) - set(schema))
            raise ArchitectureError(f"{here} ({kind}): arguments missing {missing}, unknown {extra}")
        clean = {name: _check_value(k, args[name], f"{here} ({kind}) argument {name!r}")
                 for name, k in schema.items()}
        for name in _WIDTH:
            if name in clean and not 1 <= clean[name] <= MAX_WIDTH:
                raise ArchitectureError(f"{here} ({kind}) argument {name!r} must be 1..{MAX_WIDTH}")
        if kind == "Conv2d":
            if not 1 <= clean["groups"] <= clean["in_channels"]:
                raise ArchitectureError(f"{here} (Conv2d): groups must be 1..in_channels")
            if min(clean["kernel_size"]) < 1 or max(clean["kernel_size"]) > MAX_KERNEL:
                raise ArchitectureError(f"{here} (Conv2d): kernel_size must be 1..{MAX_KERNEL}")
            if min(clean["stride"]) < 1 or min(clean["dilation"]) < 1:
                raise ArchitectureError(f"{here} (Conv2d): stride and dilation must be >= 1")
        if kind in ("MaxPool2d", "AvgPool2d") and (min(clean["kernel_size"]) < 1
                                                   or min(clean["stride"]) < 1):
            raise ArchitectureError(f"{here} ({kind}): kernel_size and stride must be >= 1")
        if kind in ("Dropout", "Dropout2d") and not 0.0 <= clean["p"] < 1.0:
            raise ArchitectureError(f"{here} ({kind}): p must be in [0, 1)")
        out.append({"type": kind, "args": clean})
    return out


def parse(text: str | bytes) -> list[dict[str, Any]]:
    """The validated layer list of a description, or :class:`ArchitectureError` saying why not."""
    if len(text) > MAX_JSON_BYTES:
        raise ArchitectureError(f"the architecture description is over {MAX_JSON_BYTES} bytes")
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ArchitectureError(f"the architecture description is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or set(doc) != {"format", "layers"}:
        raise ArchitectureError(f"the architecture description must be {{'format': {FORMAT!r}, "
                                "'layers': [...]}} as written by save_weights")
    layers = _parse_layers(doc["layers"], "layers", 1, [0])
    if not layers:
        raise ArchitectureError("the architecture has no layers")
    return layers


# ----------------------------------------------------------------------------- in the worker


def build(layers: list[dict[str, Any]]) -> Any:
    """The ``torch.nn.Sequential`` that a validated layer list describes."""
    import torch
    from torch import nn

    class Residual(nn.Sequential):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) + x

    def make(layer: dict[str, Any]) -> nn.Module:
        if layer["type"] in CONTAINERS:
            cls = nn.Sequential if layer["type"] == "Sequential" else Residual
            return cls(*[make(child) for child in layer["layers"]])
        return getattr(nn, layer["type"])(**layer["args"])

    return nn.Sequential(*[make(layer) for layer in layers])


def scores(description: str, weights_path: str, images: Any, batch_size: int = 100) -> Any:
    """(N, C) float64 scores of the described model with the weights file's arrays, in eval mode.

    Raises :class:`ArchitectureError` when the arrays do not fit the described model.
    """
    import numpy as np
    import torch

    model = build(parse(description))
    expected = model.state_dict()
    with np.load(weights_path, allow_pickle=False) as data:
        names = [n for n in data.files if n != ARCH_KEY]
        missing = sorted(set(expected) - set(names))
        extra = sorted(set(names) - set(expected))
        if missing or extra:
            raise ArchitectureError(
                f"the weights do not fit the described model: missing {missing[:5]}, "
                f"unexpected {extra[:5]}")
        state = {}
        for name, ref in expected.items():
            arr = np.asarray(data[name])
            if tuple(arr.shape) != tuple(ref.shape):
                raise ArchitectureError(f"weights entry {name!r} has shape {tuple(arr.shape)}, "
                                        f"the described model needs {tuple(ref.shape)}")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise ArchitectureError(f"weights entry {name!r} contains NaN or inf")
            state[name] = torch.from_numpy(arr.astype(np.int64 if ref.dtype == torch.int64
                                                      else np.float32))
    model.load_state_dict(state, strict=True)
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            out.append(model(x[start:start + batch_size]).double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def weights_path() -> str:
    """In the worker: the submitted weights file the grader copied beside this module."""
    from pathlib import Path

    return str(Path(__file__).with_name("weights.npz"))
