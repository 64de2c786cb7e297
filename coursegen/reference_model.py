"""Reference weights: ``python -m coursegen.reference_model ASSIGNMENT [--check] [--root .]``.

An assignment whose reference carries trained weights declares how they are
trained in the ``[reference_model]`` table of its declaration
(``autograder/suites/<a>/tasks.toml``, parsed into
:class:`autograder.config.ReferenceModelSpec`): the weights file of
``source/<a>/``, the reference module, the recipe (a function of
:data:`RECIPES`), the registered data set, epochs, seed and the recipe's other
options. This one command trains any of them::

    .venv/bin/python -m coursegen.reference_model assignment2           # minutes on the CPU
    .venv/bin/python -m coursegen.reference_model assignment2 --check   # exit 1 when stale

Training writes the weights (pickle-free: the recipe's ``save_weights`` stores
arrays and the model's description as data, see :mod:`autograder.netspec`) and,
next to the declaration, ``autograder/suites/<a>/reference_model.record.json``
(beside the hidden suite, so that neither the release nor the solutions carry
it): the sha256 of the declaration's table,
of the reference module, of the recipe's code, of the data set's files (None
when trained on a generated stand-in) and of the weights. ``--check`` (and
``tests/test_reference_model.py``) compare that record with the files as they
are now, like the committed release is compared with a fresh generation: a
change of the declaration, the module, the recipe or the weights, or other
data found in the data directory, makes the weights stale. ``--adopt`` records
existing weights without training (for weights trained before this command,
by the same recipe); the record then says ``"how": "adopted"``.

The data directory is ``--data-dir``, else ``$CVCOURSE_DATA_DIR`` (coursedata's
setting).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import inspect
import json
import sys
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path

from autograder.config import ConfigError, ReferenceModelSpec, course_suites_dir, load_assignment

RECORD = "reference_model.record.json"  # in the assignment's suite folder
RECORD_FORMAT = 1


class ReferenceModelError(RuntimeError):
    """The reference model cannot be trained or checked (no declaration, unknown recipe...)."""


# --------------------------------------------------------------------------- recipes
def cs231n_image_classifier(pm: types.ModuleType, data: str, data_dir: Path | None, out: Path, *,
                            epochs: int, seed: int, batch_size: int = 64, lr: float = 0.1,
                            threads: int = 2) -> str:
    """CS231n Assignment 2's recipe: ``pm.build_my_model()`` trained with SGD (Nesterov,
    one-cycle learning rate, weight decay 5e-4, augmentation) on the training and
    validation splits, preprocessed as the grader does; saved with ``pm.save_weights``.
    Returns a line saying what it reached on the test split."""
    import numpy as np
    import torch
    from coursedata import cifar10

    if data != "cifar10":
        raise ReferenceModelError(f"recipe cs231n_image_classifier trains on cifar10, not {data!r}")
    if epochs > pm.MAX_EPOCHS:
        raise ReferenceModelError(f"at most {pm.MAX_EPOCHS} epochs (the course's rule), not {epochs}")
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    split = cifar10.prepare(num_training=49000, num_validation=1000, num_test=10000, data_dir=data_dir)
    x = pm.preprocess(np.concatenate([split["X_train"], split["X_val"]]))
    y = torch.from_numpy(np.concatenate([split["y_train"], split["y_val"]]).astype(np.int64))
    x_test = pm.preprocess(split["X_test"])
    y_test = torch.from_numpy(split["y_test"].astype(np.int64))
    print(f"training on {len(x)} images, testing on {len(x_test)}, {epochs} epochs", flush=True)
    model = pm.build_my_model()
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    pm.train(model, optimizer, x, y, epochs=epochs, batch_size=batch_size, scheduler=scheduler,
             augment_data=True, x_val=x_test, y_val=y_test, seed=seed)
    pm.save_weights(model, out)
    reloaded = pm.load_weights(pm.build_my_model(), out)
    return (f"test accuracy {pm.check_accuracy(reloaded, x_test, y_test):.4f} on {len(x_test)} images, "
            f"{pm.check_accuracy(reloaded, x_test[:500], y_test[:500]):.4f} on the first 500")


#: Training recipes by the name a declaration's ``recipe`` gives; a course adds its own.
RECIPES: dict[str, Callable[..., str]] = {"cs231n_image_classifier": cs231n_image_classifier}


# --------------------------------------------------------------------------- the record
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_fingerprint(name: str, data_dir: Path | None) -> tuple[str | None, str]:
    """(sha256 of the files of the copy of ``name`` found, where) or (None, why) when none is found."""
    from coursedata import DataNotFound, registry

    try:
        folder = registry.find(name, data_dir)
    except DataNotFound:
        return None, "no copy found: a generated stand-in"
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest(), str(folder)


def _spec(assignment: str, root: Path) -> ReferenceModelSpec:
    try:
        decl = load_assignment(assignment, course_suites_dir(root))
    except ConfigError as err:
        raise ReferenceModelError(str(err)) from None
    if decl.reference_model is None:
        raise ReferenceModelError(f"{assignment} declares no [reference_model]")
    if decl.reference_model.recipe not in RECIPES:
        raise ReferenceModelError(f"{assignment}: unknown recipe {decl.reference_model.recipe!r} "
                                  f"(known: {', '.join(sorted(RECIPES))})")
    return decl.reference_model


def inputs(assignment: str, root: Path) -> dict[str, str]:
    """The sha256 of what the weights are trained from, data aside: declaration, module, recipe."""
    spec = _spec(assignment, root)
    module = root / "source" / assignment / spec.module
    if not module.is_file():
        raise ReferenceModelError(f"{module}: the [reference_model] module does not exist")
    table = json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str)
    return {"declaration": _sha256(table.encode()), "module": _sha256(module.read_bytes()),
            "recipe": _sha256(inspect.getsource(RECIPES[spec.recipe]).encode())}


def record_path(assignment: str, root: Path) -> Path:
    """``autograder/suites/<a>/reference_model.record.json`` of the course at ``root``."""
    return course_suites_dir(root) / assignment / RECORD


def write_record(assignment: str, root: Path, data_dir: Path | None, *, how: str) -> Path:
    """Record what the current weights were trained from (atomically)."""
    spec = _spec(assignment, root)
    weights = root / "source" / assignment / spec.weights
    fingerprint, where = data_fingerprint(spec.data, data_dir)
    record = {"format": RECORD_FORMAT, "assignment": assignment, "how": how,
              "trained": {"recipe": spec.recipe, "data": spec.data, "epochs": spec.epochs, "seed": spec.seed},
              "sha256": {**inputs(assignment, root), "data": fingerprint,
                         "weights": _sha256(weights.read_bytes())},
              "data_source": where if fingerprint is None else f"a copy of {spec.data} ({Path(where).name})"}
    path = record_path(assignment, root)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def stale_reasons(assignment: str, root: Path, data_dir: Path | None) -> list[str]:
    """Why the committed weights no longer match their record (empty: up to date).

    The data counts only where a copy is found: a machine without the data
    cannot tell which copy the weights were trained on.
    """
    spec = _spec(assignment, root)
    weights = root / "source" / assignment / spec.weights
    path = record_path(assignment, root)
    if not weights.is_file():
        return [f"{weights} is missing"]
    if not path.is_file():
        return [f"{path} is missing (what the weights were trained from is unknown)"]
    try:
        recorded = json.loads(path.read_text())["sha256"]
    except (ValueError, KeyError, TypeError) as err:
        return [f"{path} is not a valid record: {err}"]
    now = {**inputs(assignment, root), "weights": _sha256(weights.read_bytes())}
    what = {"declaration": "the [reference_model] table of the declaration changed",
            "module": f"{spec.module} changed", "recipe": f"the recipe {spec.recipe} changed",
            "weights": f"{spec.weights} is not the file that was trained"}
    reasons = [why for key, why in what.items() if recorded.get(key) != now[key]]
    fingerprint, where = data_fingerprint(spec.data, data_dir)
    if fingerprint is not None and recorded.get("data") != fingerprint:
        reasons.append(f"the {spec.data} data found ({where}) is not the data the weights were trained on")
    return reasons


def train(assignment: str, root: Path, data_dir: Path | None, *, threads: int = 2) -> Path:
    """Train the declared reference model, write its weights and their record; return the weights."""
    spec = _spec(assignment, root)
    module_path = root / "source" / assignment / spec.module
    loader_spec = importlib.util.spec_from_file_location(f"_reference_{assignment}", module_path)
    if loader_spec is None or loader_spec.loader is None:
        raise ReferenceModelError(f"cannot load {module_path}")
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    out = root / "source" / assignment / spec.weights
    start = time.perf_counter()
    note = RECIPES[spec.recipe](module, spec.data, data_dir, out, epochs=spec.epochs, seed=spec.seed,
                                threads=threads, **dict(spec.options))
    print(f"trained in {time.perf_counter() - start:.0f} s; {note}; wrote {out}", flush=True)
    write_record(assignment, root, data_dir, how="trained")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m coursegen.reference_model",
                                     description="Train an assignment's declared reference model, "
                                                 "or check that its weights are up to date.")
    parser.add_argument("assignment", help="assignment name, e.g. assignment2")
    parser.add_argument("--root", type=Path, default=Path("."), help="course root (default: .)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory (default: $CVCOURSE_DATA_DIR, coursedata's setting)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for training (default: 2)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 when the weights are stale")
    mode.add_argument("--adopt", action="store_true",
                      help="record the existing weights without training (trained by the same recipe)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        if args.check:
            reasons = stale_reasons(args.assignment, root, args.data_dir)
            for reason in reasons:
                print(f"[reference_model] stale: {reason}", file=sys.stderr)
            if reasons:
                print(f"[reference_model] retrain: python -m coursegen.reference_model {args.assignment}",
                      file=sys.stderr)
            return 1 if reasons else 0
        if args.adopt:
            print(f"[reference_model] wrote {write_record(args.assignment, root, args.data_dir, how='adopted')}")
            return 0
        train(args.assignment, root, args.data_dir, threads=args.threads)
    except (ReferenceModelError, OSError) as err:
        print(f"[reference_model] ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
