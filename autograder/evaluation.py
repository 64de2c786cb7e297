"""Accuracy verdicts the grader computes itself, from plain data it validates.

No accuracy test takes its verdict from a number, a history or a prediction the
student's code reports. The pattern every suite follows:

1. train in the worker (the student's ``train``, ``Solver``...),
2. fetch the trained parameters as plain arrays (:func:`fetch_params`: names,
   shapes and finiteness checked, the student's fault when wrong),
3. compute the scores in the grader, with the REFERENCE model loaded with those
   parameters, on evaluation rows the grader draws (:func:`held_out`): a random
   subset of a pool the student never gets, drawn from the ``secret_rng``
   fixture (not from the test's seed, which the worker knows), itself derived
   from the secret base seed that is random per grading run unless the
   instructor fixes it,
4. :func:`accuracy` of those scores against labels that never left the grader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from autograder.values import as_array, as_dict

__all__ = ["accuracy", "fetch_array", "fetch_params", "flip_images", "held_out"]


def held_out(data: Mapping[str, np.ndarray], rng: np.random.Generator, n: int, *,
             splits: Sequence[str] = ("val", "test")) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: ``n`` rows drawn without replacement from the pooled ``splits``.

    ``data`` holds ``X_<split>`` / ``y_<split>`` arrays (the ``cifar`` fixture).
    The rows are new for each seed, so no fixed public list of rows (and no
    table of their labels) decides the grade.
    """
    X = np.concatenate([np.asarray(data[f"X_{s}"]) for s in splits])
    y = np.concatenate([np.asarray(data[f"y_{s}"]) for s in splits])
    rows = rng.choice(len(y), size=min(n, len(y)), replace=False)
    return X[rows], y[rows]


def flip_images(images: np.ndarray, rng: np.random.Generator, fraction: float = 0.5) -> np.ndarray:
    """A copy of (N, C, H, W) ``images`` with a random ``fraction`` of them flipped left-right.

    A label-preserving change the course's CIFAR-10 models tolerate (they
    train with random flips), so images the student could have looked up
    never reach the model unchanged.
    """
    out = np.array(images, copy=True)
    flip = rng.random(len(out)) < fraction
    out[flip] = out[flip][..., ::-1]
    return out


def _as_array(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
    return as_array(value, name=what, shape=shape, dtype="float", finite=True)


def fetch_params(value: Any, shapes: Mapping[str, tuple[int, ...]], what: str
                 ) -> dict[str, np.ndarray]:
    """The trained parameters ``shapes`` names, from ``value`` (a fetched dict), validated.

    Extra entries are ignored; a missing name, a wrong shape, a non-numeric or
    non-finite array fails the student's test with a message naming it (the typed
    accessors of :mod:`autograder.values`).
    """
    value = as_dict(value, name=what, required=tuple(shapes))
    return {name: _as_array(value[name], f"{what}[{name!r}]", shape)
            for name, shape in shapes.items()}


def fetch_array(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """One fetched array, validated like :func:`fetch_params`' entries."""
    return _as_array(value, what, shape)


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose highest score is the label (computed by the grader)."""
    scores = np.asarray(scores)
    assert scores.ndim == 2 and len(scores) == len(labels), (
        f"scores of shape {scores.shape} for {len(labels)} examples")
    return float(np.mean(np.argmax(scores, axis=1) == labels))
