"""Grading settings: one object (``GradeOptions``), validated once for both commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder import cli
from autograder.batch import BatchError, grade_all
from autograder.options import GradeOptions, OptionsError

TOY = Path(__file__).resolve().parent / "fixtures" / "toy"
SUITE = TOY / "suite"

BAD = [
    (["--memory-limit", "0"], "--memory-limit must be positive"),
    (["--timeout", "0"], "--timeout must be positive"),
    (["--time-limit", "-5"], "--time-limit must be positive"),
    (["--course-root", "/no/such/course"], "course root /no/such/course is not a directory"),
]


@pytest.mark.parametrize("command", ["grade", "grade-all"])
@pytest.mark.parametrize(("extra", "message"), BAD, ids=[b[0][0] for b in BAD])
def test_both_commands_refuse_the_same_settings(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                command: str, extra: list[str],
                                                message: str) -> None:
    out = tmp_path / "out"
    argv = [command, str(tmp_path), "--assignment", "toy", "--suite-dir", str(SUITE), *extra]
    argv += ["--results", str(out / "r.json")] if command == "grade" else ["--output", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"autograder: error: {message}", err
    assert not out.exists(), "nothing is graded or written for a refused setting"


def test_settings_travel_unchanged_to_the_run() -> None:
    args = cli.build_parser().parse_args(
        ["grade", "sub", "--assignment", "toy", "--seed", "7", "--timeout", "2.5",
         "--memory-limit", "900", "--require-isolation", "--suite-dir", str(SUITE)])
    options = GradeOptions.from_args(args)
    assert options == GradeOptions(seed=7, timeout=2.5, memory_limit_mb=900,
                                   require_isolation=True, suite_dir=str(SUITE))
    import inspect

    from autograder.runner import grade

    assert set(options.grade_kwargs()) <= set(inspect.signature(grade).parameters)
    assert options.grade_kwargs()["memory_limit_mb"] == 900


def test_the_library_refuses_what_the_command_line_refuses(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="--timeout must be positive"):
        GradeOptions(timeout=-1).validate()
    with pytest.raises(BatchError, match="--time-limit must be positive"):
        grade_all(tmp_path, "toy", output=tmp_path / "out",
                  options=GradeOptions(suite_dir=str(SUITE), time_limit=0))


def test_version_and_help_show_what_is_in_force(capsys: pytest.CaptureFixture) -> None:
    from importlib import metadata

    from autograder import config

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"autograder {metadata.version('cvcourse')}"
    for command in ("grade", "grade-all"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "tasks.toml" not in text, command
        for name in config.available_assignments():
            spec = config.load_assignment(name)
            assert f"{name} {spec.timeout:g} s" in text, (command, name)
            assert f"{name} {spec.time_limit:g} s" in text, (command, name)
            for task in spec.tasks.values():
                if task.timeout is not None:
                    assert f"{task.id} {task.timeout:g} s" in text, (command, task.id)


@pytest.mark.parametrize("command", ["grade", "grade-all"])
def test_an_unwritable_destination_is_refused_before_grading(
        tmp_path: Path, capsys: pytest.CaptureFixture, command: str) -> None:
    import os
    import shutil

    sub = tmp_path / "sub"
    shutil.copytree(TOY / "source" / "toy", sub / ("toy" if command == "grade" else "ann"))
    if command == "grade":
        sub = sub / "toy"
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    flag = "--results" if command == "grade" else "--output"
    targets = [blocker / "deeper" / "out"]  # under a file: never writable
    if command == "grade-all":
        targets.append(blocker)  # a file where the folder should be
    else:
        targets.append(tmp_path)  # a folder where the file should be
    if os.geteuid() != 0:  # root writes anywhere: a read-only folder only stops others
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        targets.append(locked / "new" / "out")
    for target in targets:
        argv = [command, str(sub), "--assignment", "toy", "--suite-dir", str(SUITE),
                "--course-root", str(TOY), flag, str(target)]
        assert cli.main(argv) == 2, target
        captured = capsys.readouterr()
        assert captured.err.startswith(f"autograder: error: {flag} {target} cannot be written: ")
        assert captured.err.count("\n") == 1 and captured.out == "", captured  # nothing graded
    assert blocker.read_text() == ""
