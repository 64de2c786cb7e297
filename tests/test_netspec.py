"""A model described as data (autograder/netspec.py and the students' save_weights).

The description the student library writes is what the grader rebuilds: same
scores as the student's own model for any allow-listed architecture (nested
containers and Residual blocks included); anything outside the allow-list is
refused with a message naming the layer, by the student's ``describe_model``
and by the grader's :func:`netspec.parse`.
"""

from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path

import numpy as np
import pytest

from autograder import netspec

torch = pytest.importorskip("torch")
nn = torch.nn

REPO = Path(__file__).resolve().parents[1]


def _student_library() -> types.ModuleType:
    path = REPO / "source" / "assignment2" / "cs231n" / "pytorch_models.py"
    spec = importlib.util.spec_from_file_location("_netspec_test_pytorch_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PM = _student_library()


def _models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "reference": PM.build_my_model(),
        "residual": nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.LeakyReLU(0.1),
            PM.Residual(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.GELU()),
            nn.Sequential(nn.AvgPool2d(2), nn.Dropout2d(0.1)),
            nn.AdaptiveMaxPool2d((2, 2)), nn.Flatten(), nn.Linear(32, 16), nn.ELU(), nn.Dropout(0.2),
            nn.Linear(16, 10)),
        "strided": nn.Sequential(
            nn.Conv2d(3, 6, (5, 3), stride=(2, 1), padding=(2, 1), dilation=1, groups=3),
            nn.MaxPool2d(3, stride=2, padding=1), nn.Tanh(), nn.Flatten(1, -1),
            nn.Linear(6 * 8 * 16, 10), nn.Sigmoid()),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_rebuilt_model_scores_like_the_students(name: str, tmp_path: Path) -> None:
    model = _models()[name]
    model.train()
    with torch.no_grad():  # move the batch-norm running averages off their initial values
        model(torch.randn(16, 3, 32, 32))
    model.eval()
    path = PM.save_weights(model, tmp_path / "w.npz")
    with np.load(path, allow_pickle=False) as data:
        text = data[netspec.ARCH_KEY].tobytes().decode()
    x = np.random.default_rng(1).standard_normal((7, 3, 32, 32)).astype(np.float32)
    got = netspec.scores(text, str(path), x, batch_size=3)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).double().numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    reloaded = PM.load_weights(_models()[name], path)  # the student's own loader skips the description
    with torch.no_grad():
        np.testing.assert_allclose(reloaded(torch.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-5)


class _Custom(nn.Module):
    def forward(self, x):
        return x


@pytest.mark.parametrize(("model", "message"), [
    (_Custom(), "must return an nn.Sequential"),
    (nn.Sequential(nn.Flatten(), _Custom()), "layer 1 is a _Custom"),
    (nn.Sequential(nn.Conv2d(3, 4, 3, padding="same")), "whole-number padding"),
    (nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), "ceil_mode"),
])
def test_describe_model_refuses_what_cannot_be_rebuilt(model: nn.Module, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PM.describe_model(model)


def _doc(layers: list) -> str:
    return json.dumps({"format": netspec.FORMAT, "layers": layers})


LINEAR = {"type": "Linear", "args": {"in_features": 4, "out_features": 2, "bias": True}}


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "not valid JSON"),
    (json.dumps({"format": "other", "layers": []}), "must be"),
    (_doc([]), "no layers"),
    (_doc([{"type": "Lambda", "args": {}}]), "'Lambda' is not allowed"),
    (_doc([{"type": "Linear", "args": {"in_features": 4, "out_features": 2}}]), "missing \\['bias'\\]"),
    (_doc([{"type": "Linear", "args": {**LINEAR["args"], "device": "cuda"}}]), "unknown \\['device'\\]"),
    (_doc([{"type": "Linear", "args": {**LINEAR["args"], "in_features": 10**9}}]), "at most"),
    (_doc([{"type": "Linear", "args": {**LINEAR["args"], "bias": 1}}]), "true or false"),
    (_doc([{"type": "Dropout", "args": {"p": float("nan")}}]).replace("NaN", "NaN"), "finite"),
    (_doc([{"type": "Dropout", "args": {"p": 1.5}}]), "p must be"),
    (_doc([{"type": "Conv2d", "args": {"in_channels": 3, "out_channels": 4, "kernel_size": 99,
                                       "stride": 1, "padding": 0, "dilation": 1, "groups": 1,
                                       "bias": True}}]), "kernel_size"),
    (_doc([LINEAR, "Linear"]), "must be an object"),
    (_doc([{"type": "Sequential", "layers": [{"type": "Sequential", "layers": [
        {"type": "Sequential", "layers": [{"type": "Sequential", "layers": [LINEAR]}]}]}]}]),
     "nested more than"),
    (_doc([{"type": "ReLU", "args": {}}] * (netspec.MAX_LAYERS + 1)), "more than"),
    ("[" * 100_000, "over"),
])
def test_parse_refuses_everything_outside_the_allow_list(text: str, message: str) -> None:
    with pytest.raises(netspec.ArchitectureError, match=message):
        netspec.parse(text)


def test_weights_that_do_not_fit_the_description_are_refused(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    path = PM.save_weights(model, tmp_path / "w.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["1.weight"] = arrays["1.weight"][:5]
    np.savez(path, **arrays)
    with pytest.raises(netspec.ArchitectureError, match="1.weight"):
        netspec.scores(arrays[netspec.ARCH_KEY].tobytes().decode(), str(path),
                       np.zeros((2, 3, 32, 32), np.float32))
