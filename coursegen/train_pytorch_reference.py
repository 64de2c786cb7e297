"""Train the reference model of Assignment 2's PyTorch part and save its weights.

The reference submission (``source/assignment2``) must clear the accuracy
threshold of the hidden test ``test_pytorch.py::test_my_model_accuracy``, so it
carries weights trained by this script: the architecture of the reference
``build_my_model()``, CIFAR-10 from the data directory (``--data-dir``, else
``$CVCOURSE_DATA_DIR``), preprocessed exactly as the grader does
(``cifar10.prepare`` with the mean image of the training split subtracted, then
``pytorch_models.preprocess``), at most ``MAX_EPOCHS`` epochs on the CPU::

    .venv/bin/python -m coursegen.train_pytorch_reference            # writes source/assignment2/my_model_weights.npz
    .venv/bin/python -m coursegen.train_pytorch_reference --epochs 8 --out /tmp/w.npz

It trains on the training and validation splits together and prints the
accuracy on the test split (the grader's test images). On the course's offline
subset (5,213 training images), 10 epochs take about 2 minutes on 2 idle CPU
cores and reach about 66% test accuracy. Retrain whenever the
reference architecture or the data change (e.g. on the full CIFAR-10 before
deploying a grader that has it: the committed weights are trained on the data
the course's CI has).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "source" / "assignment2" / "cs231n" / "pytorch_models.py"


def load_reference_module(path: Path = MODULE) -> types.ModuleType:
    """The reference ``pytorch_models`` module, loaded from its file (markers are comments)."""
    spec = importlib.util.spec_from_file_location("_reference_pytorch_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="weights file (default: the reference's)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch
    from coursedata import cifar10

    pm = load_reference_module()
    epochs = args.epochs or pm.MAX_EPOCHS
    if epochs > pm.MAX_EPOCHS:
        parser.error(f"at most {pm.MAX_EPOCHS} epochs (the course's rule)")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    data = cifar10.prepare(num_training=49000, num_validation=1000, num_test=10000,
                           data_dir=args.data_dir)
    x = pm.preprocess(np.concatenate([data["X_train"], data["X_val"]]))
    y = torch.from_numpy(np.concatenate([data["y_train"], data["y_val"]]).astype(np.int64))
    x_test = pm.preprocess(data["X_test"])
    y_test = torch.from_numpy(data["y_test"].astype(np.int64))
    print(f"training on {len(x)} images, testing on {len(x_test)}, {epochs} epochs", flush=True)

    model = pm.build_my_model()
    steps = epochs * ((len(x) + args.batch_size - 1) // args.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps)
    start = time.perf_counter()
    pm.train(model, optimizer, x, y, epochs=epochs, batch_size=args.batch_size, scheduler=scheduler,
             augment_data=True, x_val=x_test, y_val=y_test, seed=args.seed)
    elapsed = time.perf_counter() - start
    out = args.out or MODULE.parent.parent / pm.WEIGHTS_FILE
    pm.save_weights(model, out)
    reloaded = pm.load_weights(pm.build_my_model(), out)
    acc = pm.check_accuracy(reloaded, x_test, y_test)
    acc500 = pm.check_accuracy(reloaded, x_test[:500], y_test[:500])
    print(f"trained in {elapsed:.0f} s; test accuracy {acc:.4f} on {len(x_test)} images, "
          f"{acc500:.4f} on the first 500; wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
