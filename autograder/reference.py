"""The instructor's reference library in the grader's process, and its remembered results.

:func:`load_reference` imports ``source/<assignment>/<library>``, with the shared
modules the assignment declares (:mod:`autograder.library`), under a private
name (``_reference_<assignment>``), its subpackages loading lazily.
:class:`ReferenceResults` remembers expensive reference results (a trained
reference's accuracy) per reference version and key: in memory for the
process, and on disk when the runner gives it a folder.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autograder import library as student_library
from autograder.config import StudentLibrary
from autograder.fingerprints import reference_fingerprint

__all__ = ["ReferenceResults", "load_reference"]

_MEMO: dict[str, dict[str, Any]] = {}  # reference results remembered by this process


def load_reference(course_root: Path, assignment: str, library: str,
                   shared: StudentLibrary | None = None) -> types.ModuleType:
    """Import the reference library ``library`` of ``assignment`` as ``_reference_<assignment>``.

    The package is ``<course_root>/source/<assignment>/<library>`` together with the
    shared modules the assignment declares (``shared``; default: its installed
    suite's ``[student_library]``): the library the students get. Submodules
    load lazily on attribute access (``reference.layers``).
    """
    assignment_dir = course_root / "source" / assignment
    pkg_dir = assignment_dir / library
    init = pkg_dir / "__init__.py"
    if not init.is_file():
        raise FileNotFoundError(f"reference package not found: {pkg_dir}")
    decl = shared if shared is not None else student_library.declared(assignment)
    search = [str(p) for p in student_library.package_dirs(assignment_dir, library, decl)]
    name = f"_reference_{assignment}"
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=search)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    for modname, mod in list(sys.modules.items()):
        if (modname == name or modname.startswith(name + ".")) and mod is not None:
            _make_lazy(mod)
    return module


def _make_lazy(pkg: types.ModuleType) -> None:
    if not hasattr(pkg, "__path__") or "__getattr__" in vars(pkg):
        return

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        full = f"{pkg.__name__}.{attr}"
        try:
            sub = importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name == full:
                raise AttributeError(f"module {pkg.__name__!r} has no attribute {attr!r}") from None
            raise
        _make_lazy(sub)
        return sub

    pkg.__getattr__ = __getattr__  # type: ignore[attr-defined]


class ReferenceResults:
    """Results of the reference library at ``library_dir`` (of ``assignment``), remembered.

    ``cache_dir``: where they are also kept on disk (``None``: memory only);
    ``shared``: the assignment's shared student files (part of the library).
    """

    def __init__(self, assignment: str, library_dir: Path, cache_dir: Path | None,
                 shared: StudentLibrary | None = None) -> None:
        self.assignment = assignment
        self.library_dir = library_dir
        self.cache_dir = cache_dir
        self.shared = shared if shared is not None else StudentLibrary()
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        """sha256 over the reference library's files, shared ones included (a changed
        reference is a new key)."""
        if self._fingerprint is None:  # the same rule as grade-all's grader key
            self._fingerprint = reference_fingerprint(self.library_dir, self.shared)
        return self._fingerprint

    def get(self, key: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``compute()`` (a dict of numbers and strings), remembered under ``key``.

        In memory for this process, and on disk in ``cache_dir`` when set
        (the runner sets it only where workers cannot write there).
        """
        full = f"{self.assignment}|{self.fingerprint()}|{key}"
        digest = hashlib.sha256(full.encode()).hexdigest()
        if digest in _MEMO:
            return dict(_MEMO[digest])
        path = self.cache_dir / f"{digest}.json" if self.cache_dir else None
        if path is not None:
            try:
                value = json.loads(path.read_text())
                if isinstance(value, dict) and value.get("key") == full:
                    _MEMO[digest] = value["value"]
                    return dict(value["value"])
            except (OSError, ValueError):
                pass
        value = compute()
        json.dumps(value, allow_nan=False)  # only plain, finite data is remembered
        _MEMO[digest] = dict(value)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps({"key": full, "value": value}))
                os.replace(tmp, path)
            except OSError:
                pass
        return dict(value)
