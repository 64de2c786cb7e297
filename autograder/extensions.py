"""Compiling a library's Cython extensions: the student's by the grader, the reference's here.

An assignment whose library holds Cython sources declares them in the
``[build]`` table of its declaration (``sources``, ``tasks``, ``timeout``: see
:mod:`autograder.config`), parsed into :class:`autograder.config.BuildSpec`.

The student's extension is compiled ONCE per submission, before any of the
submission's code runs (:func:`autograder.builds.build_submission`): in a confined worker of
its own (a uid of its own, no student module imported), which copies the
submitted package (sources only: compiled files shipped in the submission
are left out) into its working folder and compiles it there with Cython and
the C compiler in a child process (this file, run as a script: it imports
only the standard library, setuptools and Cython; ``# distutils:`` options
in the source that would change what is compiled or linked are ignored).
Once that worker and everything it started are gone, the grader itself
judges and takes the result (:mod:`autograder.builds`, grader side: this file
is also copied next to the worker and imports only the standard library).

The reference's extension (trusted code) is compiled in place, in the
grader's process tree, when it is missing or older than its source
(:func:`ensure_reference_built`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LOG_TAIL = 3000  # characters of the compiler's output kept for the report
SKIP_SUFFIXES = (".so", ".pyd", ".c", ".cpp", ".o", ".pyc")
REFERENCE_BUILD_TIMEOUT = 180.0  # seconds for compiling the (trusted) reference's extensions


def module_name(library: str, source: str) -> str:
    """``cs231n`` + ``sub/im2col_cython.pyx`` -> ``cs231n.sub.im2col_cython``."""
    parts = Path(source).with_suffix("").parts
    return ".".join([library, *parts])


def copy_package(src: Path, dest: Path) -> None:
    """Copy the package ``src`` to ``dest``: regular files only, compiled files left out."""
    for root, dirs, files in os.walk(src, followlinks=False):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not os.path.islink(os.path.join(root, d))]
        rel = os.path.relpath(root, src)
        target = dest / rel if rel != "." else dest
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.path.isfile(path) or name.endswith(SKIP_SUFFIXES):
                continue
            shutil.copyfile(path, target / name)


def compile_inplace(root: Path, library: str, sources: list[str]) -> int:
    """Compile ``sources`` of the package ``root/library`` in place (setuptools + Cython).

    Prints the compiler's output; returns 0 on success. Runs in a child process.
    """
    os.chdir(root)
    try:
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension
    except ImportError as exc:
        print(f"the grader cannot compile Cython here: {exc}", flush=True)
        return 2
    exts = [Extension(module_name(library, s), [os.path.join(library, s)],
                      extra_compile_args=["-O3"]) for s in sources]
    try:
        modules = cythonize(exts, language_level=3, quiet=True, force=True)
        for module in modules:  # ``# distutils:`` lines in a source change nothing linked
            module.sources = [s for s in module.sources
                              if os.path.splitext(s)[1] in (".c", ".cpp")][:1]
            module.extra_compile_args = ["-O3"]
            for name in ("extra_link_args", "libraries", "library_dirs",
                         "runtime_library_dirs", "extra_objects"):
                setattr(module, name, [])
        dist = Distribution({"name": f"{library}-extensions", "ext_modules": modules,
                             "script_args": ["build_ext", "--inplace", "--build-temp",
                                             "_build_temp", "--build-lib", "_build_temp/lib"]})
        dist.parse_command_line()
        dist.run_commands()
    except (Exception, SystemExit) as exc:  # Cython's and the compiler's failures
        msg = str(exc).strip()
        print(f"build failed: {type(exc).__name__}" + (f": {msg}" if msg else ""), flush=True)
        return 1
    return 0


def run_build(root: str, library: str, sources: list[str], dest: str,
              timeout: float) -> dict[str, Any]:
    """Copy the package under ``dest`` and compile it in a child process.

    Returns ``{"ok": bool, "log": tail of the output, "seconds": float}``.
    Called in the sandbox worker (student code) or for tests.
    """
    t0 = time.monotonic()
    dest_p = Path(dest)
    if dest_p.exists():
        shutil.rmtree(dest_p)
    dest_p.mkdir(parents=True)
    src = Path(root) / library
    missing = [s for s in sources if not (src / s).is_file()]
    if missing:
        return {"ok": False, "log": f"missing source file(s): "
                f"{', '.join(f'{library}/{m}' for m in missing)}", "seconds": 0.0}
    copy_package(src, dest_p / library)
    cmd = [sys.executable, "-I", "-B", os.path.abspath(__file__),
           json.dumps({"root": str(dest_p), "library": library, "sources": list(sources)})]
    env = dict(os.environ)
    proc = subprocess.Popen(cmd, cwd=str(dest_p), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, _ = proc.communicate()
        out = (out or b"") + f"\nthe build took more than {timeout:g} s (stopped)\n".encode()
        code = -1
    text = (out or b"").decode("utf-8", "replace")
    shutil.rmtree(dest_p / "_build_temp", ignore_errors=True)
    return {"ok": code == 0, "log": tail(text), "seconds": round(time.monotonic() - t0, 3)}


def tail(text: str, limit: int = LOG_TAIL) -> str:
    """The last ``limit`` characters of ``text``, cut at a line start."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    nl = cut.find("\n")
    return "..." + (cut[nl:] if 0 <= nl < 200 else cut)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except OSError:
        pass


def ensure_reference_built(pkg_dir: Path, library: str, sources: tuple[str, ...],
                           timeout: float = REFERENCE_BUILD_TIMEOUT) -> None:
    """Compile the (trusted) reference extension in place when missing or stale.

    Raises ``RuntimeError`` with the compiler's output when it fails.
    """
    import fcntl
    import importlib.machinery

    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    pkg_dir = Path(pkg_dir).resolve()

    def stale() -> list[str]:
        out = []
        for s in sources:
            pyx = pkg_dir / s
            so = pyx.with_name(pyx.stem + suffix)
            if not so.is_file() or so.stat().st_mtime < pyx.stat().st_mtime:
                out.append(s)
        return out

    if not stale():
        return
    # several grading processes (grade-all -j N) may get here at once: one builds
    lock_dir = pkg_dir.parent / "build"  # ignored by git and by nbgrader's release
    lock_dir.mkdir(exist_ok=True)
    with open(lock_dir / ".reference-extension.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        todo = stale()
        if todo:
            _compile_reference(pkg_dir, library, todo, timeout)


def _compile_reference(pkg_dir: Path, library: str, stale: list[str], timeout: float) -> None:
    cmd = [sys.executable, "-I", "-B", os.path.abspath(__file__),
           json.dumps({"root": str(pkg_dir.parent), "library": library, "sources": stale})]
    done = subprocess.run(cmd, cwd=str(pkg_dir.parent), capture_output=True, text=True,
                          timeout=timeout, check=False)
    shutil.rmtree(pkg_dir.parent / "_build_temp", ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"the reference extension did not compile: "
                           f"{tail(done.stdout + done.stderr, 1500)}")


if __name__ == "__main__":
    cfg = json.loads(sys.argv[1])
    sys.exit(compile_inplace(Path(cfg["root"]), cfg["library"], list(cfg["sources"])))
