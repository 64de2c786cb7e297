"""`autograder similarity`: planted copies rank first, independent solutions do not.

A generated class of Assignment 1: alice submits the reference solution, bob
and carol each wrote their own vectorized SVM, softmax and k-NN distances
(different, honest styles), dave copied bob's three functions with every
variable renamed and the functions reordered in their files (submitted as a
zip), and erin submitted the untouched release. The copied pair must top the
overall ranking and every one of those tasks by a wide margin; no honest pair
may come close; the stubs (boilerplate) never count; the CSV and the HTML
report are written; bad input is refused with a one-line message.
"""

from __future__ import annotations

import ast
import csv
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import config as cfg
from autograder.similarity import compare_class
from coursegen.mutants import build_reference_submission

REPO = Path(__file__).resolve().parents[1]
RELEASE = REPO / "release" / "assignment1"
TASKS = ("svm_loss_vectorized", "softmax_loss_vectorized", "knn_no_loops")

BOB = {
    "svm_loss_vectorized": """
n = X.shape[0]
s = X @ W
correct_scores = s[np.arange(n), y].reshape(-1, 1)
margin = s - correct_scores + 1
margin[np.arange(n), y] = 0
margin[margin < 0] = 0
loss = margin.sum() / n
loss += reg * (W ** 2).sum()
binary = (margin > 0).astype(float)
counts = binary.sum(axis=1)
binary[np.arange(n), y] = -counts
dW = (X.T @ binary) / n
dW += 2 * reg * W
""",
    "softmax_loss_vectorized": """
n = X.shape[0]
logits = X @ W
logits -= logits.max(axis=1, keepdims=True)
e = np.exp(logits)
p = e / e.sum(axis=1, keepdims=True)
loss = -np.log(p[np.arange(n), y]).mean() + reg * (W * W).sum()
p[np.arange(n), y] -= 1
dW = X.T @ p / n + 2 * reg * W
""",
    "knn_no_loops": """
cross = X.dot(self.X_train.T)
a = (X * X).sum(axis=1).reshape(-1, 1)
b = (self.X_train * self.X_train).sum(axis=1).reshape(1, -1)
dists = np.sqrt(np.clip(a + b - 2 * cross, 0, None))
""",
}
CAROL = {
    "svm_loss_vectorized": """
N = len(y)
all_scores = np.dot(X, W)
true_class = np.choose(y, all_scores.T)
hinge = all_scores - true_class[:, None] + 1.0
hinge = np.where(hinge > 0, hinge, 0.0)
hinge[range(N), y] = 0.0
data_loss = np.sum(hinge) / N
reg_loss = reg * np.sum(np.square(W))
loss = data_loss + reg_loss
indicator = np.zeros_like(hinge)
indicator[hinge > 0] = 1.0
indicator[range(N), y] -= indicator.sum(axis=1)
dW = np.dot(X.T, indicator) / N + reg * 2.0 * W
""",
    "softmax_loss_vectorized": """
N = len(y)
f = np.dot(X, W)
f = f - np.amax(f, axis=1)[:, None]
lse = np.log(np.exp(f).sum(axis=1))
correct = f[range(N), y]
loss = np.mean(lse - correct) + reg * np.sum(np.square(W))
probs = np.exp(f - lse[:, None])
onehot = np.zeros_like(probs)
onehot[range(N), y] = 1.0
dW = np.dot(X.T, probs - onehot) / N + 2.0 * reg * W
""",
    "knn_no_loops": """
d2 = -2 * np.matmul(X, self.X_train.T)
d2 += np.einsum("ij,ij->i", X, X)[:, None]
d2 += np.einsum("ij,ij->i", self.X_train, self.X_train)[None, :]
d2[d2 < 0] = 0
dists = np.sqrt(d2)
""",
}
RENAMES = {"n": "count", "s": "sc", "correct_scores": "right", "margin": "marg", "binary": "mask",
           "counts": "pos", "logits": "z", "e": "ex", "p": "prob", "cross": "dot_prod",
           "a": "sq_test", "b": "sq_train"}
FILES = {"svm_loss_vectorized": "cs231n/classifiers/linear_svm.py",
         "softmax_loss_vectorized": "cs231n/classifiers/softmax.py",
         "knn_no_loops": "cs231n/classifiers/k_nearest_neighbor.py"}


