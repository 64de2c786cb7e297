"""Typed accessors for values returned by student code (the suite-writing contract).

A hidden test never duck-types what the student's code returned: it reads it
through one of these accessors, which check the kind, length, keys, shape and
dtype and return a value of the promised type. Anything else raises
:class:`StudentValueError`, which the plugin reports as the student's failed
test (never as an internal grader error). Every accessor takes ``name``, the
value as the student knows it (``"affine_forward's return value"``,
``"net.params"``), so that the message says which value is wrong, what was
expected and what came back.

What came back is described by plain data only: the type of a plain value
(``int``, ``list``, an array's shape and dtype), never the class name a
student's object reports (a :class:`~autograder.sandbox.RemoteObject` is
described as "an object that is not plain data").

Accessors, all keyword-only after the value:

- :func:`as_array` ``(value, *, name, shape=None, dtype="float", finite=False)``
- :func:`as_float` ``(value, *, name, finite=False)``
- :func:`as_int` ``(value, *, name, low=None, high=None)``
- :func:`as_tuple` ``(value, *, name, length)``: ``out, cache = as_tuple(..., length=2)``
- :func:`as_list` ``(value, *, name, length=None, min_length=0)``
- :func:`as_dict` ``(value, *, name, keys=None, required=())``
- :func:`as_object` ``(value, *, name, what="an object")``: a remote object
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from autograder.sandbox.protocol import Handle, Ref
from autograder.sandbox.remote import RemoteObject, RemotePath

__all__ = [
    "StudentValueError",
    "as_array",
    "as_dict",
    "as_float",
    "as_int",
    "as_list",
    "as_object",
    "as_tuple",
    "describe",
]

#: dtype groups for :func:`as_array`: which numpy kinds each accepts, and the
#: dtype the array is converted to (None: kept).
DTYPES: dict[str, tuple[str, Any]] = {
    "float": ("biuf", np.float64),   # any real numbers, returned as float64
    "int": ("biuf", np.int64),       # integers, or floats/bools holding integral values
    "bool": ("b", np.bool_),
    "number": ("biufc", None),       # any numeric dtype, kept as it is
}
MAX_LISTED_KEYS = 12


class StudentValueError(AssertionError):
    """A value the student's code returned is not what the test needs.

    A subclass of :class:`AssertionError`: a failed test of the student, with
    a message naming the value, what was expected and what came back.
    """


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _keys(keys: Collection[Any]) -> str:
    shown = sorted(repr(k) for k in keys)
    more = f", ... ({len(shown)} keys)" if len(shown) > MAX_LISTED_KEYS else ""
    return "[" + ", ".join(shown[:MAX_LISTED_KEYS]) + more + "]"


def describe(value: Any) -> str:
    """What ``value`` is, in words, from plain data only (no class name a student chose)."""
    if value is None:
        return "None"
    if isinstance(value, (RemotePath, Handle)):
        return "an object that is not plain data (numbers, arrays, lists, tuples, dicts)"
    if isinstance(value, Ref):
        return "a stored-value reference"
    if isinstance(value, bool):
        return f"the bool {value}"
    if isinstance(value, int):
        text = str(value) if abs(value) < 10**30 else "(a very large number)"
        return f"the int {text}"
    if isinstance(value, float):
        return f"the float {value!r}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.generic):
        return f"a numpy {value.dtype} scalar"
    if isinstance(value, str):
        return f"a str of {_plural(len(value), 'character')}"
    if isinstance(value, (bytes, bytearray)):
        return f"bytes ({_plural(len(value), 'byte')})"
    if isinstance(value, tuple):
        return f"a tuple of {_plural(len(value), 'item')}"
    if isinstance(value, list):
        return f"a list of {_plural(len(value), 'item')}"
    if isinstance(value, dict):
        return f"a dict with keys {_keys(value)}" if value else "an empty dict"
    return f"a value of type {type(value).__name__}"


def _fail(name: str, expected: str, value: Any, detail: str = "") -> StudentValueError:
    got = detail or describe(value)
    return StudentValueError(f"{name}: expected {expected}, got {got}")


def _shape_text(shape: Sequence[int | None]) -> str:
    dims = ["any" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _numeric_tree(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is a number, an array, or nested lists/tuples of them."""
    if depth > 32:
        return False
    if isinstance(value, (bool, int, float, complex, np.generic, np.ndarray)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_numeric_tree(v, depth + 1) for v in value)
    return False


