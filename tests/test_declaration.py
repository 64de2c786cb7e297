"""The assignment declaration (``autograder/suites/<a>/tasks.toml``): one parser, ``file:line: reason`` errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autograder import config
from autograder.config import ConfigError, load_assignment, load_tasks, parse_declaration

GOOD = '''# a toy declaration
[assignment]
name = "toy"
library = "toylib"
required = ["toylib/__init__.py", "toylib/ops.py"]
packages = ["torch"]
datasets = ["cifar10"]
instructor_only = ["weights.npz"]

[submission]
notebooks = ["ops.ipynb"]
artifacts = ["weights.npz"]

[build]
sources = ["fast.pyx"]
tasks = ["fast"]

[student_library]
common = "cs231n"

[tasks.plain]
title = "plain"
points = 4

[tasks.fast]
title = "fast"
points = 6
visibility = "hidden"
timeout = 120

[tasks.fast.params]
test_images = 500
threshold = { cifar10 = 0.7, generated = 0.0 }
'''


def test_a_complete_declaration_is_parsed() -> None:
    spec = parse_declaration(GOOD, "toy.toml")
    assert (spec.name, spec.library, spec.max_score) == ("toy", "toylib", 10.0)
    assert spec.packages == ("torch",) and spec.datasets == ("cifar10",)
    assert spec.instructor_only == ("weights.npz",)
    assert spec.submission_spec.zip_name == "toy_submission.zip"  # the default
    assert spec.submission_spec.artifacts == ("weights.npz",)
    assert spec.submission_spec.exclude == config.DEFAULT_EXCLUDE
    assert spec.build == config.BuildSpec(("fast.pyx",), ("fast",), config.DEFAULT_BUILD_TIMEOUT)
    assert spec.tasks["fast"].params == {"test_images": 500, "threshold": {"cifar10": 0.7, "generated": 0.0}}
    assert spec.task_timeout("fast") == 120.0 and spec.task_timeout("plain") == config.DEFAULT_TIMEOUT
    assert spec.student_library == config.StudentLibrary(common="cs231n")


def _edit(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


#: A [reference_model] table after GOOD (lines 35-40).
MODEL = ('\n[reference_model]\nweights = "weights.npz"\nmodule = "toylib/model.py"\nrecipe = "r"\n'
         'data = "cifar10"\nepochs = 3\n')


def test_a_reference_model_is_parsed() -> None:
    spec = parse_declaration(GOOD + MODEL, "toy.toml").reference_model
    assert spec == config.ReferenceModelSpec(weights="weights.npz", module="toylib/model.py", recipe="r",
                                             data="cifar10", epochs=3, seed=0, options={})
    assert parse_declaration(GOOD, "toy.toml").reference_model is None


#: case -> (declaration text, line of the error, a piece of the reason)
BAD = {
    "unknown table": (GOOD + "\n[grading]\nx = 1\n", 35, "unknown table [grading]"),
    "unknown assignment key": (_edit('datasets = ["cifar10"]', 'datasets = ["cifar10"]\nlibary = "x"'), 8,
                               "unknown key 'libary' in [assignment]"),
    "unknown task key": (_edit("timeout = 120", "timeout = 120\npionts = 3"), 30, "unknown key 'pionts' in [tasks.fast]"),
    "unknown submission key": (_edit('notebooks = ["ops.ipynb"]', 'notebook = ["ops.ipynb"]'), 11,
                               "unknown key 'notebook' in [submission]"),
    "points not a number": (_edit("points = 4", 'points = "four"'), 23, "[tasks.plain] points must be a number"),
    "negative points": (_edit("points = 4", "points = -1"), 23, "must be >= 0"),
    "bad visibility": (_edit('visibility = "hidden"', 'visibility = "secret"'), 28, "visibility must be one of"),
    "timeout zero": (_edit("timeout = 120", "timeout = 0"), 29, "[tasks.fast] timeout must be > 0"),
    "build names an unknown task": (_edit('tasks = ["fast"]', 'tasks = ["fast", "fats"]'), 16,
                                    "[build] tasks: unknown task 'fats'"),
    "build source not pyx": (_edit('sources = ["fast.pyx"]', 'sources = ["fast.py"]'), 15, "is not a .pyx file"),
    "required path escapes": (_edit('"toylib/ops.py"]', '"../ops.py"]'), 5, "must be a relative path"),
    "required listed twice": (_edit('"toylib/ops.py"]', '"toylib/ops.py", "toylib/ops.py"]'), 5, "is listed twice"),
    "dataset not an identifier": (_edit('datasets = ["cifar10"]', 'datasets = ["cifar-10"]'), 7,
                                  "'cifar-10' is not a valid identifier"),
    "packages not a list": (_edit('packages = ["torch"]', 'packages = "torch"'), 6, "must be a list"),
    "task id not an identifier": (GOOD + '\n[tasks."two words"]\ntitle = "x"\npoints = 1\n', 35,
                                  "task id 'two words' must be an identifier"),
    "task without title": (_edit('title = "plain"\n', ""), 21, "[tasks.plain] needs 'title'"),
    "ungraded region is a task": (_edit('datasets = ["cifar10"]', 'datasets = ["cifar10"]\nungraded_regions = ["plain"]'),
                                  8, "'plain' is a graded task"),
    "params value unsupported": (_edit("test_images = 500", "test_images = 1979-05-27"), 32,
                                 "unsupported value"),
    "zip name with a folder": (_edit('artifacts = ["weights.npz"]', 'artifacts = ["weights.npz"]\nzip_name = "a/b.zip"'),
                               13, "zip_name 'a/b.zip' must be a file name"),
    "student_library unknown key": (_edit('common = "cs231n"', 'comon = "cs231n"'), 19,
                                    "unknown key 'comon' in [student_library]"),
    "student_library common not a folder name": (_edit('common = "cs231n"', 'common = "../x"'), 19,
                                                 "common must be a folder name of source/_common/"),
    "real_data not a declared data set": (_edit("timeout = 120", 'timeout = 120\nreal_data = "mnist"'), 30,
                                          "[tasks.fast] real_data: 'mnist' is not one of [assignment] datasets"),
    "reference weights not instructor_only": (GOOD + MODEL.replace('"weights.npz"', '"w2.npz"'), 36,
                                              "must be listed in [assignment] instructor_only"),
    "reference data not declared": (GOOD + MODEL.replace('"cifar10"', '"mnist"'), 39,
                                    "[reference_model] data 'mnist' is not one of [assignment] datasets"),
    "reference epochs zero": (GOOD + MODEL.replace("epochs = 3", "epochs = 0"), 40,
                              "[reference_model] epochs must be a whole number > 0"),
    "reference model without recipe": (GOOD + MODEL.replace('recipe = "r"\n', ""), 35,
                                       "[reference_model] needs 'recipe'"),
    "invalid TOML": (_edit("points = 4", "points = "), 23, "invalid TOML"),
    "no tasks": (GOOD.split("[tasks.plain]")[0], 1, "no [tasks.<id>] tables"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_declaration_errors_name_file_line_and_reason(case: str) -> None:
    text, line, reason = BAD[case]
    with pytest.raises(ConfigError) as info:
        parse_declaration(text, "suites/toy/tasks.toml")
    message = str(info.value)
    assert message.startswith(f"suites/toy/tasks.toml:{line}: "), f"{case}: {message!r} (expected line {line})"
    assert reason in message, f"{case}: {message!r} lacks {reason!r}"


def test_load_tasks_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'none.toml'}: not found")):
        load_tasks(tmp_path / "none.toml")
    suites = tmp_path / "suites"
    (suites / "other").mkdir(parents=True)
    (suites / "other" / "tasks.toml").write_text(GOOD)  # declares "toy", lives in "other"
    with pytest.raises(ConfigError, match=r"tasks\.toml:1: \[assignment\] name is 'toy', but the folder is 'other'"):
        load_assignment("other", suites)
    assert config.available_assignments(suites) == ["other"]
    with pytest.raises(ConfigError, match=r"unknown assignment 'nope' \(known: other\)"):
        load_assignment("nope", suites)


@pytest.mark.parametrize("assignment", config.available_assignments())
def test_every_declared_assignment_parses(assignment: str) -> None:
    spec = load_assignment(assignment)
    assert spec.max_score == 100, f"{assignment}: points sum to {spec.max_score}"
    assert spec.datasets, f"{assignment} declares no data set"
    assert all(spec.required), spec.required


def test_assignment2_declares_torch_its_build_and_its_thresholds() -> None:
    a1, a2 = load_assignment("assignment1"), load_assignment("assignment2")
    assert "torch" in a2.packages and "torch" not in a1.packages
    assert a2.instructor_only == ("my_model_weights.npz",) and a2.submission_spec.artifacts == ("my_model_weights.npz",)
    assert a1.build is None and a2.build is not None and set(a2.build.tasks) <= set(a2.tasks)
    threshold = a2.tasks["pytorch_my_model"].params["threshold"]
    assert a2.real_data_tasks == {"pytorch_my_model": "cifar10"} and a1.real_data_tasks == {}
    assert set(threshold) == {"cifar10", "cifar10_subset", "generated"}
