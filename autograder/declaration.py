"""The assignment declaration: its format, its one parser, where declarations are.

Each assignment is declared once, in ``autograder/suites/<assignment>/tasks.toml``
(the only file of this format; :func:`load_tasks` is its one parser). Every other
view of the assignment is derived from it: the grader's points table, the
student's ``submission.toml`` (written into the release and the solutions by the
generation step), the compiled sources, the Gradescope bundle's packages, the
instructor-only files generation leaves out. Format::

    [assignment]
    name = "assignment2"        # the folder names source/<name>, suites/<name>
    library = "cs231n"          # package at the submission root
    required = ["cs231n/layers.py", ...]  # modules a submission must hold (grader
                                # and submit.py collect refuse one without them)
    timeout = 60                # default seconds per worker call
    time_limit = 900            # seconds for the whole submission
    preload = ["torch"]         # optional: modules the fork server imports once, so
                                # that each test's worker does not pay for them
    packages = ["torch"]        # optional: Python distributions the graded code needs
                                # beyond the engine's own (numpy...): the Gradescope
                                # bundle of this assignment installs them
    datasets = ["cifar10"]      # optional: data sets (names of the course data
                                # registry) the suite and the notebooks use
    instructor_only = ["my_model_weights.npz"]  # optional: files of source/<name>
                                # that never go to students (reference weights)
    ungraded_regions = []       # optional: ids of `### BEGIN SOLUTION <id>` regions
                                # that are not graded tasks (any other id that is not
                                # a task fails generation)

    [submission]                # optional: what `submit.py collect` packs
    notebooks = ["knn.ipynb"]   # notebooks a submission must hold, run to the end
    artifacts = ["my_model_weights.npz"]  # files the notebooks write, required too
    exclude = ["__pycache__", "*.so"]     # never packed (fnmatch on every path part);
                                # default: DEFAULT_EXCLUDE
    zip_name = "assignment2_submission.zip"  # default: "<name>_submission.zip"
    max_file_mb = 20            # largest file collect packs

    [build]                     # optional: the library's Cython sources
    sources = ["im2col_cython.pyx"]       # relative to the library package
    tasks = ["conv_fast"]       # tasks whose tests need the compiled extension
    timeout = 240               # seconds for the whole build

    [student_library]           # optional: the shared student files it takes
    common = "cs231n"           # every file of source/_common/cs231n/, at the same
                                # path (autograder/library.py); no table: none

    [reference_model]           # optional: reference weights trained by the instructor
    weights = "my_model_weights.npz"   # file of source/<name> it writes (instructor_only)
    module = "cs231n/pytorch_models.py"  # the reference module the recipe uses
    recipe = "cs231n_image_classifier"   # a recipe of coursegen.reference_model
    data = "cifar10"            # one of [assignment] datasets
    epochs = 10
    seed = 0
    options = { batch_size = 64, lr = 0.1 }  # the recipe's other settings
                                # `python -m coursegen.reference_model <name>` trains it
                                # and records what it was trained from (staleness check)

    [tasks.knn_two_loops]       # one table per graded task (at least one)
    title = "..."
    points = 4
    visibility = "visible"      # visible | hidden | after_due_date | after_published
    timeout = 120               # optional per-task override
    real_data = "cifar10"       # optional: a data set of [assignment] datasets this
                                # task cannot be graded on without (a generated
                                # stand-in says nothing): `autograder build` refuses a
                                # bundle that would grade it on the stand-in

    [tasks.pytorch_my_model.params]  # optional: settings the task's tests read
    test_images = 500                # (thresholds, sizes): strings, numbers,
    threshold = { cifar10 = 0.70 }   # booleans, lists and tables of them

Every error is a :class:`ConfigError` reading ``file:line: reason`` (unknown table
or key, wrong type, undeclared task id, path not relative, duplicate entry).
:mod:`autograder.config` (other defaults, the course root) re-exports this API.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from autograder.declaration_toml import (
    _ID_RE,
    ConfigError,
    _Doc,
    _number,
    _plain,
    _string,
    _strings,
    _table,
)

# Defaults of the declaration's optional keys (re-exported by autograder.config).
DEFAULT_TIMEOUT = 60.0  # seconds per worker call
DEFAULT_TIME_LIMIT = 900.0  # seconds for a whole submission
DEFAULT_BUILD_TIMEOUT = 180.0  # seconds for compiling a submission's extensions
#: What ``submit.py collect`` never packs: data, caches, checkpoints, compiled files.
DEFAULT_EXCLUDE = ("__pycache__", ".ipynb_checkpoints", "*.pyc", "*.so", "*.c", "*.zip",
                   "cifar-10-batches-py", "datasets", "build")
DEFAULT_MAX_FILE_MB = 20
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
DECLARATION = "tasks.toml"  # the declaration's file name in each suite folder
PACKAGE_DIR = Path(__file__).resolve().parent
SUITES_DIR = PACKAGE_DIR / "suites"
_PACKAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a distribution name (PEP 508)


@dataclass(frozen=True)
class TaskSpec:
    """One graded task: id, title, points, visibility, optional call timeout, its tests' settings."""

    id: str
    title: str
    points: float
    visibility: str = "visible"
    timeout: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    real_data: str | None = None  # data set needed for real (not a stand-in) to grade it