def as_array(value: Any, *, name: str, shape: Sequence[int | None] | None = None,
             dtype: str = "float", finite: bool = False) -> np.ndarray:
    """``value`` as a numpy array, checked.

    Accepts arrays, numpy and Python numbers, and (nested) lists/tuples of
    numbers. ``shape``: the exact shape, ``None`` for a dimension that may be
    anything. ``dtype``: a group of :data:`DTYPES` (``"float"``: real numbers,
    returned as float64; ``"int"``: integral values, returned as int64;
    ``"bool"``; ``"number"``: any numeric dtype, unchanged). ``finite``:
    NaN and infinities are refused (with the first index).
    """
    kinds, target = DTYPES[dtype]
    wanted = "an array" if shape is None else f"an array of shape {_shape_text(shape)}"
    if not _numeric_tree(value):
        raise _fail(name, wanted + " of numbers", value)
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError, MemoryError):
        raise _fail(name, wanted, value, f"{describe(value)} that is not a rectangular "
                    "array of numbers") from None
    if arr.dtype.kind not in kinds:
        names = {"biuf": "real numbers", "b": "booleans", "biufc": "numbers"}
        raise _fail(name, f"{wanted} of {names[kinds]}", arr,
                    f"an array of dtype {arr.dtype}")
    if shape is not None:
        expected = tuple(shape)
        if arr.ndim != len(expected) or any(
                e is not None and a != e for a, e in zip(arr.shape, expected, strict=True)):
            got = f"shape {tuple(arr.shape)}" if isinstance(value, (np.ndarray, list, tuple)) \
                else describe(value)
            raise _fail(name, wanted, arr, got)
    if dtype == "int" and arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if np.any(bad):
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise _fail(name, wanted + " of integers", arr,
                        f"the non-integral value {float(arr[idx])!r}"
                        + (f" at index {idx}" if arr.ndim else ""))
    if target is not None:
        arr = arr.astype(target)
    if finite and arr.dtype.kind in "fc":
        bad = ~np.isfinite(arr)
        if np.any(bad):
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise _fail(name, wanted + " of finite numbers", arr,
                        f"{arr[idx]}" + (f" at index {idx}" if arr.ndim else ""))
    return arr


def as_float(value: Any, *, name: str, finite: bool = False) -> float:
    """``value`` as a Python float: a real number (Python or numpy) or a 0-d array of one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.generic, np.ndarray)):
        raise _fail(name, "a number", value)
    arr = np.asarray(value)
    if arr.shape != () or arr.dtype.kind not in "iuf":
        raise _fail(name, "a number", value)
    out = float(arr)
    if finite and not math.isfinite(out):
        raise _fail(name, "a finite number", value, f"{out}")
    return out


def as_int(value: Any, *, name: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as a Python int (an integer, or a float holding one), ``low <= v <= high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.generic, np.ndarray)):
        raise _fail(name, "an integer", value)
    arr = np.asarray(value)
    if arr.shape != () or arr.dtype.kind not in "iuf":
        raise _fail(name, "an integer", value)
    if arr.dtype.kind == "f":
        number = float(arr)
        if not math.isfinite(number) or number != math.floor(number):
            raise _fail(name, "an integer", value, f"{number!r}")
    out = int(arr)
    if (low is not None and out < low) or (high is not None and out > high):
        bounds = f"between {low} and {high}" if low is not None and high is not None else (
            f"at least {low}" if low is not None else f"at most {high}")
        raise _fail(name, f"an integer {bounds}", value, str(out))
    return out


def as_tuple(value: Any, *, name: str, length: int) -> tuple[Any, ...]:
    """``value`` (a tuple or a list) as a tuple of exactly ``length`` items."""
    if not isinstance(value, (tuple, list)) or len(value) != length:
        raise _fail(name, f"a tuple of {_plural(length, 'item')}", value)
    return tuple(value)


def as_list(value: Any, *, name: str, length: int | None = None,
            min_length: int = 0) -> list[Any]:
    """``value`` (a list or a tuple) as a list, of ``length`` items (or at least ``min_length``)."""
    if length is not None:
        wanted = f"a list of {_plural(length, 'item')}"
    elif min_length:
        wanted = f"a list of at least {_plural(min_length, 'item')}"
    else:
        wanted = "a list"
    if not isinstance(value, (list, tuple)):
        raise _fail(name, wanted, value)
    if (length is not None and len(value) != length) or len(value) < min_length:
        raise _fail(name, wanted, value)
    return list(value)


def as_dict(value: Any, *, name: str, keys: Collection[str] | None = None,
            required: Collection[str] = ()) -> dict[str, Any]:
    """``value`` as a dict; with ``keys`` exactly those keys, with ``required`` at least those."""
    if not isinstance(value, dict):
        raise _fail(name, "a dict", value)
    if keys is not None and set(value) != set(keys):
        raise _fail(name, f"a dict with keys {_keys(keys)}", value)
    missing = [k for k in required if k not in value]
    if missing:
        raise _fail(name, f"a dict with the key(s) {_keys(missing)}", value)
    return dict(value)


def as_object(value: Any, *, name: str, what: str = "an object") -> RemoteObject:
    """``value`` as a remote object (an instance kept in the worker: a model, a tensor...).

    ``what`` says what was expected, e.g. ``"a torch.Tensor"``. Only that it
    is an object is checked: its class name is the student's to choose.
    """
    if isinstance(value, RemoteObject):
        return value
    raise _fail(name, what, value)
