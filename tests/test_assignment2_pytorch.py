"""Assignment 2's PyTorch part: the weights file, its release, and grading without the weights.

Fast tests: the reference's trained weights are committed in the master copy,
small, a pickle-free .npz that loads into the reference ``build_my_model()``;
``save_weights``/``load_weights`` round-trip and refuse pickled content; the
release never ships the reference's weights; the accuracy thresholds cover
every kind of data.

Slow tests (the real CLI, only the PyTorch tasks): a submission without the
weights file loses exactly ``pytorch_my_model`` with a message naming the file;
a weights file holding a pickle is refused without being unpickled, by the
grader and by the worker.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import course_data
import numpy as np
import pytest

from autograder.config import load_assignment
from coursegen.mutants import build_reference_submission

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "source" / "assignment2"
RELEASE = REPO / "release" / "assignment2"
SUITE = REPO / "autograder" / "suites" / "assignment2"
PYTORCH_TASKS = ["pytorch_flatten", "pytorch_two_layer_fc", "pytorch_three_layer_convnet",
                 "pytorch_module_api", "pytorch_sequential", "pytorch_my_model"]


def _reference_module() -> types.ModuleType:
    path = SOURCE / "cs231n" / "pytorch_models.py"
    spec = importlib.util.spec_from_file_location("_test_reference_pytorch_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PM = _reference_module()
WEIGHTS = SOURCE / PM.WEIGHTS_FILE


# ------------------------------------------------------------------ fast tests


def test_reference_weights_are_committed_small_and_pickle_free() -> None:
    assert WEIGHTS.is_file(), f"{WEIGHTS} is missing: run python -m coursegen.reference_model assignment2"
    assert WEIGHTS.stat().st_size < 2 * 2**20, f"{WEIGHTS} is larger than 2 MiB"
    with np.load(WEIGHTS, allow_pickle=False) as data:
        assert data.files, "the weights file is empty"
        assert all(data[k].dtype.kind in "biuf" for k in data.files)
    model = PM.load_weights(PM.build_my_model(), WEIGHTS)  # strict: same architecture
    scores = PM.predict_scores(model, torch.zeros(2, 3, 32, 32))
    assert scores.shape == (2, 10)


def test_save_and_load_weights_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = PM.build_my_model()
    x = torch.randn(4, 3, 32, 32)
    PM.train(model, torch.optim.SGD(model.parameters(), lr=0.01), x, torch.tensor([0, 1, 2, 3]),
             epochs=1, batch_size=4, verbose=False)  # running statistics of batch norm move
    path = PM.save_weights(model, tmp_path / "w.npz")
    other = PM.load_weights(PM.build_my_model(), path)
    for (name, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    np.testing.assert_array_equal(PM.predict_scores(model, x), PM.predict_scores(other, x))


def test_load_weights_never_unpickles(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, payload=np.array([{"not": "numeric"}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        PM.load_weights(PM.build_my_model(), path)


def test_thresholds_cover_every_kind_of_data() -> None:
    config = load_assignment("assignment2").tasks["pytorch_my_model"].params
    assert set(config["threshold"]) == {"cifar10", "cifar10_subset", "generated"}
    assert config["threshold"]["cifar10"] == PM.TARGET_ACCURACY == 0.70
    assert all(0 <= v <= 1 for v in config["threshold"].values())


def test_release_has_no_reference_weights() -> None:
    if not RELEASE.is_dir():
        pytest.skip("release/assignment2 is not generated yet")
    leaked = sorted(str(p.relative_to(REPO)) for p in RELEASE.rglob(PM.WEIGHTS_FILE))
    assert not leaked, f"the release contains the reference's trained weights: {leaked}"


def test_reference_submission_carries_the_weights(tmp_path: Path) -> None:
    build_reference_submission(SOURCE, tmp_path / "sub")
    copied = tmp_path / "sub" / PM.WEIGHTS_FILE
    assert copied.is_file() and copied.read_bytes() == WEIGHTS.read_bytes()


# ------------------------------------------------------------------ slow tests


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["CVCOURSE_DATA_DIR"] = str(course_data.data_dir())  # no CIFAR-10: generated
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _grade_pytorch(submission: Path, tmp_path: Path, tasks: list[str]) -> dict[str, dict]:
    results = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "autograder", "grade", str(submission), "--assignment", "assignment2",
           "--results", str(results), "--seed", "7", "-q"]
    for task in tasks:
        cmd += ["--task", task]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), cwd=REPO, timeout=600)
    assert results.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(results.read_text(encoding="utf-8"))
    out: dict[str, dict] = {}
    for entry in report["tests"]:
        task = entry["name"].split(":")[0]
        if task in tasks:
            out[task] = entry
    assert set(out) == set(tasks), f"report rows {sorted(out)}"
    return out


@pytest.mark.slow
def test_missing_weights_lose_only_the_trained_model_task(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    build_reference_submission(SOURCE, sub)
    (sub / PM.WEIGHTS_FILE).unlink()
    rows = _grade_pytorch(sub, tmp_path, ["pytorch_flatten", "pytorch_my_model"])
    assert rows["pytorch_flatten"]["score"] == rows["pytorch_flatten"]["max_score"]
    assert rows["pytorch_my_model"]["score"] == 0
    assert f"{PM.WEIGHTS_FILE} is missing" in rows["pytorch_my_model"]["output"]


@pytest.mark.slow
def test_pickled_weights_are_refused_without_unpickling(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    build_reference_submission(SOURCE, sub)
    marker = tmp_path / "unpickled"

    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.savez(sub / PM.WEIGHTS_FILE, payload=np.array([Bomb()], dtype=object))
    rows = _grade_pytorch(sub, tmp_path, ["pytorch_my_model"])
    assert rows["pytorch_my_model"]["score"] == 0
    assert "not an .npz file of numeric arrays" in rows["pytorch_my_model"]["output"]
    assert not marker.exists(), "the weights file was unpickled"


def _markdown(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def test_notebook_states_the_grader_thresholds() -> None:
    """The student sees the threshold of every kind of real data the grader may use."""
    text = _markdown(SOURCE / "PyTorch.ipynb")
    thresholds = load_assignment("assignment2").tasks["pytorch_my_model"].params["threshold"]
    for kind in ("cifar10", "cifar10_subset"):
        assert f"{thresholds[kind]:.0%}" in text, f"PyTorch.ipynb does not state the {kind} threshold"


def test_notebook_states_real_training_times() -> None:
    """The times the notebook promises agree with the recorded run (solutions, one core)."""
    text = " ".join(_markdown(SOURCE / "PyTorch.ipynb").split())
    assert "about a minute" not in text
    cells = json.loads((REPO / "solutions" / "assignment2" / "PyTorch.ipynb").read_text())["cells"]
    cell = next(c for c in cells if c["cell_type"] == "code" and "NUM_TRAIN = 2000" in "".join(c["source"])
                and "EPOCHS = 1 " in "".join(c["source"]))
    log = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))
    recorded = float(re.search(r"epoch 1/1: .*\((\d+(?:\.\d+)?) s\)", log).group(1))
    per_1000 = recorded / 2  # 2,000 images, one epoch
    stated = re.search(r"about (\d+) seconds on one CPU core", text)
    assert stated and abs(float(stated.group(1)) - recorded) <= 0.3 * recorded, (stated, recorded)
    stated = re.search(r"about (\d+) seconds per 1,000 training images", text)
    assert stated and abs(float(stated.group(1)) - per_1000) <= 0.3 * per_1000, (stated, per_1000)
    for minutes, images in re.findall(r"about (\d+) minutes on [^(]*\(([\d,]+) training images\)", text):
        expected = int(images.replace(",", "")) / 1000 * per_1000 * PM.MAX_EPOCHS / 60
        assert abs(int(minutes) - expected) <= 0.3 * expected, (minutes, images, expected)
    assert len(re.findall(r"about \d+ minutes on", text)) == 2, "both the subset and the full data"