@dataclass(frozen=True)
class ReferenceModelSpec:
    """How the reference weights are trained (``[reference_model]``)."""

    weights: str
    module: str
    recipe: str
    data: str
    epochs: int
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildSpec:
    """What to compile (``sources``, relative to the library package), for which tasks."""

    sources: tuple[str, ...]
    tasks: tuple[str, ...]
    timeout: float = DEFAULT_BUILD_TIMEOUT


@dataclass(frozen=True)
class SubmissionSpec:
    """What ``submit.py collect`` packs besides the required modules (``[submission]``)."""

    zip_name: str
    notebooks: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    max_file_mb: int = DEFAULT_MAX_FILE_MB


@dataclass(frozen=True)
class StudentLibrary:
    """The ``[student_library]`` table: which shared student files the assignment takes.

    ``common`` names a folder of ``source/_common/`` that mirrors an assignment
    folder (``submit.py``, ``cs231n/solver.py``...); generation, the solutions and
    the reference loader place all its files at the same paths in the assignment
    (see :mod:`autograder.library`). No table: the assignment takes none.
    """

    common: str | None = None


@dataclass(frozen=True)
class AssignmentSpec:
    """An assignment's declaration, parsed from its suite's ``tasks.toml``."""

    name: str
    library: str
    required: tuple[str, ...]
    timeout: float
    time_limit: float
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    path: Path | None = None
    preload: tuple[str, ...] = ()  # modules the fork server imports once (e.g. torch)
    packages: tuple[str, ...] = ()  # Python distributions the graded code needs
    datasets: tuple[str, ...] = ()  # data set names of the course data registry
    instructor_only: tuple[str, ...] = ()  # files of source/<name> never released
    ungraded_regions: tuple[str, ...] = ()  # solution-region ids that are not tasks
    submission: SubmissionSpec | None = None  # None: defaults (see submission_spec)
    build: BuildSpec | None = None
    student_library: StudentLibrary = field(default_factory=StudentLibrary)
    reference_model: ReferenceModelSpec | None = None

    @property
    def max_score(self) -> float:
        """Sum of all task points."""
        return float(sum(t.points for t in self.tasks.values()))

    @property
    def region_ids(self) -> frozenset[str]:
        """Every id a ``### BEGIN SOLUTION <id>`` marker of the library may name."""
        return frozenset(self.tasks) | frozenset(self.ungraded_regions)

    @property
    def real_data_tasks(self) -> dict[str, str]:
        """``{task: data set}`` of the tasks that cannot be graded on a generated stand-in."""
        return {t.id: t.real_data for t in self.tasks.values() if t.real_data is not None}

    @property
    def submission_spec(self) -> SubmissionSpec:
        """The ``[submission]`` table, defaults filled in."""
        return self.submission or SubmissionSpec(zip_name=f"{self.name}_submission.zip")

    def task_timeout(self, task_id: str) -> float:
        """The per-call timeout for ``task_id`` (task override or the default)."""
        task = self.tasks.get(task_id)
        if task is not None and task.timeout is not None:
            return task.timeout
        return self.timeout


# --------------------------------------------------------------------------- parsing
_ASSIGNMENT_KEYS = {"name", "library", "required", "timeout", "time_limit", "preload", "packages",
                    "datasets", "instructor_only", "ungraded_regions"}
_SUBMISSION_KEYS = {"notebooks", "artifacts", "exclude", "zip_name", "max_file_mb"}
_BUILD_KEYS = {"sources", "tasks", "timeout"}
_TASK_KEYS = {"title", "points", "visibility", "timeout", "params", "real_data"}
_REFERENCE_MODEL_KEYS = {"weights", "module", "recipe", "data", "epochs", "seed", "options"}
_TOP_KEYS = {"assignment", "submission", "build", "student_library", "reference_model", "tasks"}