def _fill(root: Path, task: str, body: str) -> None:
    """Replace the stub's raise of ``task`` with ``body`` at the raise's indentation."""
    path = root / FILES[task]
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    [i] = [i for i, line in enumerate(lines) if f'NotImplementedError("{task}:' in line]
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines[i] = "".join(indent + line + "\n" for line in body.strip().splitlines())
    path.write_text("".join(lines), encoding="utf-8")


def _rename(body: str) -> str:
    return re.sub(r"\b(" + "|".join(RENAMES) + r")\b", lambda m: RENAMES[m.group(1)], body)


def _move_to_end(path: Path, function: str) -> None:
    """Reorder a module: ``function`` (top level) moved to the end of the file."""
    text = path.read_text(encoding="utf-8")
    [node] = [n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == function]
    lines = text.splitlines(keepends=True)
    chunk = lines[node.lineno - 1: node.end_lineno]
    rest = lines[: node.lineno - 1] + lines[node.end_lineno:]
    path.write_text("".join(rest) + "\n\n" + "".join(chunk), encoding="utf-8")


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("class")
    build_reference_submission(REPO / "source" / "assignment1", root / "alice")
    for name, bodies in (("bob", BOB), ("carol", CAROL), ("dave", BOB), ("erin", {})):
        shutil.copytree(RELEASE, root / name)
        for task, body in bodies.items():
            _fill(root / name, task, _rename(body) if name == "dave" else body)
    _move_to_end(root / "dave" / FILES["svm_loss_vectorized"], "svm_loss_naive")
    _move_to_end(root / "dave" / FILES["softmax_loss_vectorized"], "softmax_loss_naive")
    with zipfile.ZipFile(root / "dave.zip", "w") as zf:  # dave submits a zip
        for path in sorted((root / "dave").rglob("*")):
            zf.write(path, path.relative_to(root / "dave"))
    shutil.rmtree(root / "dave")
    return root


def test_planted_copy_ranks_first_and_honest_pairs_do_not(klass: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "autograder", "similarity", str(klass),
                           "--assignment", "assignment1", "--output", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "bob / dave" in proc.stdout
    rows = list(csv.DictReader((out / "similarity.csv").open(encoding="utf-8")))
    overall = [r for r in rows if r["task"] == "*"]
    assert (overall[0]["student_a"], overall[0]["student_b"]) == ("bob", "dave"), overall[:3]
    for task in TASKS:
        ranked = [r for r in rows if r["task"] == task]
        assert ranked, f"no pair listed for {task}"
        top = ranked[0]
        assert (top["student_a"], top["student_b"]) == ("bob", "dave"), (task, ranked[:3])
        copied = max(float(top["similarity_a"]), float(top["similarity_b"]))
        assert copied >= 0.9, (task, top)
        honest = [max(float(r["similarity_a"]), float(r["similarity_b"])) for r in ranked[1:]
                  if {r["student_a"], r["student_b"]} != {"bob", "dave"}]
        assert all(h <= copied - 0.4 for h in honest), (task, ranked)
    assert not any("erin" in (r["student_a"], r["student_b"]) for r in rows), \
        "an untouched stub shares only boilerplate"
    page = (out / "similarity.html").read_text(encoding="utf-8")
    assert "<mark>" in page and "svm_loss_vectorized" in page and "dave" in page


def test_stubs_are_boilerplate(tmp_path: Path) -> None:
    spec = cfg.load_tasks(cfg.suite_dir("assignment1") / "tasks.toml")
    subs = {}
    for name in ("x", "y"):
        shutil.copytree(RELEASE, tmp_path / name)
        subs[name] = tmp_path / name
    report = compare_class(subs, spec, RELEASE / spec.library)
    assert report.pairs == [] and report.overall == []
    assert {r.task for r in report.regions} >= set(TASKS)


@pytest.mark.parametrize(("args", "message"), [
    (["--assignment", "nope"], "unknown assignment"),
    (["--top", "0", "--assignment", "assignment1"], "--top must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "s").mkdir()
    proc = subprocess.run([sys.executable, "-m", "autograder", "similarity", str(tmp_path / "s"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
