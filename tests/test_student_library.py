"""The shared student library: written once in source/_common, assembled into every assignment."""

from __future__ import annotations

import re

import shutil
from pathlib import Path

import pytest

from autograder import config, library
from autograder.config import StudentLibrary
from autograder.fingerprints import grader_key
from autograder.options import GradeOptions
from autograder.plugin import load_reference
from autograder.reference import ReferenceResults
from coursegen import nbgrader_hooks
from coursegen.modules import transform_source

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "source"
ASSIGNMENTS = [p.name for p in library.assignment_dirs(SOURCE)]
KIT = StudentLibrary(common="kit")


def _toy(root: Path) -> Path:
    """source/toy/lib (the assignment's own package) and source/_common/kit (a shared tool
    and a shared module of the package); returns source/toy."""
    toy = root / "source" / "toy"
    (toy / "lib").mkdir(parents=True)
    (toy / "lib" / "__init__.py").write_text("NAME = 'toy'\n")
    (toy / "lib" / "own.py").write_text("from .helper import twice\n\ndef four():\n    return twice(2)\n")
    kit = root / "source" / library.COMMON_DIR / "kit"
    (kit / "lib").mkdir(parents=True)
    (kit / "lib" / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    (kit / "tool.py").write_text("print('tool')\n")
    (kit / "lib" / "__pycache__").mkdir()
    (kit / "lib" / "__pycache__" / "helper.cpython-311.pyc").write_bytes(b"\0")
    return toy


# --------------------------------------------------------------------------- the declaration


def _parse(extra: str) -> config.AssignmentSpec:
    text = extra + '[assignment]\nname = "a"\nlibrary = "lib"\n[tasks.t]\ntitle = "T"\npoints = 1\n'
    return config.parse_declaration(text, "a/tasks.toml")


def test_declaration_is_optional_and_names_one_shared_folder() -> None:
    assert _parse("").student_library == StudentLibrary(common=None)
    assert _parse('[student_library]\ncommon = "cs231n"\n').student_library.common == "cs231n"


@pytest.mark.parametrize(("extra", "message"), [
    ('[student_library]\ncommon = "../etc"\n', "common must be a folder name of source/_common/"),
    ("[student_library]\ncommon = 3\n", "common must be a folder name"),
    ('[student_library]\ncommon = "k"\nfiles = ["x"]\n', "unknown key 'files'"),
    ('student_library = "cs231n"\n', "[student_library] must be a table"),
])
def test_bad_declaration_is_a_config_error_naming_file_and_table(extra: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        _parse(extra)
    assert re.match(r"a/tasks\.toml:\d+: ", str(err.value)), str(err.value)  # file:line first
    assert "student_library" in str(err.value) and message in str(err.value), str(err.value)


# --------------------------------------------------------------------------- assembling


def test_assemble_places_the_shared_files_at_their_paths(tmp_path: Path) -> None:
    toy = _toy(tmp_path)
    assert sorted(library.shared_files(toy, KIT)) == ["lib/helper.py", "tool.py"]
    dest = tmp_path / "out" / "toy"
    library.assemble(toy, KIT, dest)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["lib/__init__.py", "lib/helper.py", "lib/own.py", "tool.py"]
    assert (dest / "lib" / "helper.py").read_text() == "def twice(x):\n    return 2 * x\n"
    assert sorted(library.library_files(toy, "lib", KIT)) == ["__init__.py", "helper.py", "own.py"]
    assert library.shared_files(toy, StudentLibrary()) == {}


def test_a_file_with_two_sources_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    toy = _toy(tmp_path)
    (toy / "lib" / "helper.py").write_text("def twice(x):\n    return x + x\n")
    dest = tmp_path / "out" / "toy"
    with pytest.raises(library.LibraryError, match=r"lib/helper\.py also in the shared library .*one source"):
        library.assemble(toy, KIT, dest)
    assert not dest.exists()


def test_a_missing_shared_folder_is_named(tmp_path: Path) -> None:
    toy = _toy(tmp_path)
    with pytest.raises(library.LibraryError, match=r"_common/nokit: .*common = 'nokit' names does not exist"):
        library.shared_files(toy, StudentLibrary(common="nokit"))


def test_common_is_not_an_assignment(tmp_path: Path) -> None:
    _toy(tmp_path)
    (tmp_path / "source" / ".hidden").mkdir()
    assert [p.name for p in library.assignment_dirs(tmp_path / "source")] == ["toy"]
    notebook = tmp_path / "source" / library.COMMON_DIR / "x.ipynb"
    with pytest.raises(SystemExit):
        nbgrader_hooks.pre_convert(library.COMMON_DIR, ".", [str(notebook)])
    assert not (tmp_path / "release").exists()


def test_generation_refuses_an_assignment_copy_of_a_shared_file(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assignment = ASSIGNMENTS[0]
    shutil.copytree(SOURCE, tmp_path / "source", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    (tmp_path / "source" / assignment / "submit.py").write_text("print('a forked copy')\n")
    notebook = sorted((tmp_path / "source" / assignment).glob("*.ipynb"))[0]
    with pytest.raises(SystemExit):
        nbgrader_hooks.pre_convert(assignment, ".", [str(notebook)])
    err = capsys.readouterr().err
    assert "submit.py also in the shared library" in err and "one source" in err, err


# --------------------------------------------------------------------------- the reference loader


def test_reference_loader_sees_the_shared_modules(tmp_path: Path) -> None:
    _toy(tmp_path)
    ref = load_reference(tmp_path, "toy", "lib", KIT)
    assert ref.own.four() == 4
    assert Path(ref.helper.__file__) == tmp_path / "source" / library.COMMON_DIR / "kit" / "lib" / "helper.py"
    with pytest.raises(AttributeError):
        _ = load_reference(tmp_path, "toy", "lib", StudentLibrary()).helper


def test_shared_subpackages_are_refused(tmp_path: Path) -> None:
    toy = _toy(tmp_path)
    nested = tmp_path / "source" / library.COMMON_DIR / "kit" / "lib" / "sub"
    nested.mkdir()
    (nested / "deep.py").write_text("X = 1\n")
    with pytest.raises(library.LibraryError, match=r"directly in the package lib/.*lib/sub/deep\.py"):
        library.package_dirs(toy, "lib", KIT)


# --------------------------------------------------------------------------- the course itself


def test_every_shared_folder_is_taken_by_an_assignment() -> None:
    taken = {library.declared(a).common for a in ASSIGNMENTS}
    folders = {p.name for p in (SOURCE / library.COMMON_DIR).iterdir() if p.is_dir()}
    assert folders and folders <= taken, f"shared folders no assignment declares: {sorted(folders - taken)}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_and_solutions_carry_the_one_shared_copy(assignment: str) -> None:
    shared = library.shared_files(SOURCE / assignment, library.declared(assignment))
    assert {"submit.py", "cs231n/solver.py", "cs231n/gradient_check.py"} <= set(shared)
    for rel, src in shared.items():
        text = src.read_text()
        for tree, mode in (("release", "release"), ("solutions", "solution")):
            copy = REPO / tree / assignment / rel
            assert copy.is_file(), f"{tree}/{assignment}/{rel} is missing: regenerate {tree}/"
            assert copy.read_text() == transform_source(text, mode=mode, filename=str(src)), (
                f"{tree}/{assignment}/{rel} differs from {src.relative_to(REPO)}: regenerate {tree}/")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_reference_is_the_assembled_library(assignment: str) -> None:
    decl = library.declared(assignment)
    ref = load_reference(REPO, assignment, "cs231n", decl)
    shared = SOURCE / library.COMMON_DIR / decl.common / "cs231n"
    assert Path(ref.solver.__file__) == shared / "solver.py"
    assert Path(ref.selfcheck.__file__) == SOURCE / assignment / "cs231n" / "selfcheck.py"
    assert ref.selfcheck.CheckFailed is ref.selfcheck_utils.CheckFailed


def test_a_changed_shared_module_is_a_new_reference(tmp_path: Path) -> None:
    """grade-all's grader key and the reference-results memo key both see shared files."""
    toy = _toy(tmp_path)
    spec = config.AssignmentSpec(name="toy", library="lib", required=(), timeout=1.0,
                                 time_limit=1.0, student_library=KIT)
    suite = tmp_path / "suite"
    suite.mkdir()

    def keys() -> tuple[str, str]:
        memo = ReferenceResults("toy", toy / "lib", None, KIT)
        return grader_key(spec, suite, tmp_path, GradeOptions()), memo.fingerprint()

    before = keys()
    helper = tmp_path / "source" / library.COMMON_DIR / "kit" / "lib" / "helper.py"
    helper.write_text("def twice(x):\n    return x + x\n")
    after = keys()
    assert after[0] != before[0] and after[1] != before[1]