def _parse_task(doc: _Doc, tid: str, t: Any) -> TaskSpec:
    path = ("tasks", tid)
    if not _ID_RE.match(tid):
        raise doc.error(path, f"task id {tid!r} must be an identifier")
    t = _table(doc, t, path, _TASK_KEYS, ("title", "points"))
    vis = t.get("visibility", "visible")
    if vis not in VISIBILITIES:
        raise doc.error((*path, "visibility"),
                        f"[tasks.{tid}] visibility must be one of {', '.join(VISIBILITIES)}, got {vis!r}")
    params = t.get("params", {})
    if not isinstance(params, dict):
        raise doc.error((*path, "params"), f"[tasks.{tid}] params must be a table")
    return TaskSpec(
        id=tid, title=_string(doc, t, (*path, "title")),
        points=_number(doc, t, (*path, "points"), positive=False), visibility=vis,
        timeout=_number(doc, t, (*path, "timeout")) if "timeout" in t else None,
        params=_plain(doc, params, (*path, "params"), tables=True),
        real_data=_string(doc, t, (*path, "real_data")) if "real_data" in t else None,
    )


def parse_declaration(text: str, source: str = DECLARATION) -> AssignmentSpec:
    """Validate the declaration ``text`` (read from ``source``) into an :class:`AssignmentSpec`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"{source}:{m.group(1) if m else 1}: invalid TOML: {exc}") from None
    doc = _Doc(source, text)
    for key in data:
        if key not in _TOP_KEYS:
            raise doc.error((key,), f"unknown table [{key}] (known: {', '.join(sorted(_TOP_KEYS))})")
    if "assignment" not in data:
        raise ConfigError(f"{source}:1: missing [assignment] table")
    a = _table(doc, data["assignment"], ("assignment",), _ASSIGNMENT_KEYS, ("name", "library"))
    A = ("assignment",)
    name = _string(doc, a, (*A, "name"))
    if not _ID_RE.match(name):
        raise doc.error((*A, "name"), f"[assignment] name {name!r} must be an identifier")
    library = _string(doc, a, (*A, "library"))
    if not _ID_RE.match(library):
        raise doc.error((*A, "library"), f"library {library!r} is not a package name")
    ident, package = "identifier", "distribution name"
    spec = AssignmentSpec(
        name=name, library=library,
        required=_strings(doc, a, (*A, "required"), kind="path", relative=True),
        timeout=_number(doc, a, (*A, "timeout"), DEFAULT_TIMEOUT),
        time_limit=_number(doc, a, (*A, "time_limit"), DEFAULT_TIME_LIMIT),
        preload=_strings(doc, a, (*A, "preload"), kind="module name"),
        packages=_strings(doc, a, (*A, "packages"), kind=package, pattern=_PACKAGE_RE),
        datasets=_strings(doc, a, (*A, "datasets"), kind=ident, pattern=_ID_RE),
        instructor_only=_strings(doc, a, (*A, "instructor_only"), kind="path", relative=True),
        ungraded_regions=_strings(doc, a, (*A, "ungraded_regions"), kind=ident, pattern=_ID_RE),
    )
    raw_tasks = data.get("tasks")
    if not isinstance(raw_tasks, dict) or not raw_tasks:
        raise ConfigError(f"{source}:{doc.line(('tasks',))}: no [tasks.<id>] tables")
    tasks = {tid: _parse_task(doc, tid, t) for tid, t in raw_tasks.items()}
    for task in tasks.values():
        if task.real_data is not None and task.real_data not in spec.datasets:
            raise doc.error(("tasks", task.id, "real_data"),
                            f"[tasks.{task.id}] real_data: {task.real_data!r} is not one of "
                            f"[assignment] datasets {list(spec.datasets)}")
    for rid in spec.ungraded_regions:
        if rid in tasks:
            raise doc.error((*A, "ungraded_regions"),
                            f"[assignment] ungraded_regions: {rid!r} is a graded task", rid)
    submission = None
    if "submission" in data:
        S = ("submission",)
        s = _table(doc, data["submission"], S, _SUBMISSION_KEYS)
        max_mb = _number(doc, s, (*S, "max_file_mb"), DEFAULT_MAX_FILE_MB)
        if max_mb != int(max_mb):
            raise doc.error((*S, "max_file_mb"), "[submission] max_file_mb must be a whole number")
        zip_name = _string(doc, s, (*S, "zip_name"), f"{name}_submission.zip")
        if "/" in zip_name or not zip_name.endswith(".zip"):
            raise doc.error((*S, "zip_name"), f"[submission] zip_name {zip_name!r} must be a file name ending in .zip")
        submission = SubmissionSpec(
            zip_name=zip_name, max_file_mb=int(max_mb),
            notebooks=_strings(doc, s, (*S, "notebooks"), kind="path", relative=True),
            artifacts=_strings(doc, s, (*S, "artifacts"), kind="path", relative=True),
            exclude=_strings(doc, s, (*S, "exclude"), kind="pattern", default=DEFAULT_EXCLUDE),
        )
    build = None
    if "build" in data:
        B = ("build",)
        b = _table(doc, data["build"], B, _BUILD_KEYS, ("sources", "tasks"))
        sources = _strings(doc, b, (*B, "sources"), kind="path", relative=True, nonempty=True)
        for src in sources:
            if not src.endswith(".pyx"):
                raise doc.error((*B, "sources"), f"[build] sources: {src!r} is not a .pyx file", src)
        build_tasks = _strings(doc, b, (*B, "tasks"), kind=ident, pattern=_ID_RE, nonempty=True)
        for tid in build_tasks:
            if tid not in tasks:
                raise doc.error((*B, "tasks"), f"[build] tasks: unknown task {tid!r} (not a [tasks.<id>] table)", tid)
        build = BuildSpec(sources, build_tasks, _number(doc, b, (*B, "timeout"), DEFAULT_BUILD_TIMEOUT))
    L = ("student_library",)
    lib = _table(doc, data.get("student_library", {}), L, {"common"})
    common = lib.get("common")
    if common is not None and not (isinstance(common, str) and _ID_RE.match(common)):
        raise doc.error((*L, "common"),
                        f"[student_library] common must be a folder name of source/_common/, got {common!r}")
    return replace(spec, tasks=tasks, submission=submission, build=build,
                   student_library=StudentLibrary(common=common),
                   reference_model=_parse_reference_model(doc, data, spec))


def _parse_reference_model(doc: _Doc, data: dict[str, Any], spec: AssignmentSpec) -> ReferenceModelSpec | None:
    if "reference_model" not in data:
        return None
    R = ("reference_model",)
    r = _table(doc, data["reference_model"], R, _REFERENCE_MODEL_KEYS,
               ("weights", "module", "recipe", "data", "epochs"))
    paths = {}
    for key in ("weights", "module"):
        paths[key] = _string(doc, r, (*R, key))
        if Path(paths[key]).is_absolute() or ".." in Path(paths[key]).parts:
            raise doc.error((*R, key), f"[reference_model] {key} {paths[key]!r} must be a relative path")
    if paths["weights"] not in spec.instructor_only:
        raise doc.error((*R, "weights"), f"[reference_model] weights {paths['weights']!r} must be "
                        "listed in [assignment] instructor_only (students never get it)")
    name = _string(doc, r, (*R, "data"))
    if name not in spec.datasets:
        raise doc.error((*R, "data"), f"[reference_model] data {name!r} is not one of "
                        f"[assignment] datasets {list(spec.datasets)}")
    whole = {}
    for key, default in (("epochs", None), ("seed", 0)):
        value = r.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "epochs" else 0):
            raise doc.error((*R, key), f"[reference_model] {key} must be a whole number"
                            f"{' > 0' if key == 'epochs' else ' >= 0'}, got {value!r}")
        whole[key] = value
    options = r.get("options", {})
    if not isinstance(options, dict):
        raise doc.error((*R, "options"), "[reference_model] options must be a table")
    return ReferenceModelSpec(weights=paths["weights"], module=paths["module"],
                              recipe=_string(doc, r, (*R, "recipe")), data=name,
                              epochs=whole["epochs"], seed=whole["seed"],
                              options=_plain(doc, options, (*R, "options"), tables=True))


def load_tasks(path: str | os.PathLike[str]) -> AssignmentSpec:
    """Read and validate a declaration file (a suite's ``tasks.toml``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from None
    return replace(parse_declaration(text, str(p)), path=p)


def load_assignment(assignment: str, suites_dir: Path = SUITES_DIR) -> AssignmentSpec:
    """The declaration of ``assignment`` (its suite's ``tasks.toml``), validated.

    Raises :class:`ConfigError` for an unknown assignment, a bad declaration, or
    one whose ``name`` is not its folder's.
    """
    path = suite_dir(assignment, suites_dir) / DECLARATION
    spec = load_tasks(path)
    if spec.name != assignment:
        raise ConfigError(f"{path}:1: [assignment] name is {spec.name!r}, but the folder is {assignment!r}")
    return spec


def course_suites_dir(course_root: Path) -> Path:
    """The course's own ``autograder/suites`` when it has one (a checkout, a toy course), else the installed ones."""
    return own if (own := Path(course_root) / "autograder" / "suites").is_dir() else SUITES_DIR


def available_assignments(suites_dir: Path = SUITES_DIR) -> list[str]:
    """The declared assignments: suite folders holding a ``tasks.toml``, sorted."""
    if not suites_dir.is_dir():
        return []
    return sorted(p.parent.name for p in suites_dir.glob(f"*/{DECLARATION}"))


def suite_dir(assignment: str, suites_dir: Path = SUITES_DIR) -> Path:
    """The hidden-suite directory of ``assignment``; ConfigError if unknown."""
    if not _ID_RE.match(assignment):
        raise ConfigError(f"unknown assignment {assignment!r}")
    d = suites_dir / assignment
    if not (d / DECLARATION).is_file():
        known = ", ".join(available_assignments(suites_dir)) or "none"
        raise ConfigError(f"unknown assignment {assignment!r} (known: {known})")
    return d
