"""Path policy of a confined worker: what it must not see, and what it may still read."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

__all__ = ["default_hidden_paths", "default_kept_paths", "python_paths"]

_GRADER_DIR = Path(__file__).resolve().parents[1]  # the autograder package
_PYPATHS: dict[str, list[str]] = {}  # interpreter -> its directories (asked once)


def default_hidden_paths() -> list[str]:
    """Paths hidden from every worker: the grader package, the checkout it lives in
    (a repository holding ``source/`` or ``.git``: the course), and Gradescope's root."""
    paths = [str(_GRADER_DIR)]
    checkout = _GRADER_DIR.parent
    if (checkout / "source").is_dir() or (checkout / ".git").exists():
        paths.append(str(checkout))
    if os.path.isdir("/autograder"):
        paths.append("/autograder")
    return paths


def default_kept_paths() -> list[str]:
    """Paths a worker may read although they lie under a hidden root.

    The course's data package (``coursedata``), which student library modules
    may import.
    """
    keep = []
    try:
        spec = importlib.util.find_spec("coursedata")
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        keep.append(str(loc))
    return keep


def python_paths(python: str) -> list[str]:
    """Directories the worker interpreter reads: its prefixes and its ``sys.path``.

    Asked of the interpreter itself, started as the worker is (``-I``), so the
    grader's own ``sys.path`` (test runners, ``PYTHONPATH``) never widens what
    a worker may see.
    """
    if python not in _PYPATHS:
        out = subprocess.run(
            [python, "-I", "-c", "import json,sys;print(json.dumps([sys.prefix,"
             "sys.base_prefix,sys.exec_prefix,sys.base_exec_prefix,*sys.path]))"],
            capture_output=True, text=True, timeout=60, check=False, cwd="/")
        found = json.loads(out.stdout) if out.returncode == 0 else []
        found.append(os.path.dirname(os.path.realpath(python)))
        _PYPATHS[python] = [p for p in dict.fromkeys(found)
                            if isinstance(p, str) and os.path.isabs(p) and p != "/"]
    return list(_PYPATHS[python])
