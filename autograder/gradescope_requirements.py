"""The grading runtime of a bundle: the project's dependencies pinned to what is installed."""

from __future__ import annotations

import importlib.metadata as metadata
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from autograder.gradescope_files import BuildError

__all__ = ["AUTHORING_ONLY", "PROJECT_DISTRIBUTION", "PYTORCH_CPU_INDEX",
           "assignment_dependencies", "project_dependencies", "requirements_txt",
           "runtime_requirements"]

#: Project dependencies used only to author and generate assignments (nbgrader
#: and the notebook stack); grading never imports them, so bundles leave them out.
AUTHORING_ONLY: frozenset[str] = frozenset(
    {"nbgrader", "nbformat", "nbconvert", "nbclient", "ipykernel",
     "copydetect"})  # `autograder similarity` runs on the instructor's machine, not in a bundle
#: The distribution that carries the project's own dependency list.
PROJECT_DISTRIBUTION = "cvcourse"
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Markers are evaluated for the machine that grades, not the one that builds.
_TARGET_MARKERS = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                   "platform_machine": "x86_64", "implementation_name": "cpython",
                   "platform_python_implementation": "CPython"}


def project_dependencies(course_root: Path) -> list[str]:
    """The project's ``[project] dependencies``: pyproject.toml, else installed metadata."""
    pyproject = course_root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise BuildError(f"{pyproject}: cannot read the dependencies: {exc}") from None
        deps = data.get("project", {}).get("dependencies")
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise BuildError(f"{pyproject}: [project] dependencies must be a list of strings")
        return list(deps)
    try:
        reqs = metadata.requires(PROJECT_DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise BuildError(f"no pyproject.toml in {course_root} and {PROJECT_DISTRIBUTION} is "
                         "not installed: cannot tell which packages grading needs") from None
    return list(reqs)  # lines for the project's extras are dropped by their markers


def assignment_dependencies(dependencies: Iterable[str], packages: Iterable[str],
                            declared_elsewhere: Iterable[str]) -> list[str]:
    """The project ``dependencies`` one assignment's bundle installs.

    ``packages`` is the assignment's declared ``[assignment] packages``;
    ``declared_elsewhere`` the packages any assignment of the course declares.
    A dependency that some assignment declares is installed only for the
    assignments that declare it (Assignment 1's bundle gets no torch); every
    other dependency is the engine's own and always installed. A declared
    package that is not a project dependency is added by name (pinned later to
    its installed version).
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    own = {canonicalize_name(p) for p in packages}
    optional = {canonicalize_name(p) for p in declared_elsewhere} - own
    kept: list[str] = []
    present: set[str] = set()
    for line in dependencies:
        try:
            name = canonicalize_name(Requirement(line).name)
        except InvalidRequirement as exc:
            raise BuildError(f"invalid dependency {line!r}: {exc}") from None
        if name not in optional:
            kept.append(line)
            present.add(name)
    kept += [p for p in packages if canonicalize_name(p) not in present]
    return kept


def runtime_requirements(dependencies: Iterable[str], *,
                         exclude: Iterable[str] = AUTHORING_ONLY,
                         python_version: str | None = None) -> dict[str, str]:
    """Pin ``dependencies`` and everything they pull in to the installed versions.

    Walks the installed distributions' metadata (``importlib.metadata``) from
    the given requirement strings, evaluating environment markers for Linux
    x86_64 CPython ``python_version`` (default: this interpreter's) and
    following requested extras. ``exclude`` names top-level dependencies to
    leave out. Returns ``{distribution name: version}`` sorted by name.
    Raises :class:`BuildError` when a needed package is not installed here or
    its installed version does not satisfy a top-level specifier.
    """
    from packaging.markers import default_environment  # pytest's dependency: always here
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    env: dict[str, str] = dict(default_environment())
    env.update(_TARGET_MARKERS)
    if python_version and python_version != env["python_version"]:
        env["python_version"] = python_version
        env["python_full_version"] = f"{python_version}.0"
    skip = {canonicalize_name(n) for n in exclude}
    pins: dict[str, tuple[str, str]] = {}  # canonical name -> (display name, version)
    todo: list[tuple[Requirement, str | None]] = []  # (requirement, required by)
    for line in dependencies:
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise BuildError(f"invalid dependency {line!r}: {exc}") from None
        if canonicalize_name(req.name) in skip:
            continue
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        todo.append((req, None))
    seen: set[tuple[str, str]] = set()
    while todo:
        req, parent = todo.pop()
        name = canonicalize_name(req.name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            why = f"needed by {parent}" if parent else "a dependency of the project"
            raise BuildError(
                f"{req.name} ({why}) is not installed here, so its version cannot be pinned; "
                "install the project (pip install -e .) and build again") from None
        version = dist.version
        if parent is None and req.specifier and \
                not req.specifier.contains(version, prereleases=True):
            raise BuildError(f"installed {req.name} {version} does not satisfy {req}")
        pins[name] = (dist.metadata["Name"] or req.name, version)
        for extra in ("", *sorted(canonicalize_name(e) for e in req.extras)):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for line in dist.requires or []:
                sub = Requirement(line)
                if sub.marker is not None and not sub.marker.evaluate({**env, "extra": extra}):
                    continue
                if extra and sub.marker is None:
                    continue  # a base requirement, handled with extra ""
                todo.append((sub, req.name))
    return {display: version for _, (display, version) in sorted(pins.items())}


def requirements_txt(pins: Mapping[str, str], assignment: str, python_version: str) -> str:
    """``requirements.txt`` of a bundle: a comment header, then ``name==version`` lines."""
    lines = [
        f"# Grading runtime of {assignment}, generated by `autograder build`: every package",
        f"# pinned to the version the bundle was built and tested with (Python {python_version}).",
        "# Notebook-authoring tools (nbgrader, nbconvert, ...) are left out: grading does not",
        "# import them.",
    ]
    if any("+cpu" in version for version in pins.values()):
        lines += ["# PyTorch's CPU builds (e.g. torch==2.13.0+cpu) are on PyTorch's own index,",
                  "# not on PyPI, which would serve a CUDA build of several GB.",
                  f"--extra-index-url {PYTORCH_CPU_INDEX}"]
    lines += [f"{name}=={version}" for name, version in pins.items()]
    return "\n".join(lines) + "\n"
