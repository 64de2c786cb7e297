"""Hidden tests of Assignment 2's PyTorch part (cs231n/pytorch_models.py).

The student's functions run in the worker on torch tensors made there from the
grader's numpy arrays (``torch.from_numpy``); results come back with
``.detach().numpy()``. Everything is compared with the reference run in the
grader process on the same inputs and the same weights, in float64: outputs,
and the gradients autograd computes through the student's code for a random
upstream gradient. Module and Sequential versions are also checked for their
layer shapes and their initialization (Kaiming normal weights, zero biases).

The student's own model (``build_my_model``) is graded without running the
student's code: the submitted weights file (a plain .npz, read with
``allow_pickle=False``) holds the state dict and the model's description as
data (``save_weights``); the grader validates the description against an
allow-list of standard layers (``autograder.netspec``), rebuilds the model in
a worker holding no student code, and classifies test images it draws per
seed, half of them flipped; labels and the accuracy stay in the grader. The
threshold depends on the data (``[tasks.pytorch_my_model.params]`` of the
declaration, ``tasks.toml``); on
generated stand-in data the task is reported as not gradable.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from autograder import netspec
from autograder.checks import assert_close, not_gradable
from autograder.evaluation import accuracy, flip_images, held_out
from autograder.sandbox import RemoteObject, RemotePath, StudentError
from autograder.values import as_array, as_object

RTOL = 1e-9
ATOL = 1e-10
MAX_WEIGHTS_BYTES = 50 * 2**20
FULL_CIFAR10_TRAIN = 50000

# (id, input shape)
FLATTEN_CASES = [
    ("images", (4, 3, 5, 6)),
    ("matrix", (3, 7)),
    ("single", (1, 2, 3)),
]
# (id, input shape, H, C)
FC_CASES = [
    ("small", (3, 5), 4, 3),
    ("images", (4, 3, 4, 4), 10, 5),
]
# (id, N, C_in, H, W, channel_1, channel_2, KH1, KH2, C)
CONV_CASES = [
    ("small", 2, 3, 6, 6, 4, 5, 5, 3, 3),
    ("rect", 3, 2, 5, 7, 3, 2, 5, 3, 4),
]
# (id, N, input shape, hidden, C)
MODULE_FC_CASES = [
    ("cifar_like", 3, (3, 32, 32), 100, 10),
    ("small", 4, (50,), 40, 6),
]
# (id, N, in_channel, channel_1, channel_2, C)
MODULE_CONV_CASES = [
    ("cifar_like", 2, 3, 12, 8, 10),
    ("small", 3, 2, 4, 3, 5),
]


def _ids(table: list[tuple]) -> list[str]:
    return [row[0] for row in table]


# ----------------------------------------------------------------------------- helpers


def _torch(student):
    """The worker's torch, through the student's module (which imports it)."""
    return student.lib.pytorch_models.torch


def _tensor(student, array: np.ndarray, grad: bool = False):
    t = _torch(student).from_numpy(np.ascontiguousarray(array))
    return t.requires_grad_() if grad else t


def _fetch(value, what: str) -> np.ndarray:
    """A remote tensor's values as a float64 array (fails with a message for anything else).

    What is checked is the data ``.detach().numpy()`` gives, never the class
    name the object reports (the student's code chooses it).
    """
    if isinstance(value, RemotePath) and not isinstance(value, RemoteObject):
        value = value.get()  # an attribute path: the object it names
    tensor = as_object(value, name=what, what="a torch.Tensor")
    return as_array(tensor.detach().numpy(), name=f"{what}.detach().numpy()")


def _ref_torch(reference):
    return reference.pytorch_models.torch


def _ref_grads(reference, fn, x: np.ndarray, params: list[np.ndarray], upstream: np.ndarray):
    torch = _ref_torch(reference)
    tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    out = fn(torch.from_numpy(x.copy()), tp)
    (out * torch.from_numpy(upstream)).sum().backward()
    return out.detach().numpy(), [p.grad.numpy() for p in tp]


def _student_grads(student, fn, x: np.ndarray, params: list[np.ndarray], upstream_shape, rng,
                   what: str):
    tp = [_tensor(student, p, grad=True) for p in params]
    out = fn(_tensor(student, x), tp)
    values = _fetch(out, f"{what}'s output")
    assert values.shape == tuple(upstream_shape), (
        f"{what} returned scores of shape {values.shape}, expected {tuple(upstream_shape)}")
    upstream = rng.standard_normal(upstream_shape)
    out.mul(_tensor(student, upstream)).sum().backward()
    grads = []
    for i, p in enumerate(tp):
        g = p.grad.get()
        assert g is not None, (
            f"{what}: no gradient reached params[{i}] (is the output computed from the params "
            "with torch operations, without numpy or .detach()?)")
        grads.append(_fetch(p.grad, f"params[{i}].grad"))
    return values, grads, upstream


def _check_layers(model, expected: dict[str, tuple[int, ...]], what: str) -> None:
    """Shapes of model's weights/biases and their Kaiming-normal / zero initialization."""
    for path, shape in expected.items():
        remote = model
        for part in path.split("."):
            remote = remote.attr(part)
        value = _fetch(remote, f"{what}.{path}")
        assert value.shape == shape, f"{what}.{path} has shape {value.shape}, expected {shape}"
        if path.endswith("bias"):
            assert np.all(value == 0), f"{what}.{path} must be initialized to zeros"
        else:
            fan_in = int(np.prod(shape[1:]))
            std, expect = float(np.std(value)), float(np.sqrt(2.0 / fan_in))
            # >= 60 draws: within 35% of the Kaiming std (several standard errors).
            tol = 0.35 if value.size < 1000 else 0.1
            assert abs(std - expect) <= tol * expect, (
                f"{what}.{path} has standard deviation {std:.3g}, expected about "
                f"sqrt(2 / fan_in) = {expect:.3g} (nn.init.kaiming_normal_)")
            assert abs(float(np.mean(value))) <= 0.5 * expect, f"{what}.{path} has mean far from 0"


def _compare_models(student, reference, model, ref_model, layers: dict[str, tuple[int, ...]],
                    x: np.ndarray, n_classes: int, rng, what: str) -> None:
    """Same float64 weights in both models, then outputs and parameter gradients compared."""
    torch = _ref_torch(reference)
    model = as_object(model.double(), name=f"{what}.double()", what="the model")
    ref_model = ref_model.double()
    ref_params = dict(ref_model.named_parameters())
    for path, shape in layers.items():
        value = rng.standard_normal(shape) * (0.1 if path.endswith("bias") else 1.0 / np.sqrt(np.prod(shape[1:])))
        remote = model
        for part in path.split("."):
            remote = remote.attr(part)
        remote.data.copy_(_tensor(student, value))
        with torch.no_grad():
            ref_params[path].copy_(torch.from_numpy(value))
    out = model(_tensor(student, x))
    values = _fetch(out, f"{what}(x)")
    expected = ref_model(torch.from_numpy(x))
    assert values.shape == (x.shape[0], n_classes), (
        f"{what}(x) has shape {values.shape}, expected {(x.shape[0], n_classes)}")
    assert_close(values, expected.detach().numpy(), name=f"{what}(x) scores", rtol=RTOL, atol=ATOL)
    upstream = rng.standard_normal(values.shape)
    out.mul(_tensor(student, upstream)).sum().backward()
    (expected * torch.from_numpy(upstream)).sum().backward()
    for path in layers:
        remote = model
        for part in path.split("."):
            remote = remote.attr(part)
        assert remote.grad.get() is not None, f"{what}.{path}: no gradient after backward()"
        assert_close(_fetch(remote.grad, f"{what}.{path}.grad"), ref_params[path].grad.numpy(),
                     name=f"{what}.{path}.grad", rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- bare tensors


@pytest.mark.pytorch_flatten
@pytest.mark.parametrize("case", FLATTEN_CASES, ids=_ids(FLATTEN_CASES))
def test_flatten(student, rng, case):
    _, shape = case
    x = rng.standard_normal(shape)
    out = _fetch(student.lib.pytorch_models.flatten(_tensor(student, x)), "flatten(x)")
    expected = x.reshape(shape[0], -1)
    assert out.shape == expected.shape, f"flatten(x) of shape {shape} has shape {out.shape}, expected {expected.shape}"
    assert_close(out, expected, name="flatten(x)", rtol=0, atol=0)


@pytest.mark.pytorch_two_layer_fc
@pytest.mark.parametrize("case", FC_CASES, ids=_ids(FC_CASES))
def test_two_layer_fc(student, reference, rng, case):
    _, shape, h, c = case
    d = int(np.prod(shape[1:]))
    x = rng.standard_normal(shape)
    params = [rng.standard_normal((d, h)) / np.sqrt(d), rng.standard_normal((h, c)) / np.sqrt(h)]
    out, grads, upstream = _student_grads(student, student.lib.pytorch_models.two_layer_fc, x, params,
                                          (shape[0], c), rng, "two_layer_fc")
    ref_out, ref_grads = _ref_grads(reference, reference.pytorch_models.two_layer_fc, x, params, upstream)
    assert_close(out, ref_out, name="two_layer_fc scores", rtol=RTOL, atol=ATOL)
    for name, g, rg in zip(("w1", "w2"), grads, ref_grads, strict=True):
        assert_close(g, rg, name=f"gradient of {name} (autograd through two_layer_fc)", rtol=RTOL, atol=ATOL)


@pytest.mark.pytorch_three_layer_convnet
@pytest.mark.parametrize("case", CONV_CASES, ids=_ids(CONV_CASES))
def test_three_layer_convnet(student, reference, rng, case):
    _, n, cin, h, w, c1, c2, k1, k2, c = case
    x = rng.standard_normal((n, cin, h, w))
    params = [
        rng.standard_normal((c1, cin, k1, k1)) / np.sqrt(cin * k1 * k1),
        0.1 * rng.standard_normal(c1),
        rng.standard_normal((c2, c1, k2, k2)) / np.sqrt(c1 * k2 * k2),
        0.1 * rng.standard_normal(c2),
        rng.standard_normal((c2 * h * w, c)) / np.sqrt(c2 * h * w),
        0.1 * rng.standard_normal(c),
    ]
    out, grads, upstream = _student_grads(student, student.lib.pytorch_models.three_layer_convnet, x,
                                          params, (n, c), rng, "three_layer_convnet")
    ref_out, ref_grads = _ref_grads(reference, reference.pytorch_models.three_layer_convnet, x, params,
                                    upstream)
    assert_close(out, ref_out, name="three_layer_convnet scores", rtol=RTOL, atol=ATOL)
    names = ("conv_w1", "conv_b1", "conv_w2", "conv_b2", "fc_w", "fc_b")
    for name, g, rg in zip(names, grads, ref_grads, strict=True):
        assert_close(g, rg, name=f"gradient of {name} (autograd through three_layer_convnet)",
                     rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- Module API


@pytest.mark.pytorch_module_api
@pytest.mark.parametrize("case", MODULE_FC_CASES, ids=_ids(MODULE_FC_CASES))
def test_two_layer_fc_module(student, reference, rng, case):
    _, n, shape, hidden, c = case
    d = int(np.prod(shape))
    layers = {"fc1.weight": (hidden, d), "fc1.bias": (hidden,), "fc2.weight": (c, hidden), "fc2.bias": (c,)}
    model = as_object(student.lib.pytorch_models.TwoLayerFC(d, hidden, c), name="TwoLayerFC(...)")
    _check_layers(model, layers, "TwoLayerFC")
    ref_model = reference.pytorch_models.TwoLayerFC(d, hidden, c)
    _compare_models(student, reference, model, ref_model, layers, rng.standard_normal((n, *shape)), c,
                    rng, "TwoLayerFC")


@pytest.mark.pytorch_module_api
@pytest.mark.parametrize("case", MODULE_CONV_CASES, ids=_ids(MODULE_CONV_CASES))
def test_three_layer_convnet_module(student, reference, rng, case):
    _, n, cin, c1, c2, c = case
    layers = {"conv1.weight": (c1, cin, 5, 5), "conv1.bias": (c1,), "conv2.weight": (c2, c1, 3, 3),
              "conv2.bias": (c2,), "fc.weight": (c, c2 * 32 * 32), "fc.bias": (c,)}
    model = as_object(student.lib.pytorch_models.ThreeLayerConvNet(cin, c1, c2, c), name="ThreeLayerConvNet(...)")
    _check_layers(model, layers, "ThreeLayerConvNet")
    ref_model = reference.pytorch_models.ThreeLayerConvNet(cin, c1, c2, c)
    _compare_models(student, reference, model, ref_model, layers, rng.standard_normal((n, cin, 32, 32)), c,
                    rng, "ThreeLayerConvNet")


# ----------------------------------------------------------------------------- Sequential API


@pytest.mark.pytorch_sequential
@pytest.mark.parametrize("case", MODULE_FC_CASES, ids=_ids(MODULE_FC_CASES))
def test_sequential_two_layer_fc(student, reference, rng, case):
    _, n, shape, hidden, c = case
    d = int(np.prod(shape))
    layers = {"1.weight": (hidden, d), "1.bias": (hidden,), "3.weight": (c, hidden), "3.bias": (c,)}
    model = as_object(student.lib.pytorch_models.sequential_two_layer_fc(d, hidden, c),
                      name="sequential_two_layer_fc's return value", what="an nn.Sequential")
    assert model.type_name == "Sequential", "sequential_two_layer_fc must return an nn.Sequential"
    _check_layers(model, layers, "sequential_two_layer_fc(...)")
    ref_model = reference.pytorch_models.sequential_two_layer_fc(d, hidden, c)
    _compare_models(student, reference, model, ref_model, layers, rng.standard_normal((n, *shape)), c,
                    rng, "sequential_two_layer_fc(...)")


@pytest.mark.pytorch_sequential
@pytest.mark.parametrize("case", MODULE_CONV_CASES, ids=_ids(MODULE_CONV_CASES))
def test_sequential_three_layer_convnet(student, reference, rng, case):
    _, n, cin, c1, c2, c = case
    layers = {"0.weight": (c1, cin, 5, 5), "0.bias": (c1,), "2.weight": (c2, c1, 3, 3),
              "2.bias": (c2,), "5.weight": (c, c2 * 32 * 32), "5.bias": (c,)}
    model = as_object(student.lib.pytorch_models.sequential_three_layer_convnet(cin, c1, c2, c),
                      name="sequential_three_layer_convnet's return value", what="an nn.Sequential")
    assert model.type_name == "Sequential", "sequential_three_layer_convnet must return an nn.Sequential"
    _check_layers(model, layers, "sequential_three_layer_convnet(...)")
    ref_model = reference.pytorch_models.sequential_three_layer_convnet(cin, c1, c2, c)
    _compare_models(student, reference, model, ref_model, layers, rng.standard_normal((n, cin, 32, 32)), c,
                    rng, "sequential_three_layer_convnet(...)")


# ----------------------------------------------------------------------------- your model


def _dataset_kind(request) -> tuple[str, str]:
    """(threshold key, description) of the data the ``cifar`` fixture was made from."""
    from coursedata import cifar10

    from autograder.plugin import PLUGIN_KEY

    plugin = request.config.stash[PLUGIN_KEY]
    source = str(plugin.data.sources.get("cifar10", ""))
    if source.startswith("generated"):
        return "generated", source
    n_train = len(cifar10.load(cifar10.find(plugin.ctx.data_dir))[1])
    kind = "cifar10" if n_train >= FULL_CIFAR10_TRAIN else "cifar10_subset"
    return kind, f"{source} ({n_train} training images)"


def _check_weights_file(path: Path, name: str) -> None:
    """The submitted weights: present, not too big, an .npz of numeric arrays (read without pickle)."""
    if not path.is_file():
        pytest.fail(f"no trained weights: {name} is missing from the submission. Run PyTorch.ipynb "
                    f"to train your model (build_my_model) and save its weights with save_weights, "
                    f"then submit {name} next to the cs231n folder.")
    size = path.stat().st_size
    assert size <= MAX_WEIGHTS_BYTES, f"{name} is {size / 2**20:.1f} MiB, more than the {MAX_WEIGHTS_BYTES // 2**20} MiB allowed"
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                if data[key].dtype.kind not in "biuf":
                    pytest.fail(f"{name}: entry {key!r} has dtype {data[key].dtype}, not a numeric array")
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        pytest.fail(f"{name} is not an .npz file of numeric arrays written by save_weights: {exc}")


def _architecture(path: Path, name: str) -> str:
    """The model description stored in the weights file, validated against the allow-list."""
    with np.load(path, allow_pickle=False) as data:
        if netspec.ARCH_KEY not in data.files:
            pytest.fail(f"{name} holds no model description ({netspec.ARCH_KEY}): save it with "
                        "save_weights from this assignment's cs231n/pytorch_models.py")
        raw = data[netspec.ARCH_KEY]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        pytest.fail(f"{name}: {netspec.ARCH_KEY} must be the JSON text written by save_weights")
    text = raw.tobytes()
    try:
        netspec.parse(text)
    except netspec.ArchitectureError as exc:
        pytest.fail(f"{name}: the saved model cannot be rebuilt: {exc}")
    return text.decode("utf-8")


@pytest.mark.pytorch_my_model
def test_my_model_accuracy(reference, cifar, submission, rng, request, grader_worker, note):
    name = reference.pytorch_models.WEIGHTS_FILE
    path = Path(submission.root) / name
    _check_weights_file(path, name)
    description = _architecture(path, name)
    kind, data_description = _dataset_kind(request)
    if kind == "generated":
        not_gradable(f"a model trained on CIFAR-10 cannot be judged on {data_description}; "
                     "grade with the course's CIFAR-10 data")
    from autograder.plugin import PLUGIN_KEY

    # The task's settings: [tasks.pytorch_my_model.params] of the declaration (tasks.toml).
    settings = request.config.stash[PLUGIN_KEY].ctx.spec.tasks["pytorch_my_model"].params
    threshold = float(settings["threshold"][kind])
    # The grader's test images: the test split in an order drawn per seed, a random
    # half of them flipped left-right; the labels never leave the grader.
    X, labels = held_out(cifar, rng, int(settings["test_images"]), splits=("test",))
    images = flip_images(reference.pytorch_models.preprocess(X).numpy(), rng)

    # The model is rebuilt from its description by the grader's own code, in a
    # worker that holds no student code; only the arrays come from the submission.
    worker = grader_worker({"coursenet/__init__.py": Path(netspec.__file__),
                            "coursenet/weights.npz": path}, "coursenet")
    try:
        scores = worker.lib.scores(description, worker.lib.weights_path(), images,
                                   int(settings["batch_size"]))
    except StudentError as exc:  # raised by the grader's code on the submitted data
        pytest.fail(f"{name}: the described model cannot classify (N, 3, 32, 32) images: "
                    f"{exc.type_name}: {exc.message}")
    assert isinstance(scores, np.ndarray) and scores.shape == (len(labels), 10), (
        f"your model maps images of shape {images.shape[1:]} to scores of shape "
        f"{getattr(scores, 'shape', None)}, expected (N, 10)")
    assert np.all(np.isfinite(scores)), "your model's scores contain NaN or inf"
    acc = accuracy(scores, labels)
    note(f"your model classifies {acc:.1%} of {len(labels)} test images correctly; "
         f"required: {threshold:.0%} on this data ({data_description})")
    assert acc >= threshold, f"your trained model ({name}) is below the accuracy required"
