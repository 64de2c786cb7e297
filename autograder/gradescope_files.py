"""The files of a Gradescope bundle: what is collected, the scripts, the zip itself.

The two scripts of a bundle (``setup.sh``, ``run_autograder``) are templates
shipped with the package (``autograder/gradescope_templates/``), with
``@NAME@`` placeholders that :func:`render_script` fills.
"""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import subprocess
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from autograder import config as cfg

__all__ = ["MAX_FILE_BYTES", "TEMPLATES_DIR", "BuildError", "collect", "extract_bundle",
           "git_state", "package_dir", "render_script", "write_zip"]

#: Largest single file a bundle may carry (anything bigger is data, not code).
MAX_FILE_BYTES = 5 * 1024 * 1024
#: The script templates (``setup.sh``, ``run_autograder``).
TEMPLATES_DIR = Path(__file__).resolve().parent / "gradescope_templates"

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same bytes
_SKIP_DIRS = frozenset({"__pycache__", "build", "dist", "node_modules"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".so", ".c", ".o", ".ipynb", "~", ".swp")


class BuildError(cfg.ConfigError):
    """The bundle cannot be built; the message says why in one line."""


def collect(src: Path, prefix: str, *, skip: Iterable[Path] = ()) -> dict[str, Path]:
    """Files under ``src`` as ``{prefix/relative path: path}``, without caches and junk."""
    if not src.is_dir():
        raise BuildError(f"{src} is not a directory")
    skipped = {p.resolve() for p in skip}
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            path = here / d
            if d in _SKIP_DIRS or d.startswith(".") or d.endswith(".egg-info") or \
                    path.resolve() in skipped:
                continue
            if path.is_symlink():
                raise BuildError(f"{path} is a symbolic link; bundles hold only plain files")
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            path = here / f
            if f.startswith(".") or f.endswith(_SKIP_SUFFIXES):
                continue
            if path.is_symlink() or not path.is_file():
                raise BuildError(f"{path} is not a plain file; bundles hold only plain files")
            if path.stat().st_size > MAX_FILE_BYTES:
                raise BuildError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MB; "
                                 "bundles carry code, not data")
            out[str(PurePosixPath(prefix, *path.relative_to(src).parts))] = path
    return out


def package_dir(name: str) -> Path:
    """The folder of the installed package ``name``."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise BuildError(f"cannot find the {name} package")
    return Path(locations[0])


def git_state(root: Path) -> dict[str, Any]:
    """``git_commit`` and ``git_dirty`` of the checkout at ``root`` (``{}`` outside git)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                 text=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status)}


def render_script(name: str, values: Mapping[str, str]) -> str:
    """The template ``name`` of :data:`TEMPLATES_DIR` with every ``@KEY@`` replaced."""
    try:
        template = (TEMPLATES_DIR / name).read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"cannot read the script template {name}: {exc}") from None
    return _fill(template, values)


def _fill(template: str, values: Mapping[str, str]) -> str:
    text = template
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z_0-9]+@", text)
    if left:  # pragma: no cover - a template/code mismatch
        raise BuildError(f"unfilled placeholders in a script template: {sorted(set(left))}")
    return text


def write_zip(path: Path, members: Mapping[str, tuple[bytes, int]]) -> None:
    """Write ``members`` (``{name: (data, mode)}``) atomically, sorted, with fixed times."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for name in sorted(members):
                data, mode = members[name]
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # Unix: unzip restores the modes below
                info.external_attr = (stat.S_IFREG | mode) << 16
                zf.writestr(info, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def extract_bundle(bundle: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Unpack ``bundle`` into ``dest`` as Gradescope does, keeping the executable bits.

    Refuses members with absolute paths or ``..``. Returns ``dest``.
    """
    target = Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(bundle) as zf:
        for info in zf.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts:
                raise BuildError(f"unsafe path in the bundle: {info.filename}")
            path = target.joinpath(*name.parts)
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(zf.read(info))
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(path, mode or 0o644)
    return target
