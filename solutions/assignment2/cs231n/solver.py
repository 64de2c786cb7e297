"""A Solver encapsulates the logic of training classification models.

The Solver runs minibatch stochastic gradient descent with one of the update
rules defined in optim.py. It accepts training and validation data and labels,
periodically checks classification accuracy on both, and keeps the parameters
of the model that reached the best validation accuracy.

Example::

    data = {"X_train": ..., "y_train": ..., "X_val": ..., "y_val": ...}
    model = MyModel(...)  # e.g. a net from cs231n.classifiers
    solver = Solver(model, data, update_rule="sgd",
                    optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, num_epochs=10, batch_size=100,
                    print_every=100)
    solver.train()

After train() returns, model.params holds the parameters that did best on the
validation set, and solver.loss_history, solver.train_acc_history and
solver.val_acc_history hold the history of training.

A model given to the Solver must have:
- model.params: a dictionary mapping parameter names to numpy arrays.
- model.loss(X, y=None): with y None, returns the (N, C) class scores; with
  labels, returns a tuple (loss, grads) where grads has the keys of
  model.params.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from . import optim

_KNOWN_KWARGS = (
    "update_rule",
    "optim_config",
    "lr_decay",
    "batch_size",
    "num_epochs",
    "num_train_samples",
    "num_val_samples",
    "checkpoint_name",
    "print_every",
    "verbose",
)


class Solver:
    """Trains a classification model with minibatch SGD-style updates (see module doc)."""

    def __init__(self, model: Any, data: dict[str, np.ndarray], **kwargs: Any) -> None:
        """Construct a new Solver instance.

        Required arguments:
        - model: a model object with ``params`` and ``loss`` (see module doc).
        - data: a dictionary of training and validation data with the keys
          'X_train' (N_train, d_1, ..., d_k), 'y_train' (N_train,),
          'X_val' (N_val, d_1, ..., d_k) and 'y_val' (N_val,).

        Optional keyword arguments:
        - update_rule: the name of an update rule in optim.py, or a callable
          with the same interface. Default 'sgd'.
        - optim_config: dictionary of hyperparameters passed to the update rule
          (each parameter gets its own copy). Default {}.
        - lr_decay: the learning rate is multiplied by this after each epoch.
        - batch_size: size of the minibatches used for the loss and gradient.
        - num_epochs: number of epochs to run.
        - num_train_samples: number of training samples used to check the
          training accuracy (None means all of them). Default 1000.
        - num_val_samples: number of validation samples used to check the
          validation accuracy (None means all of them). Default None.
        - checkpoint_name: if given, save a checkpoint at every epoch to
          '<checkpoint_name>_epoch_<n>.npz' (numpy's npz format, no pickle).
        - print_every: print the training loss every print_every iterations.
        - verbose: if False, print nothing during training.

        Raises ValueError for unknown keyword arguments or an unknown update rule.
        """
        unknown = sorted(k for k in kwargs if k not in _KNOWN_KWARGS)
        if unknown:
            raise ValueError("Unrecognized arguments: " + ", ".join(unknown))

        self.model = model
        self.X_train = data["X_train"]
        self.y_train = data["y_train"]
        self.X_val = data["X_val"]
        self.y_val = data["y_val"]

        update_rule = kwargs.get("update_rule", "sgd")
        self.optim_config: dict[str, Any] = dict(kwargs.get("optim_config") or {})
        self.lr_decay: float = kwargs.get("lr_decay", 1.0)
        self.batch_size: int = kwargs.get("batch_size", 100)
        self.num_epochs: int = kwargs.get("num_epochs", 10)
        self.num_train_samples: int | None = kwargs.get("num_train_samples", 1000)
        self.num_val_samples: int | None = kwargs.get("num_val_samples", None)
        self.checkpoint_name: str | None = kwargs.get("checkpoint_name", None)
        self.print_every: int = kwargs.get("print_every", 10)
        self.verbose: bool = kwargs.get("verbose", True)

        if callable(update_rule):
            self.update_rule: Callable[..., Any] = update_rule
            self.update_rule_name = getattr(update_rule, "__name__", "custom")
        else:
            rule = getattr(optim, str(update_rule), None)
            if str(update_rule).startswith("_") or not callable(rule):
                raise ValueError(f'Invalid update_rule "{update_rule}"')
            self.update_rule = rule
            self.update_rule_name = str(update_rule)

        self._reset()

    def _reset(self) -> None:
        """Set up the bookkeeping variables for optimization (not meant to be called by hand)."""
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params: dict[str, np.ndarray] = {}
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []

        # Make a deep copy of the optim_config for each parameter
        self.optim_configs: dict[str, dict[str, Any]] = {
            p: dict(self.optim_config) for p in self.model.params
        }

    def _step(self) -> None:
        """Make a single gradient update (called by train(), not meant to be called by hand)."""
        num_train = self.X_train.shape[0]
        batch_mask = np.random.choice(num_train, self.batch_size)
        X_batch = self.X_train[batch_mask]
        y_batch = self.y_train[batch_mask]

        loss, grads = self.model.loss(X_batch, y_batch)
        self.loss_history.append(float(loss))

        for p, w in self.model.params.items():
            dw = grads[p]
            config = self.optim_configs[p]
            next_w, next_config = self.update_rule(w, dw, config)
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config

    def _save_checkpoint(self) -> None:
        """Save parameters and history to '<checkpoint_name>_epoch_<n>.npz' (no pickle)."""
        if self.checkpoint_name is None:
            return
        arrays: dict[str, np.ndarray] = {
            "epoch": np.asarray(self.epoch),
            "batch_size": np.asarray(self.batch_size),
            "lr_decay": np.asarray(self.lr_decay),
            "num_train_samples": np.asarray(
                -1 if self.num_train_samples is None else self.num_train_samples
            ),
            "num_val_samples": np.asarray(
                -1 if self.num_val_samples is None else self.num_val_samples
            ),
            "update_rule": np.asarray(self.update_rule_name),
            "loss_history": np.asarray(self.loss_history, dtype=np.float64),
            "train_acc_history": np.asarray(self.train_acc_history, dtype=np.float64),
            "val_acc_history": np.asarray(self.val_acc_history, dtype=np.float64),
        }
        for name, value in self.model.params.items():
            arrays["param_" + name] = np.asarray(value)
        for name, value in self.optim_config.items():
            if isinstance(value, (int, float)):
                arrays["optim_" + name] = np.asarray(value)
        filename = f"{self.checkpoint_name}_epoch_{self.epoch}.npz"
        if self.verbose:
            print(f'Saving checkpoint to "{filename}"')
        tmp = filename + ".tmp"
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, filename)

    def check_accuracy(
        self,
        X: np.ndarray,
        y: np.ndarray,
        num_samples: int | None = None,
        batch_size: int = 100,
    ) -> float:
        """Check the accuracy of the model on the provided data.

        Inputs:
        - X: (N, d_1, ..., d_k) array of data.
        - y: (N,) array of labels.
        - num_samples: if not None, subsample the data and only test the model
          on num_samples data points.
        - batch_size: split X and y into batches of this size to avoid using
          too much memory.

        Returns:
        - acc: scalar, the fraction of instances correctly classified.
        """
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = np.random.choice(N, num_samples)
            N = num_samples
            X = X[mask]
            y = y[mask]

        y_pred = []
        for start in range(0, N, batch_size):
            scores = self.model.loss(X[start : start + batch_size])
            y_pred.append(np.argmax(scores, axis=1))
        if not y_pred:
            return 0.0
        return float(np.mean(np.hstack(y_pred) == y))

    def train(self) -> None:
        """Run optimization to train the model, then restore its best parameters."""
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch

        for t in range(num_iterations):
            self._step()

            if self.verbose and t % self.print_every == 0:
                print(f"(Iteration {t + 1} / {num_iterations}) loss: {self.loss_history[-1]:f}")

            # At the end of every epoch, increment the epoch counter and decay
            # the learning rate.
            epoch_end = (t + 1) % iterations_per_epoch == 0
            if epoch_end:
                self.epoch += 1
                for config in self.optim_configs.values():
                    if "learning_rate" in config:
                        config["learning_rate"] *= self.lr_decay

            # Check train and val accuracy on the first iteration, the last
            # iteration, and at the end of each epoch.
            first_it = t == 0
            last_it = t == num_iterations - 1
            if first_it or last_it or epoch_end:
                train_acc = self.check_accuracy(
                    self.X_train, self.y_train, num_samples=self.num_train_samples
                )
                val_acc = self.check_accuracy(
                    self.X_val, self.y_val, num_samples=self.num_val_samples
                )
                self.train_acc_history.append(train_acc)
                self.val_acc_history.append(val_acc)
                self._save_checkpoint()

                if self.verbose:
                    print(
                        f"(Epoch {self.epoch} / {self.num_epochs}) "
                        f"train acc: {train_acc:f}; val_acc: {val_acc:f}"
                    )

                # Keep track of the best model
                if val_acc > self.best_val_acc or not self.best_params:
                    self.best_val_acc = val_acc
                    self.best_params = {k: v.copy() for k, v in self.model.params.items()}

        # At the end of training swap the best params into the model
        if self.best_params:
            self.model.params = {k: v.copy() for k, v in self.best_params.items()}
